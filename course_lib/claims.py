"""Claims: each lesson states what it proves as checks, recorded into `build/results/<notebook>.json`.

    claims = Claims("02_lstm", profile)
    claims.check("lstm_remembers_longer", lstm_acc > 0.9 and rnn_acc < 0.6, required_at="lesson",
                 T=T, lstm=lstm_acc, rnn=rnn_acc)

`required_at` says at which profiles the claim must hold: "always" (mechanics: oracles, shapes, loss falls),
"lesson" (learning results: lesson and gpu), "gpu", or "never" (reported only). A required claim that fails
raises `ClaimFailed` with its numbers, after it has been written down.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch

from . import paths
from .runtime import PROFILES, check_profile

_REQUIRED = {"always": PROFILES, "lesson": ("lesson", "gpu"), "gpu": ("gpu",), "never": ()}


class ClaimFailed(AssertionError):
    pass


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
                 results_dir: str | Path | None = None):
        self.notebook = notebook
        self.profile = check_profile(profile)
        self.device = str(device)
        self.started = time.perf_counter()
        self.path = Path(results_dir or paths.results_dir()) / f"{notebook}.json"
        self.records: list[dict] = []
        self._write()

    def check(self, name: str, passed: bool, required_at: str = "lesson", **metrics: Any) -> bool:
        if required_at not in _REQUIRED:
            raise ValueError(f"required_at={required_at!r}: expected one of {sorted(_REQUIRED)}")
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
        return passed

    def _write(self) -> None:
        data = {
            "notebook": self.notebook,
            "profile": self.profile,
            "device": self.device,
            "torch": torch.__version__,
            "seconds": round(time.perf_counter() - self.started, 1),
            "claims": self.records,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".json.tmp{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)  # readers never see a half-written file

    def summary(self) -> str:
        lines = [f"{'claim':40s} {'result':8s} metrics"]
        for r in self.records:
            res = "PASS" if r["passed"] else "FAIL"
            lines.append(f"{r['name']:40s} {res:8s} {r['metrics']}")
        return "\n".join(lines)
