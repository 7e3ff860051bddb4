"""What a clean executed lesson looks like, checked: nothing on stderr the course does not expect, no widget
without its saved state, no bare True/False under a cell, no figure drawn twice.

tests/test_notebooks.py applies `notebook_noise` to the executed copy of every smoke run it already makes (no
second execution) and `terminal_noise` to what those runs printed to the terminal. Each allowed line is listed
with its reason; anything else is noise, and the finding says which cell printed it.
"""
from __future__ import annotations

import hashlib
import os
import re

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

# (pattern, why it is allowed): stderr a lesson may print in its cells
ALLOWED_STDERR: list[tuple[re.Pattern, str]] = [
    (re.compile(r"^\s*$"), "blank: a flushed newline carries no message"),
]
# (pattern, why it is allowed): lines the runner's kernels may print to the terminal
ALLOWED_TERMINAL: list[tuple[re.Pattern, str]] = [
    (re.compile(r"^\s*$"), "blank"),
    (re.compile(r"^\[heavy\] slot \d"), "this machine's CPU-slot wrapper, not the course"),
] + ([] if os.name == "posix" else [
    (re.compile(r"Kernel is running over TCP without encryption"),
     "Windows only: it has no IPC transport, so the kernel keeps TCP there (harness/kernel.py)")])


def _allowed(line: str, allowed: list[tuple[re.Pattern, str]]) -> bool:
    return any(pattern.search(line) for pattern, _ in allowed)


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def notebook_noise(nb) -> list[str]:
    """Every noisy output of an executed notebook (an nbformat node or its JSON dict), as 'cell N: what'."""
    metadata = nb.get("metadata", {}) if isinstance(nb, dict) else nb.metadata
    saved = set(((metadata.get("widgets") or {}).get(WIDGET_STATE) or {}).get("state", {}))
    found = []
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for n, cell in enumerate(code, 1):
        images = set()
        for out in cell.get("outputs", []):
            kind = out["output_type"]
            if kind == "stream" and out["name"] == "stderr":
                lines = _text(out["text"]).replace("\r", "\n").splitlines()
                noisy = [line for line in lines if not _allowed(line, ALLOWED_STDERR)]
                if noisy:
                    found.append(f"code cell {n}: stderr {noisy[0][:120]!r}"
                                 + (f" (+{len(noisy) - 1} lines)" if len(noisy) > 1 else ""))
            if kind not in ("execute_result", "display_data"):
                continue
            data = out.get("data", {})
            plain = _text(data.get("text/plain", "")).strip()
            if kind == "execute_result" and plain in ("True", "False"):
                found.append(f"code cell {n}: a bare {plain} echoed (the cell's last expression)")
            if WIDGET_VIEW in data and data[WIDGET_VIEW].get("model_id") not in saved:
                found.append(f"code cell {n}: a widget without saved state ({plain[:60]!r}): reopened, it reads "
                             "'Error displaying widget: model not found'")
            if kind == "execute_result" and plain.startswith("<Figure size"):
                found.append(f"code cell {n}: a Figure echoed as the cell's value: drawn twice")
            if "image/png" in data:
                digest = hashlib.sha256(_text(data["image/png"]).encode()).hexdigest()
                if digest in images:
                    found.append(f"code cell {n}: the same figure drawn twice")
                images.add(digest)
    return found


def terminal_noise(text: str) -> list[str]:
    """The lines of a run's terminal output (the kernels' stderr) that are not allowed."""
    lines = text.replace("\r", "\n").splitlines()
    return [line[:160] for line in lines if not _allowed(line, ALLOWED_TERMINAL)]
