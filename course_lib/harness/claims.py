"""Claims: each lesson states what it proves as checks, recorded into `build/results/<notebook>.json`.

    claims = Claims("02_lstm", profile)
    claims.check("lstm_remembers_longer", lstm_acc > 0.9 and rnn_acc < 0.6, required_at="lesson",
                 T=T, lstm=lstm_acc, rnn=rnn_acc)

`required_at` says at which profiles the claim must hold: "always" (mechanics: oracles, shapes, loss falls),
"lesson" (learning results: lesson and gpu), "gpu", or "never" (reported only). A required claim that fails
raises `ClaimFailed` with its numbers, after it has been written down.

The course's rule: a claim that can fail a run must hold on every machine the course supports (a laptop, a busy
CI machine, a faster server, a GPU). So a required claim may not carry a time, a speed or a speed ratio among
its metrics (`check` refuses one); timings are measurements, recorded in claims with required_at="never".
Where speed is the lesson's point, the required claim counts the work (FLOPs, tokens recomputed, sequential
steps) and the measured time goes beside it as a reported claim.

Who writes build/results/: only the runner (`make course`), which names the folder for its kernels in
`COURSE_RESULTS_DIR` (a staging folder it moves into place when the lesson finishes). A notebook run anywhere
else (JupyterLab, the learner's workspace, nbconvert, a student's copy) checks and prints its claims but records
nothing, so it never mixes into the evidence. Setting `COURSE_RESULTS_DIR` yourself (or passing `results_dir`) is
the explicit opt-in.
"""
from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

import torch

from ..core.checkpoints import atomic_write
from ..core.runtime import PROFILES, check_profile, cpu_name

_REQUIRED = {"always": PROFILES, "lesson": ("lesson", "gpu"), "gpu": ("gpu",), "never": ()}


# Metric names that read a clock: seconds, minutes, "_s" suffixes, rates per second, speedups, throughput.
CLOCK_METRIC = re.compile(r"seconds|minutes|(^|_)(s|ms)$|per_s(ec)?($|_)|per_second|speedup|throughput|time",
                          re.IGNORECASE)


RESULTS_ENV = "COURSE_RESULTS_DIR"    # set by the runner for its kernels: where claims are recorded


class ClaimFailed(AssertionError):
    pass


def clock_metrics(metrics: dict[str, Any]) -> list[str]:
    """The metric names among `metrics` that are times or speeds (see CLOCK_METRIC)."""
    return sorted(k for k in metrics if CLOCK_METRIC.search(k))


def _plain(value: Any) -> Any:
    """Metrics as JSON-friendly, rounded numbers (thread counts change the low digits)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().tolist()
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


class Claims:
    def __init__(self, notebook: str, profile: str, device: torch.device | str = "cpu",
                 results_dir: str | Path | None = None, seed: int | None = None):
        self.notebook = notebook
        self.profile = check_profile(profile)
        self.device = str(device)
        self.seed = seed
        self.started = time.perf_counter()
        folder = results_dir or os.environ.get(RESULTS_ENV)
        self.path = Path(folder) / f"{notebook}.json" if folder else None   # None: not recorded (see the module)
        self.records: list[dict] = []
        self._write()

    def check(self, name: str, passed: bool, required_at: str = "lesson", **metrics: Any) -> None:
        """Record the claim and print one line; raise ClaimFailed if it must hold here and does not. Returns
        nothing, so a notebook cell that ends with a check echoes no bare True/False under its printed line."""
        if required_at not in _REQUIRED:
            raise ValueError(f"required_at={required_at!r}: expected one of {sorted(_REQUIRED)}")
        clocked = clock_metrics(metrics)
        if required_at != "never" and clocked:
            raise ValueError(f"claim {name!r} is required at {required_at!r} but carries clock metric(s) {clocked}: "
                             "a claim that can fail a run must not depend on the machine's speed. Count the work "
                             "instead, and record the timing in a claim with required_at='never'")
        passed = bool(passed)
        required = self.profile in _REQUIRED[required_at]
        record = {"name": name, "passed": passed, "required": required, "required_at": required_at,
                  "metrics": _plain(metrics)}
        self.records = [r for r in self.records if r["name"] != name] + [record]
        self._write()
        mark = "PASS" if passed else ("FAIL" if required else "fail (not required at this profile)")
        shown = ", ".join(f"{k}={v}" for k, v in record["metrics"].items())
        print(f"[claim] {name}: {mark}  {shown}")
        if required and not passed:
            raise ClaimFailed(f"claim {name!r} failed at profile {self.profile!r}: {shown}")

    def _write(self) -> None:
        if self.path is None:
            return
        data = {
            "notebook": self.notebook,
            "profile": self.profile,
            "seed": self.seed,
            "device": self.device,
            "torch": torch.__version__,
            "cpu": cpu_name(),
            "seconds": round(time.perf_counter() - self.started, 1),
            "claims": self.records,
        }
        with atomic_write(self.path) as tmp:                 # readers never see a half-written file
            tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    def summary(self) -> str:
        lines = [f"{'claim':40s} {'result':8s} metrics"]
        for r in self.records:
            res = "PASS" if r["passed"] else "FAIL"
            lines.append(f"{r['name']:40s} {res:8s} {r['metrics']}")
        return "\n".join(lines)
