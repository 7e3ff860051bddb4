"""How long will each lesson take here? (`make doctor`'s estimate, and the README's table of reference seconds.)

One source: course_lib/harness/reference/lesson_seconds.json holds each lesson's seconds at profile lesson on the
reference machine (with a note on how that run went) and that machine's matmul figure. The README's table of
seconds is rendered from it (`python -m course_lib.harness.estimate --table`; a test keeps the two equal).

The estimate here = reference seconds
    x (reference machine's matmul speed per core / this machine's, best of a few 1-thread calls)
    x (reference cores / the cores a lesson gets here).
The cores a lesson gets: of C usable cores with a 1-minute load average L from other jobs, a time-shared share of
C x C / (C + L), never more than the reference's cores (the lessons are sized for 2; more cores do not scale them).
On a quiet machine like the reference that is 1x; on 2 cores with a load of 5 it is 3.5x (measured: lesson 01 took
8.4 min under such a load where the load-blind estimate said 2.3).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from ..core import paths

REFERENCE = Path(__file__).with_name("reference") / "lesson_seconds.json"
BUSY = 0.5            # other jobs keeping half a core or more busy: say the machine is busy


def load_reference(path: Path | None = None) -> dict:
    return json.loads((path or REFERENCE).read_text(encoding="utf-8"))


def load_average() -> float | None:
    """The 1-minute load average (runnable processes), None where the OS has none (Windows)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def cores_for_a_lesson(cores: int, load: float, reference_cores: int) -> float:
    """The cores a lesson can count on: a time-shared share of `cores` beside `load` other runnable jobs."""
    if cores < 1 or load < 0:
        raise ValueError(f"cores={cores}, load={load}: expected cores >= 1 and load >= 0")
    return min(float(reference_cores), cores * cores / (cores + load))


def measure_core_flops(seconds: float = 5.0, n: int = 256) -> float:
    """fp32 matmul FLOP/s of one core: the best of repeated 1-thread calls for about `seconds`. The best of small
    (256^3, about a millisecond) products, so that the load is not counted twice: some calls fit between the other
    jobs' time slices (measured at load 4 on 2 cores: best of 256^3 82 GFLOP/s, of 1024^3 23; the load is
    accounted for separately, by cores_for_a_lesson)."""
    import torch

    from .bench import matmul_flops_per_second

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    figures = []
    start = time.perf_counter()
    try:
        while not figures or time.perf_counter() - start < seconds:
            figures.append(matmul_flops_per_second(n, "cpu"))
    finally:
        torch.set_num_threads(before)
    return max(figures)


def estimate_minutes(core_flops: float, reference: dict | None = None, cores: int | None = None,
                     load: float = 0.0) -> list[dict]:
    """Each lesson's minutes at profile lesson here; None where there is no reference run."""
    if core_flops <= 0:
        raise ValueError(f"core_flops={core_flops}: expected a positive FLOP/s figure")
    reference = reference or load_reference()
    machine = reference["machine"]
    ref_core = machine["matmul_gflops"] * 1e9 / machine["threads"]
    share = cores_for_a_lesson(cores or machine["cores"], load, machine["cores"])
    factor = ref_core / core_flops * machine["cores"] / share
    rows = []
    for lesson, ref in reference["lessons"].items():
        seconds = ref.get("seconds")
        rows.append({"lesson": lesson, "reference_seconds": seconds, "note": ref.get("note", ""),
                     "minutes": None if seconds is None else seconds * factor / 60})
    return rows


def estimate_lines(core_flops: float, reference: dict | None = None, cores: int | None = None,
                   load: float | None = 0.0) -> list[str]:
    reference = reference or load_reference()
    machine = reference["machine"]
    cores = cores or machine["cores"]
    rows = estimate_minutes(core_flops, reference, cores, load or 0.0)
    share = cores_for_a_lesson(cores, load or 0.0, machine["cores"])
    ref_core = machine["matmul_gflops"] / machine["threads"]
    lines = [f"fp32 matmul 256^3 on one core here (best call): {core_flops / 1e9:.1f} GFLOP/s; reference machine: "
             f"{ref_core:.1f} per core ({machine['matmul_gflops']} on {machine['threads']} threads, "
             f"{machine['source']})."]
    if load is None:
        lines.append("This OS reports no load average: the estimate assumes a quiet machine.")
    elif load >= BUSY:
        lines.append(f"The machine is busy: load average {load:.1f} on {cores} core(s), so a lesson gets about "
                     f"{share:.1f} of them; the estimate assumes the load stays (rerun `make doctor` when quiet).")
    else:
        lines.append(f"The machine is quiet (load average {load:.1f} on {cores} core(s)).")
    lines += ["", f"{'lesson':16s} {'reference s':>11s} {'estimate here':>14s}"]
    for r in rows:
        est = "no reference" if r["minutes"] is None else f"{r['minutes']:.1f} min"
        ref = "-" if r["reference_seconds"] is None else str(r["reference_seconds"])
        lines.append(f"{r['lesson']:16s} {ref:>11s} {est:>14s}")
    known = [r["minutes"] for r in rows if r["minutes"] is not None]
    lines.append(f"{'all of them':16s} {'':>11s} {sum(known):>10.0f} min"
                 + (f"  (+ {len(rows) - len(known)} lesson(s) without a reference)" if len(known) < len(rows) else ""))
    where = REFERENCE.relative_to(paths.ROOT) if REFERENCE.is_relative_to(paths.ROOT) else REFERENCE
    lines.append(f"Rough: a lesson is not all matmuls, and some reference runs were on a loaded machine or 1 thread "
                 f"(notes in {where}).")
    return lines


def seconds_table(reference: dict | None = None) -> str:
    """The README's table of reference seconds, rendered from the JSON (the one source)."""
    reference = reference or load_reference()
    rows = ["| notebook | profile | seconds |", "|---|---|---|"]
    for lesson, ref in reference["lessons"].items():
        if ref.get("seconds") is None:                 # not measured yet: no row (make doctor says "no reference")
            continue
        note = f" ({ref['note']})" if ref.get("note") else ""
        rows.append(f"| {lesson} | {reference['profile']} | {ref['seconds']}{note} |")
    return "\n".join(rows)


if __name__ == "__main__":
    if sys.argv[1:] != ["--table"]:
        raise SystemExit("usage: python -m course_lib.harness.estimate --table   (the README's seconds table)")
    print(seconds_table())
