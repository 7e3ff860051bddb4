"""`make compare`: a learner's results against reference runs; the reference built from result folders."""
import json

import pytest

from course_lib.harness import compare


def _result(lesson="01_x", profile="smoke", device="cpu", **claims):
    """A results file as Claims writes it; each claim is (passed, required, required_at, metrics)."""
    return {"notebook": lesson, "profile": profile, "device": device, "torch": "2.13.0", "seconds": 10.0,
            "claims": [{"name": name, "passed": p, "required": r, "required_at": at, "metrics": m}
                       for name, (p, r, at, m) in claims.items()]}


def _reference(*values, **extra):
    """A reference from len(values) runs of one lesson; values are 01_x's acc in each run."""
    runs = [(f"seed {i}", [_result(acc_claim=(True, False, "lesson", {"acc": v, "seconds_taken": 3.0 + i,
                                                                      "bucket": {"short": v / 2}}),
                                   oracle=(True, True, "always", {"gap": 0.0}), **extra)])
            for i, v in enumerate(values)]
    return compare.build_reference(runs, "smoke")


def _verdicts(rows):
    return {(r["claim"], r["metric"]): r["verdict"] for r in rows}


def test_a_number_outside_the_range_of_the_reference_runs_is_flagged():
    ref = _reference(0.80, 0.84, 0.82)
    inside = _verdicts(compare.compare([_result(acc_claim=(True, False, "lesson", {"acc": 0.83})), ], ref))
    outside = _verdicts(compare.compare([_result(acc_claim=(True, False, "lesson", {"acc": 0.90,
                                                                                     "bucket": {"short": 0.1}}))], ref))
    assert inside["acc_claim", "acc"] == "ok"
    assert outside["acc_claim", "acc"] == compare.OUTSIDE
    assert outside["acc_claim", "bucket.short"] == compare.OUTSIDE        # nested metrics are compared too
    rows = compare.compare([_result(acc_claim=(True, False, "lesson", {"acc": 0.90}))], ref)
    assert "!! OUTSIDE" in compare.table(rows, flagged_only=True)
    assert "0.8 .. 0.84 (3 runs)" in compare.table(rows)


def test_one_reference_run_gives_no_range_and_no_flag():
    ref = _reference(0.80)
    v = _verdicts(compare.compare([_result(acc_claim=(True, False, "lesson", {"acc": 0.20}))], ref))
    assert v["acc_claim", "acc"] == "one reference run: no range"


def test_timings_are_shown_but_never_compared():
    ref = _reference(0.80, 0.84)
    v = _verdicts(compare.compare([_result(acc_claim=(True, False, "lesson", {"acc": 0.81, "seconds_taken": 999.0,
                                                                              "device": "cuda (H100)"}))], ref))
    assert v["acc_claim", "seconds_taken"] == v["acc_claim", "device"] == "machine-dependent: not compared"


def test_a_claim_missing_from_your_results_is_listed():
    ref = _reference(0.80, 0.84)
    rows = compare.compare([_result(acc_claim=(True, False, "lesson", {"acc": 0.81}))], ref)   # no `oracle`
    missing = [r for r in rows if r["verdict"].startswith(compare.MISSING)]
    assert [(r["lesson"], r["claim"]) for r in missing] == [("01_x", "oracle")]
    assert "1 MISSING" in compare.summary(rows, [_result()], ref)


def test_a_failing_required_claim_is_shown_and_fails_the_command(tmp_path, capsys):
    ref_path = compare.write_reference(_reference(0.80, 0.84), tmp_path / "claims_smoke.json")
    results = tmp_path / "results"
    results.mkdir()
    mine = _result(acc_claim=(True, False, "lesson", {"acc": 0.81}), oracle=(False, True, "always", {"gap": 0.5}))
    (results / "01_x.json").write_text(json.dumps(mine))
    assert compare.main(["--results", str(results), "--reference", str(ref_path)]) == 1
    out = capsys.readouterr().out
    assert "!! 01_x  oracle" in out and "yours FAIL: FAIL (required)" in out and "1 required claim(s) FAILED" in out
    # all claims pass and numbers are inside: exit 0 even with --strict
    mine["claims"][1].update(passed=True, metrics={"gap": 0.0})
    (results / "01_x.json").write_text(json.dumps(mine))
    assert compare.main(["--results", str(results), "--reference", str(ref_path), "--strict"]) == 0


def test_a_claim_that_passed_in_every_reference_run_but_fails_here_is_flagged():
    ref = _reference(0.80, 0.84)
    rows = compare.compare([_result(acc_claim=(False, False, "lesson", {"acc": 0.81}),
                                    oracle=(True, True, "always", {"gap": 0.0}))], ref)
    assert _verdicts(rows)["acc_claim", "(result)"] == compare.FLAGS[3]


def test_reference_keeps_each_runs_values_and_a_lesson_missing_from_a_run():
    runs = [("a", [_result(c=(True, True, "always", {"x": 1}))]),
            ("b", [_result(c=(True, True, "always", {"x": 2})), _result("02_y", c=(True, True, "always", {"x": 5}))])]
    ref = compare.build_reference(runs, "smoke")
    assert ref["devices"]["cpu"]["01_x"]["claims"]["c"]["metrics"]["x"] == [1, 2]
    assert ref["devices"]["cpu"]["02_y"]["runs"] == ["b"]                   # one run: never a range
    assert ref["devices"]["cpu"]["02_y"]["claims"]["c"]["metrics"]["x"] == [5]


def test_results_on_another_device_kind_use_the_reference_by_kind():
    ref = compare.build_reference([("cpu run", [_result(c=(True, True, "always", {"x": 1.0}))]),
                                   ("gpu run", [_result(device="cuda:0", c=(True, True, "always", {"x": 9.0}))])],
                                  "smoke")
    assert set(ref["devices"]) == {"cpu", "cuda"}
    rows = compare.compare([_result(device="cuda", c=(True, True, "always", {"x": 9.0}))], ref)
    assert _verdicts(rows)["c", "x"] == "one reference run: no range"
    assert [r["reference"] for r in rows if r["metric"] == "x"] == ["9 (1 run)"]


def test_readme_evidence_rows_become_one_reference_run(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# t\n\n## Evidence from the last run\n\nOn torch 2.13.0+cpu.\n\n"
                      "| lesson | claim | numbers | result | required at |\n|---|---|---|---|---|\n"
                      "| 01_x | acc_claim | acc=0.819, majority=0.480, by={'a': 1.5} | pass | lesson |\n"
                      "| 01_x | loss | val_loss=1.692 nats/char (uniform 4.174), 1500 steps | pass | lesson |\n"
                      "| 01_x | prose | at T=50: LSTM 1.000, RNN 0.168 | fail (not required) | never |\n"
                      "| 01_x | val_loss_at_most_2.2 | val_loss=1.692 | pass | lesson |\n"
                      "| 01_x | (dropped) old_claim | could not fail | — | — |\n\n"
                      "| notebook | profile | seconds |\n|---|---|---|\n| 01_x | lesson | 84 (note) |\n\n## Next\n")
    ref = compare.reference_from_readme(readme)
    lesson = ref["devices"]["cpu"]["01_x"]
    assert lesson["seconds"] == [84] and ref["runs"][0]["torch"] == ["2.13.0+cpu"]
    assert lesson["claims"]["acc_claim"]["metrics"] == {"acc": [0.819], "majority": [0.48], "by.a": [1.5]}
    assert lesson["claims"]["loss"]["metrics"] == {"val_loss": [1.692]}
    assert lesson["claims"]["prose"]["metrics"] == {} and lesson["claims"]["prose"]["passed"] == [False]
    assert lesson["claims"]["val_loss_at_most_2.2"]["metrics"] == {"val_loss": [1.692]}   # a dot in a claim's name
    assert set(lesson["claims"]) == {"acc_claim", "loss", "prose", "val_loss_at_most_2.2"}  # a dropped claim's note is not
    rows = compare.compare([_result(profile="lesson", prose=(False, False, "never", {"lstm": 1.0}))], ref)
    assert _verdicts(rows)["prose", "(numbers)"] == "reference numbers are prose: not compared"


def test_build_gathers_one_run_from_lesson_folders_and_the_evidence_page(tmp_path):
    import json
    readme = tmp_path / "EVIDENCE.md"
    readme.write_text("# t\n\n## Evidence from the last run\n\nOn torch 2.13.0+cpu.\n\n"
                      "| lesson | claim | numbers | result | required at |\n|---|---|---|---|---|\n"
                      "| 01_x | acc_claim | acc=0.80 | pass | lesson |\n"
                      "| 01_x | prose | LSTM 1.000, RNN 0.168 | pass | never |\n"
                      "| 02_y | c | x=1.0 | pass | always |\n\n## Next\n")
    folders = {}
    for seed, (acc, x) in {1: (0.84, 2.0), 2: (0.82, 3.0)}.items():
        for lesson, claims in (("01_x", {"acc_claim": (True, False, "lesson", {"acc": acc}),
                                         "prose": (True, False, "never", {})}),
                               ("02_y", {"c": (True, True, "always", {"x": x})})):
            folder = tmp_path / f"L{seed}-{lesson}" / "results"
            folder.mkdir(parents=True)
            (folder / f"{lesson}.json").write_text(json.dumps(_result(lesson=lesson, profile="lesson", **claims)))
            folders.setdefault(seed, []).append(str(folder.parent))
    out = tmp_path / "ref.json"
    assert compare.main(["build", "--profile", "lesson", "--out", str(out), f"seed 0={readme}",
                         *(f"seed {s}={','.join(f)}" for s, f in folders.items())]) == 0
    ref = json.loads(out.read_text())
    assert [r["label"] for r in ref["runs"]] == ["seed 0", "seed 1", "seed 2"]
    assert ref["devices"]["cpu"]["01_x"]["claims"]["acc_claim"]["metrics"] == {"acc": [0.8, 0.84, 0.82]}
    assert ref["devices"]["cpu"]["02_y"]["claims"]["c"]["metrics"] == {"x": [1.0, 2.0, 3.0]}
    assert ref["devices"]["cpu"]["01_x"]["claims"]["prose"]["text"] == "LSTM 1.000, RNN 0.168"
    verdicts = _verdicts(compare.compare([_result(lesson="01_x", profile="lesson",
                                                  acc_claim=(True, False, "lesson", {"acc": 0.9}))], ref))
    assert verdicts["acc_claim", "acc"] == compare.OUTSIDE          # three runs make a range that can be left
    with pytest.raises(ValueError, match="02_y found in more than one"):
        compare.run_from_spec(f"seed 1={folders[1][1]},{folders[2][1]}")


@pytest.mark.parametrize("profile", ["smoke", "lesson"])
def test_committed_references_cover_the_lessons(profile):
    from course_lib.harness import runner

    ref = json.loads(compare.reference_path(profile).read_text(encoding="utf-8"))
    assert ref["profile"] == profile and ref["runs"]
    lessons = set(ref["devices"]["cpu"])
    every = {p.stem for p in runner.discover()}
    assert lessons <= every
    if profile == "smoke":
        assert len(ref["runs"]) >= 2, "smoke ranges come from several seeded runs"
        assert lessons == every


def _one(claim_passed=True, required=True, **metrics):
    return _result(c=(claim_passed, required, "always", metrics))


def test_an_error_size_is_judged_by_its_claim_not_by_the_seeds_range():
    ref = compare.build_reference([(f"seed {i}", [_one(max_abs_error=1.192e-07, gap_sdpa=2.4e-07)]) for i in range(3)],
                                  "smoke")
    smaller = _verdicts(compare.compare([_one(max_abs_error=0.0, gap_sdpa=5.9e-08)], ref))
    assert smaller["c", "max_abs_error"] == smaller["c", "gap_sdpa"] == compare.ERROR_OK
    larger_but_passing = _verdicts(compare.compare([_one(max_abs_error=3e-06)], ref))
    assert larger_but_passing["c", "max_abs_error"] == compare.ERROR_OK
    failing = compare.compare([_one(False, True, max_abs_error=0.5)], ref)
    assert _verdicts(failing)["c", "max_abs_error"] == compare.ERROR_FAILED
    assert _verdicts(failing)["c", "(result)"] == compare.FAILED          # the claim's row carries the flag
    assert not compare.is_flag(compare.ERROR_OK)
    # a metric that only looks similar is still compared by range
    ref = compare.build_reference([(f"s{i}", [_one(gain=v)]) for i, v in enumerate((1.0, 1.1))], "smoke")
    assert _verdicts(compare.compare([_one(gain=2.0)], ref))["c", "gain"] == compare.OUTSIDE


def test_a_ratio_of_speeds_is_machine_dependent_but_a_ratio_of_counts_is_compared():
    ref = compare.build_reference([(f"s{i}", [_one(ratio=v, rnn_tokens_per_s=100.0 * v)]) for i, v in
                                   enumerate((1.2, 1.3))], "smoke")
    assert _verdicts(compare.compare([_one(ratio=3.0, rnn_tokens_per_s=9.0)], ref))["c", "ratio"] == compare.MACHINE
    ref = compare.build_reference([(f"s{i}", [_one(ratio=v)]) for i, v in enumerate((1.2, 1.3))], "smoke")
    assert _verdicts(compare.compare([_one(ratio=3.0)], ref))["c", "ratio"] == compare.OUTSIDE


def test_a_chaotic_claim_is_shown_never_flagged(monkeypatch):
    ref = compare.build_reference([(f"s{i}", [_one(final_loss=v)]) for i, v in enumerate((0.5, 0.6))], "smoke")
    assert _verdicts(compare.compare([_one(final_loss=2.0)], ref))["c", "final_loss"] == compare.OUTSIDE
    monkeypatch.setitem(compare.CHAOTIC, ("01_x", "c"), "a loss after a phase change")
    rows = compare.compare([_one(final_loss=2.0)], ref)
    assert _verdicts(rows)["c", "final_loss"] == compare.CHAOS
    assert "2" in compare.table(rows) and compare.compact(rows).startswith("Nothing needs a look")


def test_the_last_rounded_digit_is_not_a_difference():
    ref = compare.build_reference([(f"s{i}", [_one(loss=3.368)]) for i in range(3)], "smoke")
    assert _verdicts(compare.compare([_one(loss=3.369)], ref))["c", "loss"] == "ok"      # 1 unit in the 4th digit
    assert _verdicts(compare.compare([_one(loss=3.375)], ref))["c", "loss"] == compare.OUTSIDE


def test_half_the_seeds_spread_is_allowed_on_each_side():
    # the same seed on another thread count lands near its run, not on it: half the spread (here 0.05) either side
    ref = compare.build_reference([(f"s{i}", [_one(acc=v)]) for i, v in enumerate((0.60, 0.70, 0.64))], "smoke")
    verdict = lambda v: _verdicts(compare.compare([_one(acc=v)], ref))["c", "acc"]
    assert verdict(0.56) == verdict(0.745) == "ok"
    assert verdict(0.54) == verdict(0.76) == compare.OUTSIDE


def test_default_output_is_compact_and_fits_80_columns(tmp_path, capsys):
    ref = _reference(0.80, 0.84, 0.82)
    ref_path = compare.write_reference(ref, tmp_path / "claims_smoke.json")
    results = tmp_path / "results"
    results.mkdir()
    mine = _result(acc_claim=(True, False, "lesson", {"acc": 0.95, "bucket": {"short": 0.41}}),
                   oracle=(True, True, "always", {"gap": 0.0}))
    (results / "01_x.json").write_text(json.dumps(mine))
    assert compare.main(["--results", str(results), "--reference", str(ref_path)]) == 0
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 80
    assert "!! 01_x  acc_claim" in out and "acc = 0.95: OUTSIDE" in out
    assert "bucket.short" not in out and "oracle" not in out                  # only what is off
    assert compare.main(["--results", str(results), "--reference", str(ref_path), "--all"]) == 0
    full = capsys.readouterr().out
    assert "bucket.short" in full and "oracle" in full and "lesson  claim" in full


def test_a_line_says_whether_this_cpu_is_the_references():
    ref = compare.build_reference([("s0", [dict(_one(x=1.0), cpu="AMD EPYC, AVX2")])], "smoke")
    assert ref["runs"][0]["cpu"] == ["AMD EPYC, AVX2"]
    same = compare.cpu_line([dict(_one(), cpu="AMD EPYC, AVX2")], ref)
    other = compare.cpu_line([dict(_one(), cpu="Apple M3, NEON")], ref)
    assert same.startswith("Same CPU") and "differs" in other and "AVX2" in other and "NEON" in other
    unknown = compare.cpu_line([dict(_one(), cpu="Apple M3, NEON")], _reference(0.8, 0.9))
    assert "do not name theirs" in unknown
    assert "older course_lib" in compare.cpu_line([_one()], ref)


def test_results_name_their_cpu(tmp_path):
    from course_lib.harness.claims import Claims

    c = Claims("01_x", "smoke", results_dir=tmp_path)
    c.check("works", True, required_at="always", x=1)
    data = json.loads((tmp_path / "01_x.json").read_text())
    assert data["cpu"] and isinstance(data["cpu"], str)
