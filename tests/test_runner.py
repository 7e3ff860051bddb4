"""The runner: a failing lesson is reported and the run goes on; bad PROFILE and repeated lessons are refused
or collapsed up front; no stale executed copy survives a new run."""
import json

import nbformat
import pytest

from course_lib.core import paths

from course_lib.harness import runner


def lesson(name: str, body: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('import os\nprofile = os.environ.get("COURSE_PROFILE", "lesson")')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        f"from course_lib.harness.claims import Claims\nclaims = Claims({name!r}, profile)\n{body}")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.fixture
def two_lessons(tmp_path, tmp_build, monkeypatch):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(lesson("01_breaks", 'claims.check("holds", False, required_at="always", x=1)'),
                   folder / "01_breaks.ipynb")
    nbformat.write(lesson("02_works", 'claims.check("holds", True, required_at="always", x=2)'),
                   folder / "02_works.ipynb")
    monkeypatch.setattr(paths, "NOTEBOOKS", folder)
    return folder


@pytest.mark.notebook
def test_a_failing_lesson_does_not_hide_the_next_ones(two_lessons, tmp_build, capsys):
    stale = tmp_build / "executed" / "01_breaks.ipynb"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")                                   # an old copy must not pass for this run's
    assert runner.main(["--profile", "smoke", "--no-html"]) == 1
    err = capsys.readouterr().err
    assert "FAILED: 01_breaks.ipynb" in err and "1 of 2 notebook(s) FAILED" in err
    assert "ClaimFailed" in err and "Going on with the next lessons" in err
    works = json.loads((tmp_build / "results" / "02_works.json").read_text())
    assert works["claims"][0]["passed"] is True                # the lesson after the failure ran
    assert nbformat.read(stale, as_version=4).cells             # the executed copy is this run's
    report = (tmp_build / "report.md").read_text()
    assert "| 01_breaks | holds | x=1 | FAIL" in report and "| 02_works | holds | x=2 | pass" in report


def test_profile_from_the_environment_is_checked_up_front(two_lessons, monkeypatch, capsys):
    monkeypatch.setenv("PROFILE", "fast")
    with pytest.raises(SystemExit) as exit_:
        runner.main(["--no-html"])
    assert exit_.value.code == 2 and "PROFILE='fast'" in capsys.readouterr().err


def test_a_lesson_named_twice_runs_once(two_lessons):
    assert [p.name for p in runner.discover("02 2 02")] == ["02_works.ipynb"]
    with pytest.raises(SystemExit, match="no notebook numbered 07"):
        runner.discover("01 07")


def test_seed_reaches_every_notebook(two_lessons, monkeypatch):
    """--seed N runs each lesson with its `seed` parameter set (make compare's reference: several seeded runs)."""
    calls = []
    monkeypatch.setattr(runner, "execute", lambda nb, profile, out, parameters=None: calls.append(parameters))
    assert runner.main(["--profile", "smoke", "--no-html", "--seed", "2"]) == 0
    assert calls == [{"seed": 2}, {"seed": 2}]
    calls.clear()
    runner.main(["--profile", "smoke", "--no-html"])
    assert calls == [None, None]                               # without it: each notebook's own default
