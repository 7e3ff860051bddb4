"""Runtime: which device, how many threads, seeding, mixed precision, and the profile switch.

Everything is device-agnostic: code receives a `torch.device` and never calls `.cuda()` itself.
"""
from __future__ import annotations

import contextlib
import os
import platform
import random
import time

import numpy as np
import torch

PROFILES = ("smoke", "lesson", "gpu")


def check_profile(profile: str) -> str:
    """Return `profile` if it is one the course knows, else raise a ValueError that lists them."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: expected one of {', '.join(PROFILES)}")
    return profile


def _mps_known_good() -> bool:
    # MPS has given wrong losses for LSTMs and some reductions on older PyTorch releases
    # (pytorch#92615 and learners' reports), so it is opt-in unless torch is recent.
    if os.environ.get("COURSE_ALLOW_MPS") == "1":
        return True
    major, minor = (int(x) for x in torch.__version__.split(".")[:2])
    return (major, minor) >= (2, 9)


def pick_device(preference: str | None = None) -> torch.device:
    """CUDA if present, then Apple MPS (where known-good), else CPU.

    `preference` (or the `COURSE_DEVICE` variable) forces one, e.g. "cpu" to compare against a GPU run.
    """
    preference = preference or os.environ.get("COURSE_DEVICE") or "auto"
    if preference != "auto":
        device = torch.device(preference)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was asked for but torch.cuda.is_available() is False")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError("device 'mps' was asked for but this machine has no MPS backend")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available() and _mps_known_good():
        return torch.device("mps")
    return torch.device("cpu")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS says, e.g. a container's share)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):      # macOS and Windows have no sched_getaffinity
        return os.cpu_count() or 1


def _cpu_busy_seconds() -> float | None:
    """Seconds of CPU time the whole machine has spent busy since boot (Linux /proc/stat), or None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait keeps a core taken
    ticks = [int(x) for x in fields[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def cores_busy_elsewhere(window: float = 0.2) -> float:
    """How many cores other processes kept busy during the next `window` seconds (0.0 where unmeasurable).

    The machine's busy time minus this process's own CPU time, over wall time: two busy loops beside us read
    about 2.0, a quiet machine about 0.0."""
    before, own_before, start = _cpu_busy_seconds(), time.process_time(), time.perf_counter()
    if before is None:
        return 0.0
    time.sleep(window)
    after, own_after, elapsed = _cpu_busy_seconds(), time.process_time(), time.perf_counter() - start
    if after is None or elapsed <= 0:
        return 0.0
    return max(0.0, (after - before - (own_after - own_before)) / elapsed)


_auto_threads: int | None = None     # the count set_threads() chose by itself, so later calls may revise it
_cores_taken = 0                     # how many cores other jobs were seen to keep busy when it chose


def set_threads(n: int | None = None) -> int:
    """Use `n` CPU threads (default: `COURSE_THREADS`, else the cores nobody else is using). Returns the count.

    Why not every core: torch's threads wait for each other at every operation, and a thread whose core another
    job has taken stalls them all. With a 2-core job beside it, a char-RNN training step took 131 ms on
    2 threads and 43 ms on 1 (22 ms on 2 threads alone): so count the cores other processes keep busy, and
    use the rest (at least one). `OMP_WAIT_POLICY=PASSIVE` also avoids the stall but made the quiet machine's
    steps about 1.5x slower."""
    global _auto_threads, _cores_taken
    n = n or int(os.environ.get("COURSE_THREADS", "0"))
    if n:
        _auto_threads, _cores_taken = None, 0
    else:
        cores = usable_cores()
        _cores_taken = min(cores, int(cores_busy_elsewhere() + 0.25))   # taken: others use 3/4 of it or more
        n = _auto_threads = max(1, cores - _cores_taken)
    torch.set_num_threads(n)
    return torch.get_num_threads()


def refresh_threads() -> int:
    """Look again at how busy the machine is, if the thread count is still the one set_threads() chose itself
    (a count pinned by `COURSE_THREADS`, set_threads(n) or torch.set_num_threads is left alone)."""
    if _auto_threads is not None and torch.get_num_threads() == _auto_threads:
        return set_threads()
    return torch.get_num_threads()


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a torch.Generator seeded the same way."""
    from .checks import integer

    integer("seed", seed, 0)
    if seed >= 2**32:
        raise ValueError(f"seed={seed}: expected an integer in [0, 2**32) (NumPy's range)")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA and MPS generators
    return torch.Generator().manual_seed(seed)


def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 matrix instructions (AVX512-BF16 or AMX), where oneDNN runs bf16 matmuls fast."""
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(check and check()) or bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())


def cpu_amp_allowed() -> bool:
    """Whether CPU bf16 autocast may be used: the CPU has native bf16, unless `COURSE_CPU_AMP=0` turns it off.

    `COURSE_CPU_AMP=0` runs the fp32 path on any CPU, so one machine can check a lesson on both numeric paths
    (results must hold on both: learners' CPUs differ). `COURSE_CPU_AMP=1` insists on bf16 and fails where
    the CPU has no bf16 instructions (emulated bf16 would be very slow).
    """
    wanted = os.environ.get("COURSE_CPU_AMP", "").strip()
    if wanted not in ("", "0", "1"):
        raise ValueError(f"COURSE_CPU_AMP={wanted!r}: expected 0 (fp32), 1 (bf16) or unset (bf16 where native)")
    if wanted == "0":
        return False
    if wanted == "1" and not cpu_has_native_bf16():
        raise RuntimeError("COURSE_CPU_AMP=1 but this CPU has no native bf16 (AVX512-BF16 or AMX); unset it")
    return cpu_has_native_bf16()


def autocast(device: torch.device, enabled: bool = True, cpu: bool = False):
    """bf16 autocast on CUDA (the fast path on modern GPUs); a no-op context on MPS.

    On CPU it is off unless `cpu=True` *and* the CPU has native bf16 (and `COURSE_CPU_AMP` is not 0): for the
    course's small models bf16 only adds conversions, and without the instructions it is emulated (slow).
    MiniLM (22 M parameters) does gain: 1.6x per fine-tuning step on an AVX512-BF16 CPU.
    """
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    if enabled and cpu and device.type == "cpu" and cpu_amp_allowed():
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def cpu_name() -> str:
    """The CPU's model and the SIMD path torch's kernels take on it ("AMD EPYC, AVX2"): two machines that
    differ here round differently, so a long training run can end elsewhere (make compare says so)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    simd = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")()
    return f"{model}, {simd}" if simd else model


def describe(device: torch.device) -> str:
    """One line naming the device, for results files and the evidence table."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "mps (Apple)"
    n = torch.get_num_threads()
    return f"cpu ({platform.machine()}, {n} thread{'s' if n != 1 else ''})"


def setup(profile: str, seed: int = 0, device: str | None = None) -> torch.device:
    """The first line of every lesson: check the profile, pick the device, set threads, seed.

    Prints one line so a learner sees what the notebook runs on.
    """
    check_profile(profile)
    # smoke sizes are tiny: a second thread only adds synchronisation, and on a busy machine a thread that waits
    # for a descheduled sibling made lesson 05's smoke training 15x slower than one thread (measured)
    set_threads(1 if profile == "smoke" and not os.environ.get("COURSE_THREADS") else None)
    dev = pick_device(device)
    seed_everything(seed)
    busy = "" if dev.type != "cpu" or _auto_threads is None or not _cores_taken else \
        f" | {_cores_taken} of {usable_cores()} cores busy with other jobs"
    print(f"profile={profile} | device={describe(dev)}{busy} | torch {torch.__version__} | seed={seed}")
    return dev
