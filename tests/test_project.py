"""The project's own files agree with each other: one source of dependencies, one torch pin."""
import re
import tomllib

import yaml

from course_lib.core import paths

ROOT = paths.ROOT


def test_environment_yml_wraps_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    assert py["project"]["requires-python"].startswith(">=3.11")
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert '-e ".[dev]"' in pip or "-e .[dev]" in pip
    # nothing but torch (pinned like the Makefile) and the project itself: pyproject is the single source
    extra = [p for p in pip if not p.startswith("-e") and not p.startswith("torch==")]
    assert extra == [], f"environment.yml lists dependencies pyproject.toml should own: {extra}"


def test_one_torch_pin_everywhere():
    make_pin = re.search(r"^TORCH := (torch==[\d.]+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    env_pins = re.findall(r"torch==[\d.]+", (ROOT / "environment.yml").read_text())
    assert env_pins == [make_pin]
    torch_range = next(d for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
                       if d.startswith("torch"))
    lo, hi = re.findall(r"[\d.]+", torch_range)[:2]
    version = tuple(int(x) for x in make_pin.split("==")[1].split("."))
    assert tuple(int(x) for x in lo.split(".")) <= version < tuple(int(x) for x in hi.split("."))


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci and "make test" in readme and "make course" in readme
    assert "COURSE_DATA_MIRROR" in ci


def test_makefile_targets_exist():
    targets = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), re.M))
    assert {"setup", "course", "test", "lab", "data", "bench", "clean", "notebooks"} <= targets
