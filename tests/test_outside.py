"""The course outside its repository (the Colab path): course_lib from a wheel, non-editable, in a fresh venv;
a lesson copied alone into an empty folder installs it through its first cells and runs at smoke.
Colab itself cannot be reached from here; this tests everything up to it."""
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_lib.core import paths
from course_lib.harness import colab, runner

LESSONS = runner.discover()


# ---- paths without a repository -------------------------------------------------------------------------

@pytest.fixture
def no_repository(monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "IN_REPOSITORY", False)
    for var in ("COURSE_DATA_DIR", "COURSE_BUILD_DIR", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="the XDG folders are Linux's")
def test_without_a_repository_data_and_build_go_to_the_users_folders(no_repository, monkeypatch, tmp_path):
    assert paths.data_dir() == no_repository / ".local" / "share" / "course_lib" / "datasets"
    assert paths.build_dir() == no_repository / ".cache" / "course_lib" / "build"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")          # XDG: a relative value is ignored
    assert paths.data_dir() == tmp_path / "xdg-data" / "course_lib" / "datasets"
    assert paths.build_dir() == no_repository / ".cache" / "course_lib" / "build"
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "mine"))    # the variables still win
    assert paths.data_dir() == tmp_path / "mine"


def test_in_the_repository_nothing_changes():
    assert paths.IN_REPOSITORY and paths.ROOT == Path(__file__).resolve().parents[1]
    with pytest.raises(ValueError, match="kind"):
        paths.user_dir("config")


# ---- the install cell and the Colab links ---------------------------------------------------------------

@pytest.mark.parametrize("nb_path", LESSONS, ids=[p.stem for p in LESSONS])
def test_each_lesson_installs_course_lib_before_it_imports_it(nb_path):
    cells = [c for c in nbformat.read(nb_path, as_version=4).cells if c.cell_type == "code"]
    assert "parameters" in cells[0].metadata.get("tags", [])
    assert cells[1].source == colab.INSTALL_CELL, (
        f"{nb_path.stem}: the second code cell must be course_lib.harness.colab.INSTALL_CELL, verbatim")
    assert not any("course_lib" in c.source for c in cells[:1])


def test_the_readme_links_every_lesson_to_colab():
    readme = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    assert colab.readme_links([p.stem for p in LESSONS]) in readme, \
        "paste `python -m course_lib.harness.colab` into the README's Colab line"
    assert "cannot be reached from here" in readme
    assert colab.colab_url("01_rnn").endswith(f"/blob/{colab.BRANCH}/notebooks/01_rnn.ipynb")


# ---- the wheel, a fresh venv, one lesson alone ----------------------------------------------------------

def _build_wheel(out: Path) -> Path:
    """course_lib's wheel, built from a copy of its sources (so the build leaves nothing in the checkout)."""
    src = out / "src"
    shutil.copytree(paths.ROOT / "course_lib", src / "course_lib", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(paths.ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out / "dist"), str(src)], check=True, capture_output=True, timeout=600)
    [wheel] = (out / "dist").glob("course_lib-*.whl")
    return wheel


def _dependency_venv(wheel: Path) -> Path:
    """A venv with course_lib's dependencies only (the wheel installed, then course_lib removed), kept in the
    user's cache folder by the hash of what decides its contents, so a second run, even from a fresh clone (CI),
    reuses it: creating it took about 3 minutes on a loaded 2-core machine, reusing it about 1 s."""
    key = hashlib.sha256((paths.ROOT / "pyproject.toml").read_bytes() + (paths.ROOT / "constraints.txt").read_bytes()
                         + sys.version.encode()).hexdigest()[:12]
    venv = Path(os.environ.get("COURSE_TEST_VENVS") or paths.user_dir("cache") / "test-venvs") / key
    python = venv / "bin" / "python"
    if not (venv / ".ready").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel), "-c",
                        str(paths.ROOT / "constraints.txt")], check=True, timeout=1800)
        (venv / ".ready").touch()
    subprocess.run([str(python), "-m", "pip", "uninstall", "-y", "-q", "course_lib"], capture_output=True,
                   timeout=300)
    return venv


@pytest.mark.notebook
@pytest.mark.skipif(sys.platform == "win32", reason="the venv layout below is POSIX's")
def test_a_lesson_alone_in_an_empty_folder_installs_course_lib_and_runs(tmp_path):
    wheel = _build_wheel(tmp_path / "wheel")
    venv = _dependency_venv(wheel)
    python = venv / "bin" / "python"
    found = subprocess.run([str(python), "-c", "import importlib.util; print(importlib.util.find_spec('course_lib'))"],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path).stdout.strip()  # not the checkout
    assert found == "None", f"the venv must start without course_lib: {found}"

    folder, home = tmp_path / "alone", tmp_path / "home"
    folder.mkdir()
    home.mkdir()
    lesson = LESSONS[0]
    shutil.copy(lesson, folder / lesson.name)
    env = {"HOME": str(home), "PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin:/bin", "LANG": "C.UTF-8",
           "COURSE_PROFILE": "smoke", "COURSE_THREADS": os.environ.get("COURSE_THREADS", "1"),
           colab.PIP_ENV: str(wheel)}                       # the install cell installs this wheel, not GitHub
    env.update({k: v for k, v in os.environ.items() if k.startswith("PIP_")})    # offline machines: pip's sources
    # the data: the mirror CI names, else this checkout's verified datasets/ (the same <dataset>/<file> layout)
    env["COURSE_DATA_MIRROR"] = os.environ.get("COURSE_DATA_MIRROR") or str(paths.data_dir())
    proc = subprocess.run([str(python), "-m", "papermill", lesson.name, "executed.ipynb", "-p", "profile", "smoke",
                           "--no-progress-bar"], cwd=folder, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]

    executed = nbformat.read(folder / "executed.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert "[claim] rnn_cell_matches_torch: PASS" in text
    where = subprocess.run([str(python), "-c", "import course_lib; print(course_lib.__file__)"], capture_output=True,
                           text=True, timeout=120, cwd=folder).stdout.strip()
    assert where.startswith(str(venv)) and "site-packages" in where      # installed from the wheel, not editable
    assert sorted(p.name for p in folder.iterdir()) == sorted([lesson.name, "executed.ipynb"])  # nothing beside
    data = home / ".local" / "share" / "course_lib" / "datasets"
    assert (data / "tinyshakespeare" / "input.txt").is_file(), sorted(home.rglob("*"))[:20]


def test_each_lesson_page_of_the_book_links_to_colab(tmp_path):
    from course_lib.harness import book

    executed = tmp_path / "executed"
    executed.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 01 · A lesson"),
                                         nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nx = 1")])
    nbformat.write(nb, executed / "01_a.ipynb")
    readme, cards = tmp_path / "README.md", tmp_path / "cards.md"
    readme.write_text("# A course\n\nIntro.\n\n## For teachers\n\nGrade it.\n")
    cards.write_text("# Data\n")
    book.assemble(tmp_path / "src", executed, tmp_path / "results", readme, cards)
    page = nbformat.read(tmp_path / "src" / "01_a.ipynb", as_version=4)
    assert page.cells[1].cell_type == "markdown" and colab.colab_url("01_a") in page.cells[1].source
    assert page.cells[2].source == "x = 1"                  # nbval's marker is not shown in the book either
