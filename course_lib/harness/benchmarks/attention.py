"""Attention cost: the written-out softmax(q k^T / sqrt(d)) v against PyTorch's fused
`F.scaled_dot_product_attention`, time and peak memory, at several sequence lengths.

Both compute a (length x length) table of scores per head, so time grows ~length^2. The written-out version
also *stores* that table (scores, then weights), so its memory grows ~length^2 as well; the fused kernel
works through it in tiles and keeps far less. Lesson 05 uses `measure` for its log-log plot.

Peak memory: on CUDA, `torch.cuda.max_memory_allocated`. On CPU, PyTorch keeps no peak counter, so we run
the call under PyTorch's profiler with `profile_memory=True`, which records the bytes every operator
allocates and frees, and replay those in time order: the peak is the highest running total.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from ...transformer.attention import scaled_dot_product_attention
from ...core.plots import fit_power_law
from ...core.runtime import pick_device

# Sequence lengths for lesson 05's cost plot. On CPU they stop before two score tables outgrow the cache
# (on our shared 2-core machine times jumped 10-30x past ~8 MB): beyond that point the clock measures the
# memory system, not attention's arithmetic. On a GPU short sequences cost only the kernel launch, so the
# lengths start where the L^2 work dominates.
COST_LENGTHS = {"smoke": [128, 256, 512], "lesson": [128, 192, 256, 384, 512, 768],
                "gpu": [4096, 8192, 16384, 32768]}

IMPLEMENTATIONS: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "written-out": lambda q, k, v: scaled_dot_product_attention(q, k, v)[0],
    "sdpa": F.scaled_dot_product_attention,
}


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Some PyTorch builds log every profiler start and stop from C++ to stderr (file descriptor 2, which
    Jupyter shows in the notebook); silence that stream for the duration of one measurement."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_memory_bytes(fn: Callable[[], object], device: torch.device | str = "cpu") -> int:
    """Bytes allocated at the busiest moment of `fn()`, above what was allocated before it (see above)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    if device.type != "cpu":
        raise ValueError(f"peak memory is measured on 'cpu' or 'cuda', not {device.type!r}")
    # the profiler's light (non-Kineto) mode: it starts in milliseconds instead of importing the compiler stack
    with _quiet_native_stderr(), torch.autograd.profiler.profile(use_kineto=False, profile_memory=True) as prof:
        fn()
    changes = []          # (when, bytes): an operator's own allocations at its start, its own frees at its end
    for event in prof.function_events:
        delta = event.self_cpu_memory_usage
        if delta:
            changes.append((event.time_range.start if delta > 0 else event.time_range.end, -delta))
    live = peak = 0
    for _, minus_delta in sorted(changes):      # at equal times, allocations before frees
        live -= minus_delta
        peak = max(peak, live)
    return peak


def best_time(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Fastest of `repeats` timed calls (after one warm-up). On a shared machine other processes only ever
    add time, so the minimum is the steadiest estimate of the call's own cost."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times)


def counted_flops(fn: Callable[[], object]) -> int:
    """Floating-point operations of the matrix products in `fn()`, counted by PyTorch's FlopCounterMode: the
    same on every machine. Fused kernels it has no formula for (SDPA on a CPU) count as 0."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def measure(lengths: list[int], head_dim: int = 64, heads: int = 1, batch: int = 1,
            device: torch.device | str = "cpu", repeats: int = 5, threads: int | None = None) -> list[dict]:
    """For each length and implementation: best seconds per call, measured peak bytes, counted FLOPs, and the
    bytes of one (batch, heads, length, length) fp32 score table, the analytic figure to compare with.

    `threads` pins the CPU thread count while timing: one thread measures the work itself, undisturbed by
    how the operating system schedules helper threads on a busy machine.
    """
    device = torch.device(device)
    if threads is not None:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return measure(lengths, head_dim, heads, batch, device, repeats)
        finally:
            torch.set_num_threads(before)
    g = torch.Generator().manual_seed(0)
    rows = []
    for length in lengths:
        q, k, v = (torch.randn(batch, heads, length, head_dim, generator=g).to(device) for _ in range(3))
        for name, fn in IMPLEMENTATIONS.items():
            call = lambda fn=fn: fn(q, k, v)
            with torch.no_grad():
                seconds = best_time(call, repeats, device)
                peak = peak_memory_bytes(call, device)
                flops = counted_flops(call)
            rows.append({"impl": name, "length": length, "seconds": seconds, "peak_bytes": peak, "flops": flops,
                         "score_table_bytes": batch * heads * length * length * 4})
    return rows


def run(quick: bool = False) -> list[dict]:
    """`make bench` rows: one per (implementation, length), plus the fitted time and memory slopes."""
    device = pick_device()
    if device.type == "cuda":
        lengths = COST_LENGTHS["gpu"][:2] if quick else COST_LENGTHS["gpu"]
    else:
        lengths = [256, 512, 1024] if quick else [256, 512, 1024, 2048, 4096]
    rows = measure(lengths, heads=1, device=device, repeats=3 if quick else 5)
    out = [{"suite": "attention", "name": f"{r['impl']} L={r['length']}", "ms": round(r["seconds"] * 1e3, 3),
            "peak_MiB": round(r["peak_bytes"] / 2**20, 2), "score_table_MiB": round(r["score_table_bytes"] / 2**20, 2)}
           for r in rows]
    for impl in IMPLEMENTATIONS:
        mine = [r for r in rows if r["impl"] == impl]
        out.append({"suite": "attention", "name": f"{impl} slope (log-log)",
                    "time_slope": round(fit_power_law(lengths, [r["seconds"] for r in mine])[1], 2),
                    "memory_slope": round(fit_power_law(lengths, [max(r["peak_bytes"], 1) for r in mine])[1], 2)})
    return out
