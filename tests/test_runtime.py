import pytest
import torch

from course_lib.core import progress, runtime


def test_device_pick_and_forced_devices(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    dev = runtime.pick_device()
    assert dev.type in ("cuda", "mps", "cpu")
    assert runtime.pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="cuda"):
            runtime.pick_device("cuda")
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert runtime.pick_device() == torch.device("cpu")


def test_seed_everything_repeats():
    runtime.seed_everything(3)
    a = torch.randn(5)
    runtime.seed_everything(3)
    assert torch.equal(a, torch.randn(5))


def test_autocast_is_a_no_op_on_cpu():
    x = torch.randn(4, 4)
    with runtime.autocast(torch.device("cpu")):
        assert (x @ x).dtype == torch.float32


def test_cpu_bf16_only_when_asked_and_native(monkeypatch):
    x = torch.randn(4, 4)
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    with runtime.autocast(torch.device("cpu"), cpu=True):
        assert (x @ x).dtype == torch.bfloat16
    with runtime.autocast(torch.device("cpu"), enabled=False, cpu=True):
        assert (x @ x).dtype == torch.float32
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: False)   # emulated bf16 would be slow: stay fp32
    with runtime.autocast(torch.device("cpu"), cpu=True):
        assert (x @ x).dtype == torch.float32


def test_course_cpu_amp_picks_the_numeric_path(monkeypatch):
    """COURSE_CPU_AMP=0 runs the fp32 path on a bf16 CPU, so both paths can be checked on one machine."""
    x = torch.randn(4, 4)
    monkeypatch.delenv("COURSE_CPU_AMP", raising=False)
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setenv("COURSE_CPU_AMP", "0")
    with runtime.autocast(torch.device("cpu"), cpu=True):
        assert (x @ x).dtype == torch.float32
    monkeypatch.setenv("COURSE_CPU_AMP", "1")
    with runtime.autocast(torch.device("cpu"), cpu=True):
        assert (x @ x).dtype == torch.bfloat16
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(RuntimeError, match="no native bf16"):
        runtime.autocast(torch.device("cpu"), cpu=True)
    monkeypatch.setenv("COURSE_CPU_AMP", "yes")
    with pytest.raises(ValueError, match="COURSE_CPU_AMP='yes'"):
        runtime.cpu_amp_allowed()


def test_profiles_and_setup(capsys):
    with pytest.raises(ValueError, match="smoke, lesson, gpu"):
        runtime.check_profile("quick")
    dev = runtime.setup("smoke", seed=1, device="cpu")
    assert dev == torch.device("cpu") and "profile=smoke" in capsys.readouterr().out


def test_smoke_uses_one_thread_unless_told(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("COURSE_THREADS", raising=False)
        monkeypatch.setattr(runtime, "_auto_threads", None)
        monkeypatch.setattr(runtime, "usable_cores", lambda: 2)
        monkeypatch.setattr(runtime, "cores_busy_elsewhere", lambda window=0.2: 0.0)
        runtime.setup("smoke", device="cpu")
        assert torch.get_num_threads() == 1
        runtime.setup("lesson", device="cpu")
        assert torch.get_num_threads() == 2
        monkeypatch.setenv("COURSE_THREADS", "2")
        runtime.setup("smoke", device="cpu")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("cores, busy, threads", [
    (2, 0.0, 2), (2, 0.6, 2), (2, 0.8, 1), (2, 1.0, 1), (2, 1.96, 1), (2, 7.5, 1), (16, 3.0, 13), (1, 0.0, 1)])
def test_threads_leave_the_cores_other_jobs_use(monkeypatch, cores, busy, threads):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("COURSE_THREADS", raising=False)
        monkeypatch.setattr(runtime, "_auto_threads", None)
        monkeypatch.setattr(runtime, "usable_cores", lambda: cores)
        monkeypatch.setattr(runtime, "cores_busy_elsewhere", lambda window=0.2: busy)
        assert runtime.set_threads() == threads
    finally:
        torch.set_num_threads(before)


def test_the_thread_count_follows_the_load_unless_it_was_pinned(two_core_load, monkeypatch, capsys):
    load = two_core_load
    runtime.setup("lesson", device="cpu")
    assert torch.get_num_threads() == 2 and "busy" not in capsys.readouterr().out
    load["busy"] = 2.0                                   # a 2-core job starts beside the lesson
    assert runtime.refresh_threads() == 1
    runtime.setup("lesson", device="cpu")
    assert "1 thread) | 2 of 2 cores busy with other jobs" in capsys.readouterr().out
    load["busy"] = 0.0
    assert runtime.refresh_threads() == 2                # and it ends
    torch.set_num_threads(3)                             # someone chose a count: it stays
    load["busy"] = 2.0
    assert runtime.refresh_threads() == 3
    monkeypatch.setenv("COURSE_THREADS", "2")
    runtime.set_threads()
    assert runtime.refresh_threads() == 2                # pinned by COURSE_THREADS


def test_busy_cores_are_measured_without_counting_our_own_work(monkeypatch):
    clock = {"machine": 100.0, "own": 5.0}

    def sleep(seconds):                                      # in this window: 1.5 s of our own CPU, 3.5 s in all
        clock["machine"] += 3.5
        clock["own"] += 1.5
    monkeypatch.setattr(runtime, "_cpu_busy_seconds", lambda: clock["machine"])
    monkeypatch.setattr(runtime.time, "process_time", lambda: clock["own"])
    monkeypatch.setattr(runtime.time, "sleep", sleep)
    times = iter([10.0, 11.0, 12.0])
    monkeypatch.setattr(runtime.time, "perf_counter", lambda: next(times))
    assert runtime.cores_busy_elsewhere() == pytest.approx(2.0)
    monkeypatch.setattr(runtime, "_cpu_busy_seconds", lambda: None)   # no /proc/stat (macOS, Windows)
    assert runtime.cores_busy_elsewhere() == 0.0


@pytest.mark.skipif(not __import__("os").path.exists("/proc/stat"), reason="Linux only: reads /proc/stat")
def test_busy_loops_beside_us_are_seen():
    import subprocess
    import sys
    import time
    loops = min(2, runtime.usable_cores())
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(loops)]
    try:
        time.sleep(0.5)
        assert runtime.cores_busy_elsewhere(0.5) >= loops - 0.5
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_progress_honours_tqdm_disable(monkeypatch):
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)     # a test that ran the runner in-process set it off
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert not progress.progress_enabled()
    assert progress.progress(range(3)).disable
    monkeypatch.setenv("TQDM_DISABLE", "0")
    assert progress.progress_enabled()
