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
        monkeypatch.setattr(runtime.os, "cpu_count", lambda: 2)
        runtime.setup("smoke", device="cpu")
        assert torch.get_num_threads() == 1
        runtime.setup("lesson", device="cpu")
        assert torch.get_num_threads() == 2
        monkeypatch.setenv("COURSE_THREADS", "2")
        runtime.setup("smoke", device="cpu")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_progress_honours_tqdm_disable(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert not progress.progress_enabled()
    assert progress.progress(range(3)).disable
    monkeypatch.setenv("TQDM_DISABLE", "0")
    assert progress.progress_enabled()
