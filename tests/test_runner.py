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
    monkeypatch.setattr(runner, "execute", lambda nb, profile, out, parameters=None, **kw: calls.append(parameters))
    assert runner.main(["--profile", "smoke", "--no-html", "--seed", "2"]) == 0
    assert calls == [{"seed": 2}, {"seed": 2}]
    calls.clear()
    runner.main(["--profile", "smoke", "--no-html"])
    assert calls == [None, None]                               # without it: each notebook's own default


def fake_execute(calls, interrupt_at=None):
    """runner.execute without a kernel: writes what a finished lesson writes (or half of it, then Ctrl-C)."""
    def run(nb, profile, out_dir, parameters=None, results_dir=None, **kw):
        calls.append(nb.name)
        seed = (parameters or {}).get("seed", 0)
        out_dir.mkdir(parents=True, exist_ok=True)
        results_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / nb.name).write_text(json.dumps({"half": True}) if nb.name == interrupt_at else "{}")
        (results_dir / f"{nb.stem}.json").write_text(json.dumps(
            {"notebook": nb.stem, "profile": profile, "seed": seed, "device": "cpu", "seconds": 1,
             "claims": [{"name": "holds", "passed": True, "required": True, "required_at": "always",
                         "metrics": {"run": len(calls)}}]}))
        if nb.name == interrupt_at:
            raise KeyboardInterrupt
    return run


@pytest.fixture
def two_passing(tmp_path, tmp_build, monkeypatch):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name in ("01_one", "02_two"):
        nbformat.write(lesson(name, 'claims.check("holds", True, required_at="always", x=1)'), folder / f"{name}.ipynb")
    monkeypatch.setattr(paths, "NOTEBOOKS", folder)
    return folder


def test_a_rerun_skips_lessons_whose_results_are_current(two_passing, tmp_build, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(runner, "execute", fake_execute(calls))
    assert runner.main(["--profile", "smoke", "--no-html"]) == 0 and calls == ["01_one.ipynb", "02_two.ipynb"]
    run = json.loads((tmp_build / "results" / "01_one.json").read_text())["run"]
    assert run["profile"] == "smoke" and run["seed"] == 0 and run["passed"] is True and run["code"]
    calls.clear()
    assert runner.main(["--profile", "smoke", "--no-html"]) == 0 and calls == []        # both current
    assert "01_one.ipynb: results current" in capsys.readouterr().out
    # another profile, another seed, FRESH, or a changed notebook: not current
    runner.main(["--profile", "lesson", "--no-html"])
    runner.main(["--profile", "smoke", "--no-html", "--seed", "1"])
    assert calls == ["01_one.ipynb", "02_two.ipynb"] * 2
    calls.clear()
    runner.main(["--profile", "smoke", "--no-html", "--seed", "1", "--fresh"])
    assert calls == ["01_one.ipynb", "02_two.ipynb"]
    calls.clear()
    nb = nbformat.read(two_passing / "02_two.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("an edit"))
    nbformat.write(nb, two_passing / "02_two.ipynb")
    runner.main(["--profile", "smoke", "--no-html", "--seed", "1"])
    assert calls == ["02_two.ipynb"]
    # the report holds this run's profile and seed only, and says what it left out
    report = (tmp_build / "report.md").read_text()
    assert "profile smoke, seed 1." in report and "run=" in report
    assert "Left out of it: the results of lessons" not in capsys.readouterr().out   # all at smoke, seed 1 now


def test_ctrl_c_keeps_the_previous_results_and_says_how_to_continue(two_passing, tmp_build, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(runner, "execute", fake_execute(calls))
    assert runner.main(["--profile", "smoke", "--no-html"]) == 0
    good = {p: p.read_bytes() for p in [tmp_build / "results" / "02_two.json", tmp_build / "executed" / "02_two.ipynb"]}
    monkeypatch.setattr(runner, "execute", fake_execute(calls, interrupt_at="02_two.ipynb"))
    assert runner.main(["--profile", "smoke", "--no-html", "--fresh", "--lessons", "01 02"]) == 130
    captured = capsys.readouterr()
    line = [l for l in captured.err.splitlines() if l.strip()]
    assert line == ["Interrupted (finished: 01; stopped: 02_two, its previous results kept). "
                    'To continue: make course PROFILE=smoke LESSONS="01 02"'], captured.err
    assert all(p.read_bytes() == b for p, b in good.items())             # nothing half-written replaced them
    assert not (tmp_build / ".partial").exists()
    calls.clear()
    monkeypatch.setattr(runner, "execute", fake_execute(calls))
    assert runner.main(["--profile", "smoke", "--no-html", "--lessons", "01 02"]) == 0
    assert calls == []            # 01 finished after the code and 02's previous results are current: both skipped


def test_ctrl_c_in_a_real_run_prints_one_line_and_no_traceback(tmp_path, tmp_build, ctrl_c_as_at_a_terminal):
    """A real SIGINT to the runner's process group (what Ctrl-C sends) while a kernel runs a cell."""
    import os
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(lesson("01_slow", 'import time\nprint("started", flush=True)\ntime.sleep(120)'),
                   folder / "01_slow.ipynb")
    env = {**os.environ, "COURSE_BUILD_DIR": str(tmp_build)}
    code = (f"from course_lib.core import paths; from pathlib import Path; paths.NOTEBOOKS = Path({str(folder)!r}); "
            "from course_lib.harness import runner; raise SystemExit(runner.main(['--profile', 'smoke', '--no-html']))")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            preexec_fn=ctrl_c_as_at_a_terminal)
    deadline = time.time() + 120
    stage = tmp_build / ".partial" / str(proc.pid) / "executed" / "01_slow.ipynb"
    while time.time() < deadline and "started" not in (stage.read_text() if stage.exists() else ""):
        time.sleep(0.5)
    assert stage.exists(), "the lesson never started"
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Traceback" not in out, err
    assert [l for l in err.splitlines() if l.strip()] == [
        "Interrupted (finished: none; stopped: 01_slow, its previous results kept). To continue: "
        "make course PROFILE=smoke"], err
    assert not (tmp_build / "results" / "01_slow.json").exists() and not (tmp_build / "executed").exists()


def test_gpu_profile_without_a_gpu_needs_force(two_passing, monkeypatch, capsys):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    calls = []
    monkeypatch.setattr(runner, "execute", fake_execute(calls))
    assert runner.main(["--profile", "gpu", "--no-html"]) == 2 and calls == []
    err = capsys.readouterr().err
    assert "PROFILE=gpu" in err and "no CUDA, no MPS" in err and "FORCE=1" in err
    assert runner.main(["--profile", "gpu", "--no-html", "--force"]) == 0 and len(calls) == 2
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runner.gpu_refusal("gpu", force=False) is None and runner.gpu_refusal("lesson", force=False) is None


def test_report_refuses_mixed_profiles_and_seeds(tmp_build):
    from course_lib.harness import report
    folder = tmp_build / "results"
    folder.mkdir(parents=True)
    for name, profile, seed in (("01_a", "smoke", 0), ("02_b", "lesson", 0), ("03_c", "smoke", 2)):
        (folder / f"{name}.json").write_text(json.dumps({"notebook": name, "profile": profile, "seed": seed,
                                                         "device": "cpu", "seconds": 1, "claims": []}))
    with pytest.raises(report.MixedRuns, match=r"01 at profile smoke, seed 0; 02 at profile lesson, seed 0; "
                                               r"03 at profile smoke, seed 2"):
        report.write_report()
    text = report.write_report(profile="smoke", seed=0).read_text()     # one run's settings: fine
    assert "profile smoke, seed 0." in text and "| 01_a | smoke |" in text and "02_b" not in text
    assert report.mixed_runs(report.load_results()[:1]) is None


def test_book_and_compare_refuse_mixed_profiles_and_seeds(tmp_path, capsys):
    """Both read build/results/ as one run; a mix is refused with the lessons named, a single run goes through."""
    from course_lib.harness import book, compare
    results, executed = tmp_path / "results", tmp_path / "executed"
    results.mkdir()
    executed.mkdir()
    nbformat.write(lesson("01_a", ""), executed / "01_a.ipynb")
    for name, profile, seed in (("01_a", "smoke", 0), ("02_b", "smoke", 1)):
        (results / f"{name}.json").write_text(json.dumps({"notebook": name, "profile": profile, "seed": seed,
                                                          "device": "cpu", "seconds": 1, "claims": []}))
    assert compare.main(["--results", str(results)]) == 2
    assert "01 at profile smoke, seed 0; 02 at profile smoke, seed 1" in capsys.readouterr().err
    with pytest.raises(book.BookError, match="01 at profile smoke, seed 0; 02 at profile smoke, seed 1"):
        book.assemble(tmp_path / "src", executed, results, tmp_path / "README.md", tmp_path / "cards.md")
    (results / "02_b.json").unlink()                       # one run: no refusal (the book stops later, no README)
    with pytest.raises(book.BookError, match="README.md: not found"):
        book.assemble(tmp_path / "src", executed, results, tmp_path / "README.md", tmp_path / "cards.md")
