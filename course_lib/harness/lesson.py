"""The first and last cell of every lesson notebook.

    lesson = Lesson("06_gpt", profile, seed)      # device, threads, seed; a claims file; the clock starts
    device, claims = lesson.device, lesson.claims
    ...
    lesson.finish()                               # records the notebook's minutes, prints every claim

It lives in the harness rather than in core because it ties the runtime (core) to the claims (harness).
"""
from __future__ import annotations

import time

from ..core import runtime
from .claims import Claims


class Lesson:
    def __init__(self, notebook: str, profile: str, seed: int = 0, device: str | None = None):
        self.notebook, self.profile, self.seed = notebook, profile, seed
        self.device = runtime.setup(profile, seed, device)
        self.claims = Claims(notebook, profile, self.device, seed=seed)
        self.started = time.perf_counter()

    def minutes(self) -> float:
        return (time.perf_counter() - self.started) / 60

    def finish(self) -> None:
        """Record how long the notebook took (a measurement of this machine: reported, never required; the plan
        asks for 10 minutes on 2 CPU cores at `lesson`) and print the claims table."""
        minutes = self.minutes()
        self.claims.check("notebook_within_10_minutes", minutes <= 10, required_at="never", minutes=minutes,
                          device=runtime.describe(self.device))
        print(self.claims.summary())
