"""Progress bars that respect `TQDM_DISABLE`, in scripts *and* notebooks.

tqdm's notebook bar ignores the variable (it forces `disable=False`), so the course decides itself.
"""
from __future__ import annotations

import os

from tqdm.auto import tqdm

__all__ = ["progress_enabled", "tqdm", "progress"]


def progress_enabled() -> bool:
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("1", "true", "yes")


def progress(iterable=None, **kwargs):
    """`tqdm(...)` with `disable` decided by `TQDM_DISABLE` unless given."""
    kwargs.setdefault("disable", not progress_enabled())
    return tqdm(iterable, **kwargs)
