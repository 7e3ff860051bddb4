"""`make bench`: speed and memory figures, measured side by side in one run, into build/bench.json.

This file measures the machine's fp32 matmul throughput (the ceiling every model is compared against) and
runs every suite in course_lib/benchmarks/ (each exposes `run(quick=False) -> list[dict]`).
Benchmarks, not tests: numbers are reported, never asserted; these machines are noisy, so compare ratios
taken within one run.
"""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import platform
import time

import torch

from ..core import paths
from ..core.runtime import describe, pick_device, set_threads


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn, repeats: int = 5, warmup: int = 2, device: torch.device | None = None) -> float:
    """Median seconds per call of `fn()` after `warmup` calls."""
    device = device or torch.device("cpu")
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def matmul_flops_per_second(n: int = 1024, device: torch.device | str = "cpu", dtype=torch.float32) -> float:
    """Measured throughput of an n x n by n x n matmul (2 n^3 FLOPs): this machine's practical ceiling."""
    device = torch.device(device)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    seconds = time_call(lambda: a @ b, repeats=7, warmup=3, device=device)
    return 2 * n**3 / seconds


def suites() -> list[str]:
    from . import benchmarks

    return sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__))


def _table(rows: list[dict]) -> str:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    cells = [[str(r.get(k, "")) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths))
    return "\n".join([line(keys), line(["-" * w for w in widths])] + [line(c) for c in cells])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the course benchmarks.")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run of the benchmarks)")
    parser.add_argument("--only", nargs="*", help=f"suites to run (default all: {suites()})")
    args = parser.parse_args(argv)

    threads = set_threads()
    device = pick_device()
    ceiling = matmul_flops_per_second(512 if args.quick else 1024, device)
    rows = [{"suite": "machine", "name": f"fp32 matmul {512 if args.quick else 1024}^3",
             "GFLOP/s": round(ceiling / 1e9, 1)}]
    for name in args.only or suites():
        module = importlib.import_module(f"course_lib.harness.benchmarks.{name}")
        rows += module.run(quick=args.quick)
    result = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "device": describe(device),
              "threads": threads, "torch": torch.__version__, "matmul_flops_per_second": ceiling,
              "quick": args.quick, "rows": rows}
    out = paths.build_dir() / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"device: {result['device']}, torch {torch.__version__}\n")
    for suite in dict.fromkeys(r["suite"] for r in rows):
        print(f"== {suite}")
        print(_table([{k: v for k, v in r.items() if k != "suite"} for r in rows if r["suite"] == suite]))
        print()
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
