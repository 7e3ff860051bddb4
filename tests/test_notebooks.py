"""Every lesson notebook: hygiene checks on the committed file, then its run at `smoke`, checked for errors, failed
required claims and noise.

Every lesson is executed at smoke once per test session by the grading (tests/graded_course.py: the solution
notebook is one of the three submissions graded side by side), so its checks read that run rather than execute
the lesson a fourth time. The runner's own path (papermill, parameters injected, results recorded by the runner,
nbval re-running the cells marked NBVAL_CHECK_OUTPUT) is exercised on the first two lessons, the cheap ones; the
CI's book path runs them once more through `make course`."""
import json
import os
import re
import subprocess
import sys

import jupytext
import nbformat
import pytest

from course_lib.core import paths

from course_lib.harness import runner

NOTEBOOKS = runner.discover()
IDS = [p.stem for p in NOTEBOOKS]
THROUGH_THE_RUNNER = NOTEBOOKS[:2]
# The grading sandbox sends the kernel's own stdout *and* stderr to kernel.log (harness/sandbox.py). ipykernel
# writes this banner to its stdout when it is started from a connection file with no parent process to report
# to, as the sandbox starts it; no learner's terminal shows it. Anything else in the log is noise.
KERNEL_BANNER = re.compile(r"^(NOTE: When using the `ipython kernel` entry point, Ctrl-C will not work\.|To exit, you "
                           r"will have to explicitly quit this process, by either sending|\"quit\" from a client, or "
                           r"using Ctrl-\\ in UNIX-like environments\.|To read more about this, see "
                           r"https://github\.com/ipython/ipython/issues/2049|To connect another client to this kernel, "
                           r"use:|\s+--existing \S+kernel\S*\.json)$")


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_there_are_lessons():
    assert [p.name[:2] for p in NOTEBOOKS][:2] == ["01", "02"]


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_hygiene(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in _code_cells(nb):
        assert cell.outputs == [] and cell.execution_count is None, "commit notebooks with outputs stripped"
    first = _code_cells(nb)[0]
    assert "parameters" in first.metadata.get("tags", []), "the first code cell must be tagged `parameters`"
    assert 'profile = os.environ.get("COURSE_PROFILE", "lesson")' in first.source


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_ipynb_matches_its_jupytext_source(nb_path):
    """notebooks/NN_x.py is what authors edit; the committed .ipynb must be generated from it (`make notebooks`)."""
    source = nb_path.with_suffix(".py")
    assert source.exists(), f"{source.name} (the jupytext source) is missing"
    want = jupytext.read(source)
    have = nbformat.read(nb_path, as_version=4)
    strip = lambda cells: [(c.cell_type, c.source, c.metadata.get("tags", []), c.metadata.get("nbgrader"))
                           for c in cells]
    assert strip(have.cells) == strip(want.cells), f"run `make notebooks` to regenerate {nb_path.name}"


def _claim_calls(source: str):
    """(name, required_at source, metric names) of every `claims.check(...)` call in a jupytext source."""
    import ast
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    for node in ast.walk(ast.parse(code)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "check"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "claims"):
            keywords = {k.arg: k.value for k in node.keywords if k.arg}
            required = ast.unparse(keywords.pop("required_at")) if "required_at" in keywords else "'lesson'"
            yield ast.unparse(node.args[0]), required, sorted(keywords)


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_no_required_claim_reads_the_clock(nb_path):
    """The course's rule (README, contributing): a claim that can fail a run must hold on any machine, so its
    metrics are never a time or a speed. Static, so it also covers claims that only run at `gpu`."""
    from course_lib.harness.claims import CLOCK_METRIC
    calls = list(_claim_calls(nb_path.with_suffix(".py").read_text(encoding="utf-8")))
    assert calls, "the lesson checks no claims"
    clocked = [(name, required, [m for m in metrics if CLOCK_METRIC.search(m)]) for name, required, metrics in calls
               if required != "'never'" and any(CLOCK_METRIC.search(m) for m in metrics)]
    assert not clocked, f"required claims carrying clock metrics: {clocked}"


def test_no_data_files_tracked():
    out = subprocess.run(["git", "ls-files", "datasets"], cwd=paths.ROOT, capture_output=True, text=True).stdout
    assert out.split() in ([], ["datasets/README.md"]), f"data files are tracked: {out}"


def test_unknown_parameter_is_refused():
    with pytest.raises(ValueError, match="unknown parameter"):
        runner.check_parameters(NOTEBOOKS[0], {"profile": "smoke", "epochz": 3})


@pytest.mark.notebook
@pytest.mark.parametrize("nb_path", THROUGH_THE_RUNNER, ids=[p.stem for p in THROUGH_THE_RUNNER])
def test_notebook_runs_at_smoke_through_the_runner(nb_path, tmp_path, tmp_build, monkeypatch, capfd):
    # tmp_build: `make test` must never overwrite the evidence a `make course` run left in build/
    # no TQDM_DISABLE: the progress bars are whatever the runner gives `make course` (harness/noise.py checks them)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    out_dir = paths.build_dir() / "test-executed"
    results = paths.results_dir() / f"{nb_path.stem}.json"
    runner.execute(nb_path, "smoke", out_dir, progress=False, timeout=600)
    data = json.loads(results.read_text())
    assert data["profile"] == "smoke" and data["claims"], "the lesson recorded no claims"
    failed = [c["name"] for c in data["claims"] if c["required"] and not c["passed"]]
    assert not failed
    executed = nbformat.read(out_dir / nb_path.name, as_version=4)
    errors = [o for c in _code_cells(executed) for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    # no noise (harness/noise.py): stderr, stateless widgets, bare True/False, figures drawn twice; and nothing
    # unexpected from the kernel on the terminal (its stderr is this process's: capfd reads it)
    from course_lib.harness import noise
    found = noise.notebook_noise(executed) + [f"terminal: {line}" for line in noise.terminal_noise(capfd.readouterr().err)]
    assert not found, "\n".join(found)
    # nbval re-runs the executed copy and compares the cells marked NBVAL_CHECK_OUTPUT (deterministic ones)
    if any("NBVAL_CHECK_OUTPUT" in c.source for c in _code_cells(executed)):
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--nbval-lax",
                               "--nbval-current-env", str(out_dir / nb_path.name)],
                              cwd=tmp_path, capture_output=True, text=True,
                              env={**os.environ, "COURSE_PROFILE": "smoke"})
        assert proc.returncode == 0, proc.stdout[-3000:]


@pytest.mark.notebook
@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_at_smoke(nb_path, course):
    """The lesson as graded (the solution notebook, hidden tests included, in the grading sandbox at smoke): no
    error, every required claim passed, and no noise (harness/noise.py) in the notebook or on the kernel's terminal,
    which the sandbox logs; cells marked NBVAL_CHECK_OUTPUT print the same in the three gradings' runs."""
    from graded_course import ONE_SOLVED, SOLUTION, UNTOUCHED

    from course_lib.harness import classroom, noise

    graded = course.graded(nb_path)
    executed = graded.autograded[SOLUTION]
    errors = [f"cell {i}: {o.get('ename')}: {str(o.get('evalue'))[:200]}" for i, c in enumerate(executed.cells)
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, "\n".join(errors)
    sandbox = classroom.sandbox_dir(course.build / "nbgrader", SOLUTION, nb_path.stem)
    results = json.loads((sandbox / "home" / "build" / "results" / f"{nb_path.stem}.json").read_text())
    assert results["profile"] == "smoke" and results["claims"], "the lesson recorded no claims"
    assert [c["name"] for c in results["claims"] if c["required"] and not c["passed"]] == []
    terminal = "\n".join(line for line in (sandbox / "kernel.log").read_text(encoding="utf-8", errors="replace")
                         .splitlines() if not KERNEL_BANNER.match(line))
    found = noise.notebook_noise(executed) + [f"terminal: {line}" for line in noise.terminal_noise(terminal)]
    assert not found, "\n".join(found)
    marked = [i for i, c in enumerate(executed.cells) if c.cell_type == "code" and "NBVAL_CHECK_OUTPUT" in c.source]

    def printed(nb, i):
        return [(o.get("output_type"), o.get("text"), (o.get("data") or {}).get("text/plain"))
                for o in nb.cells[i].get("outputs", [])]
    for student in (UNTOUCHED, ONE_SOLVED):  # independent runs of the same lesson cells: deterministic outputs agree
        assert [printed(graded.autograded[student], i) for i in marked] == [printed(executed, i) for i in marked]
