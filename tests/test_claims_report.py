import json

import pytest
import torch

from course_lib.harness.claims import ClaimFailed, Claims
from course_lib.harness.report import write_report


@pytest.fixture(autouse=True)
def recorded(tmp_path, monkeypatch):
    """Claims record only where told (the runner's opt-in): these tests opt in to their private build/results."""
    monkeypatch.setenv("COURSE_RESULTS_DIR", str(tmp_path / "build" / "results"))


def test_a_notebook_run_outside_the_runner_records_nothing(tmp_build, monkeypatch, capsys):
    """JupyterLab, nbconvert, a student's copy: the claims are checked and printed, build/results/ untouched."""
    monkeypatch.delenv("COURSE_RESULTS_DIR")
    c = Claims("99_demo", "smoke", seed=4)
    with pytest.raises(ClaimFailed):
        c.check("holds", False, required_at="always", x=1)
    assert "[claim] holds: FAIL" in capsys.readouterr().out
    assert c.path is None and not tmp_build.exists()
    Claims("99_demo", "smoke", results_dir=tmp_build / "mine", seed=4).check("holds", True, required_at="always")
    assert json.loads((tmp_build / "mine" / "99_demo.json").read_text())["seed"] == 4      # explicit: recorded


def test_results_file_format(tmp_build):
    c = Claims("99_demo", "smoke", torch.device("cpu"))
    c.check("mechanics_hold", True, required_at="always", err=torch.tensor(1.234567e-7), n=3)
    c.check("learning_result", False, required_at="lesson", acc=0.51234)  # not required at smoke: no raise
    data = json.loads((tmp_build / "results" / "99_demo.json").read_text())
    assert set(data) == {"notebook", "profile", "seed", "device", "torch", "cpu", "seconds", "claims"}
    assert data["notebook"] == "99_demo" and data["profile"] == "smoke" and data["device"] == "cpu"
    assert data["torch"] == torch.__version__ and data["seconds"] >= 0
    first, second = data["claims"]
    assert first == {"name": "mechanics_hold", "passed": True, "required": True, "required_at": "always",
                     "metrics": {"err": 1.235e-07, "n": 3}}
    assert second["passed"] is False and second["required"] is False and second["metrics"] == {"acc": 0.5123}


def test_required_failure_raises_after_recording(tmp_build):
    c = Claims("99_demo", "lesson")
    with pytest.raises(ClaimFailed, match=r"'lstm_wins'.*rnn=0.2"):
        c.check("lstm_wins", False, required_at="lesson", rnn=0.2)
    data = json.loads((tmp_build / "results" / "99_demo.json").read_text())
    assert data["claims"][0]["name"] == "lstm_wins" and data["claims"][0]["passed"] is False


def test_bad_profile_and_required_at():
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        Claims("x", "fast")


def test_report_collects_every_claim(tmp_build):
    c = Claims("01_demo", "smoke")
    c.check("a", True, required_at="always", x=1)
    with pytest.raises(ValueError, match="required_at"):
        c.check("b", True, required_at="sometimes")
    md = write_report().read_text()
    assert "| 01_demo | a | x=1 | pass | always |" in md
    assert (tmp_build / "html" / "index.html").read_text().count("<tr class='ok'>") == 1


@pytest.mark.parametrize("metric", ["seconds", "train_s", "cached_s", "train_minutes", "tokens_per_s",
                                    "steps_per_sec", "speedup", "time_slope", "throughput", "latency_ms"])
@pytest.mark.parametrize("required_at", ["always", "lesson", "gpu"])
def test_required_claim_may_not_carry_a_clock_metric(tmp_build, metric, required_at):
    """The course's rule: a claim that can fail a run must not depend on the machine's speed."""
    c = Claims("99_demo", "smoke")
    with pytest.raises(ValueError, match=rf"'fast'.*clock metric.*{metric}"):
        c.check("fast", True, required_at=required_at, **{metric: 1.0})
    assert c.records == []


def test_reported_claim_may_carry_timings_and_work_counts_are_not_clocks(tmp_build):
    c = Claims("99_demo", "smoke")
    c.check("speed", True, required_at="never", speedup=6.0, cached_s=0.6, tokens_per_s=7000.0)
    c.check("work", True, required_at="always", flops_ratio=60.0, steps=1200, test_sentences=8197,
            positions_recomputed=4096, memory_slope=1.9)
    assert [r["name"] for r in c.records] == ["speed", "work"]


def test_lesson_opens_and_closes_a_notebook(tmp_build, capsys):
    from course_lib.harness.lesson import Lesson
    lesson = Lesson("99_demo", "smoke", seed=3, device="cpu")
    assert str(lesson.device) == "cpu" and lesson.claims.profile == "smoke"
    lesson.claims.check("works", True, required_at="always")
    lesson.finish()
    out = capsys.readouterr().out
    assert "profile=smoke" in out and "notebook_within_10_minutes" in out and "works" in out
    data = json.loads((tmp_build / "results" / "99_demo.json").read_text())
    assert data["seed"] == 3
    timing = data["claims"][-1]
    assert timing["name"] == "notebook_within_10_minutes" and timing["required_at"] == "never"
    assert timing["metrics"]["minutes"] < 1
