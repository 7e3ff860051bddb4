"""Progress bars: plain text on stdout, in scripts *and* notebooks; off where nobody watches.

Why text, not tqdm's notebook widget: a widget's state lives in the kernel, so a saved notebook reopened later
shows "Error displaying widget: model not found" in its place, and tqdm.auto warns ("IProgress not found") where
ipywidgets is missing (a bare venv, Colab without it). A text bar updates in place in JupyterLab and a terminal
alike (`\r`), and what is saved is text.

Off when `TQDM_DISABLE` is set (tests) or `COURSE_PROGRESS=off`: the runner sets the latter for the notebooks it
executes (`make course`, `make test`), whose saved copies would otherwise keep every update of every bar.
"""
from __future__ import annotations

import os
import sys

from tqdm.std import tqdm as _text_tqdm

__all__ = ["PROGRESS_ENV", "progress_enabled", "tqdm", "progress"]

PROGRESS_ENV = "COURSE_PROGRESS"
_OFF = ("1", "true", "yes")


def progress_enabled() -> bool:
    if os.environ.get("TQDM_DISABLE", "").strip().lower() in _OFF:
        return False
    return os.environ.get(PROGRESS_ENV, "").strip().lower() not in ("0", "off", "false", "no")


def tqdm(iterable=None, **kwargs):
    """tqdm's text bar, on stdout (a notebook shows stderr in red, as if something went wrong)."""
    kwargs.setdefault("file", sys.stdout)
    kwargs.setdefault("mininterval", 0.5)
    return _text_tqdm(iterable, **kwargs)


def progress(iterable=None, **kwargs):
    """`tqdm(...)` with `disable` decided by `TQDM_DISABLE` / `COURSE_PROGRESS` unless given."""
    kwargs.setdefault("disable", not progress_enabled())
    return tqdm(iterable, **kwargs)
