"""`make doctor`: its findings on a broken machine, its time estimate, its exit status."""
import hashlib
import json
import sys

import pytest

from course_lib.core import data
from course_lib.harness import doctor, estimate


def _registry(content: bytes) -> dict:
    """A one-file dataset registered with the sha256 of `content`."""
    rf = data.RemoteFile("words.txt", hashlib.sha256(content).hexdigest(), len(content), ("https://invalid/words",))
    return {"toy": data.Dataset("toy", (rf,), license="test", source="test")}


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "datasets"))
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    return tmp_path / "datasets"


def test_verified_dataset_is_ok(data_dir):
    (data_dir / "toy").mkdir(parents=True)
    (data_dir / "toy" / "words.txt").write_bytes(b"good bytes\n")
    [finding] = doctor.check_datasets(_registry(b"good bytes\n"))
    assert finding.status == "ok" and "sha256 verified" in finding.what


def test_corrupt_dataset_is_reported_with_its_path_and_the_advice(data_dir):
    path = data_dir / "toy" / "words.txt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"good bytez\n")                      # same size, other bytes
    findings = doctor.check_datasets(_registry(b"good bytes\n"))
    [bad] = [f for f in findings if f.status != "ok"]
    assert bad.status == "FAIL" and str(path) in bad.what and "corrupt" in bad.what
    assert "make data" in bad.advice and str(path) in bad.advice


def test_missing_dataset_says_make_data_and_downloads_nothing(data_dir):
    [finding] = doctor.check_datasets(_registry(b"anything"))
    assert finding.status == "warn" and "1 file missing" in finding.what and "make data" in finding.what
    assert not (data_dir / "toy").exists()                  # nothing fetched, no folder made


def test_many_missing_files_are_one_line(data_dir):
    files = tuple(data.RemoteFile(f"f{i}.txt", "0" * 64, 1, ("https://invalid/f",)) for i in range(25))
    findings = doctor.check_datasets({"toy": data.Dataset("toy", files, license="test", source="test")})
    assert [f.what.split(" (")[0] for f in findings] == ["25 files missing"]
    assert findings[0].what.endswith("\u2192 make data") and "toy/f0.txt" in findings[0].what


def test_missing_dataset_names_a_mirror_that_has_it(data_dir, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "toy").mkdir(parents=True)
    (mirror / "toy" / "words.txt").write_bytes(b"anything")
    monkeypatch.setenv(data.MIRROR_ENV, str(mirror))
    [finding] = doctor.check_datasets(_registry(b"anything"))
    assert finding.status == "warn" and data.MIRROR_ENV in finding.advice and "1 of 1 found there" in finding.advice


REF = {"profile": "lesson", "machine": {"matmul_gflops": 200.0, "threads": 2, "cores": 2, "source": "test"},
       "lessons": {"01_x": {"seconds": 120, "note": "quiet"}, "02_y": {"seconds": None, "note": ""}}}


def test_estimate_scales_inversely_with_measured_speed():
    per_core = 100e9                                       # the reference's 200 GFLOP/s over 2 threads
    same = {r["lesson"]: r["minutes"] for r in estimate.estimate_minutes(per_core, REF)}
    twice = {r["lesson"]: r["minutes"] for r in estimate.estimate_minutes(2 * per_core, REF)}
    half = {r["lesson"]: r["minutes"] for r in estimate.estimate_minutes(per_core / 2, REF)}
    assert same["01_x"] == pytest.approx(2.0)              # 120 s on a machine as fast as the reference
    assert twice["01_x"] == pytest.approx(1.0) and half["01_x"] == pytest.approx(4.0)
    assert same["02_y"] is None                            # no reference run: no invented figure
    assert "no reference" in "\n".join(estimate.estimate_lines(per_core, REF))


def test_a_busy_machine_scales_the_estimate_and_says_so():
    quiet = estimate.estimate_minutes(100e9, REF, cores=2, load=0.0)[0]["minutes"]
    busy = estimate.estimate_minutes(100e9, REF, cores=2, load=5.0)[0]["minutes"]
    assert busy == pytest.approx(quiet * 3.5)              # 2 cores shared with 5 runnable jobs: 2x2/7 of them
    assert estimate.estimate_minutes(100e9, REF, cores=16, load=0.0)[0]["minutes"] == pytest.approx(quiet)
    assert "busy" in "\n".join(estimate.estimate_lines(100e9, REF, cores=2, load=3.0))
    assert "quiet" in "\n".join(estimate.estimate_lines(100e9, REF, cores=2, load=0.1))
    with pytest.raises(ValueError, match="load"):
        estimate.cores_for_a_lesson(2, -1.0, 2)


def test_doctor_reads_the_load_average(monkeypatch, capsys):
    monkeypatch.setattr(doctor, "run_checks", lambda: [doctor.Finding("python", "ok", "Python")])
    monkeypatch.setattr(estimate.os, "getloadavg", lambda: (6.0, 6.0, 6.0))
    assert doctor.main(["--gflops", "79.8"]) == 0
    assert "The machine is busy: load average 6.0" in capsys.readouterr().out


def test_committed_reference_names_every_lesson():
    from course_lib.harness import runner

    ref = estimate.load_reference()
    assert ref["machine"]["matmul_gflops"] > 0 and ref["machine"]["source"] and ref["source"]
    assert set(ref["lessons"]) == {p.stem for p in runner.discover()}
    for lesson, entry in ref["lessons"].items():
        assert entry["seconds"] is None or entry["seconds"] > 0, lesson


def test_the_readme_table_of_seconds_is_rendered_from_the_reference():
    """One source: the doctor's reference seconds and the README's (or the evidence page's) table agree."""
    from course_lib.core import paths

    table = estimate.seconds_table()
    pages = [*sorted(paths.ROOT.glob("*.md")), *sorted((paths.ROOT / "docs").rglob("*.md"))]
    holding = [p for p in pages if p.exists() and "| notebook | profile | seconds |" in p.read_text(encoding="utf-8")]
    assert holding, "no page carries the table of seconds"
    for page in holding:
        assert table in page.read_text(encoding="utf-8"), \
            f"{page.name}: its table of seconds differs from {estimate.REFERENCE.name}; paste " \
            "`python -m course_lib.harness.estimate --table` (or change the JSON)"


def _kernelspec(folder, argv0):
    kdir = folder / "kernels" / "python3"
    kdir.mkdir(parents=True)
    (kdir / "kernel.json").write_text(json.dumps({
        "argv": [argv0, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python"}))
    return kdir


def test_kernel_pointing_to_a_missing_interpreter_fails(tmp_path, monkeypatch):
    kdir = _kernelspec(tmp_path, str(tmp_path / "gone" / "python3"))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))      # searched before the venv's own kernels
    [finding] = doctor.check_kernel()
    assert finding.status == "FAIL" and str(kdir) in finding.what and "ipykernel install" in finding.advice


@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="needs a venv: compares it with its base Python")
def test_kernel_pointing_to_another_python_fails(tmp_path, monkeypatch):
    other = getattr(sys, "_base_executable", None) or sys.executable
    if other == sys.executable:
        pytest.skip("no base interpreter distinct from the venv's")
    _kernelspec(tmp_path, other)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    [finding] = doctor.check_kernel()
    assert finding.status == "FAIL" and "not this environment's Python" in finding.what


def test_kernel_running_this_interpreter_is_ok(tmp_path, monkeypatch):
    _kernelspec(tmp_path, sys.executable)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    [finding] = doctor.check_kernel()
    assert finding.status == "ok", finding


def test_constraints_mismatch_is_a_warning(tmp_path):
    import pytest as installed

    pins = tmp_path / "constraints.txt"
    pins.write_text("pytest==0.0.1\n# a comment\nnot-installed-pkg==1.0\n")
    findings = doctor.check_packages(pins)
    assert any(f.status == "warn" and f"pytest {installed.__version__} (tested 0.0.1)" in f.what for f in findings)
    pins.write_text(f"pytest=={installed.__version__}\n")
    assert [f.status for f in doctor.check_packages(pins)] == ["ok"]


def test_exit_status_is_nonzero_when_something_fails(monkeypatch, capsys):
    broken = doctor.Finding("data", "FAIL", "/x/toy/words.txt is corrupt", "delete it and run `make data`")
    monkeypatch.setattr(doctor, "run_checks", lambda: [doctor.Finding("python", "ok", "Python"), broken])
    assert doctor.main(["--gflops", "159.6"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  data" in out and "-> delete it and run `make data`" in out and "1 problem(s)" in out
    monkeypatch.setattr(doctor, "run_checks", lambda: [doctor.Finding("python", "ok", "Python")])
    assert doctor.main(["--no-estimate"]) == 0


def test_a_check_that_raises_is_a_failure_not_a_crash(monkeypatch):
    def boom():
        raise OSError("disk gone")
    monkeypatch.setattr(doctor, "check_resources", boom)
    monkeypatch.setattr(doctor, "check_models", lambda: [])     # keep it quick: no hashing of 200 MB
    [bad] = [f for f in doctor.run_checks() if f.section == "resources"]
    assert bad.status == "FAIL" and "disk gone" in bad.what
