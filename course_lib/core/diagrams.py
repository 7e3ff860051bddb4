"""Diagrams drawn by code, so they render offline (JupyterLab, the book, a code host's viewer) and stay in sync
with the lesson: boxes joined by arrows (a pipeline or a loop) and rows of tokens joined by arrows (what attends
to what, what is cached, what is predicted), and a loop of boxes around a circle (a training loop).

    diagrams.flow(["prompt", "K samples", "program checks", "advantage", "update"], loop=True, title="GRPO")
    diagrams.token_rows([list("ab c"), list("bc d")], arrows=[((0, 0), (1, 0), "predicts")], row_names=["in", "out"])

Each returns the matplotlib figure (shown in a notebook unless show=False).
"""
from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

from .plots import _finish

PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]


def _box(ax, x: float, y: float, w: float, h: float, text: str, color: str, fontsize: float = 10) -> None:
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=color, edgecolor="black", linewidth=1.0, alpha=0.9))
    ax.text(x, y, textwrap.fill(text, 13), ha="center", va="center", fontsize=fontsize, color="white",
            weight="bold", linespacing=1.1)


def _arrow(ax, start, end, color: str = "black", label: str | None = None, rad: float = 0.0,
           style: str = "-|>", lw: float = 1.4, fontsize: float = 8, label_offset: float = 0.12) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, color=color, linewidth=lw,
                                 connectionstyle=f"arc3,rad={rad}", shrinkA=2, shrinkB=2))
    if label:
        mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
        ax.text(mx, my + label_offset + abs(rad) * 0.5, label, ha="center", va="bottom", fontsize=fontsize,
                color=color)


def flow(steps: Sequence[str], title: str = "", loop: bool = False, loop_label: str | None = None,
         notes: Sequence[str] | None = None, colors: Sequence[str] | None = None, width: float = 2.0,
         show: bool = True):
    """Boxes left to right joined by arrows; `loop=True` adds an arrow from the last box back to the first
    (a training loop); `notes` puts a line of small text under each box."""
    steps = list(steps)
    if not steps:
        raise ValueError("steps must name at least one box")
    if notes is not None and len(notes) != len(steps):
        raise ValueError(f"notes has {len(notes)} entries for {len(steps)} steps: expected one per step")
    colors = list(colors or PALETTE)
    gap = width * 0.45
    fig, ax = plt.subplots(figsize=(min(2.1 * len(steps) + 0.6, 14), 3.2 if loop else 2.2 if notes else 1.8))
    xs = [i * (width + gap) for i in range(len(steps))]
    for i, (x, text) in enumerate(zip(xs, steps)):
        _box(ax, x, 0, width, 0.8, text, colors[i % len(colors)])
        if notes is not None and notes[i]:
            ax.text(x, -0.62, notes[i], ha="center", va="top", fontsize=8, color="#333333")
        if i:
            _arrow(ax, (xs[i - 1] + width / 2, 0), (x - width / 2, 0))
    top = 0.7
    if loop and len(steps) > 1:
        rad = 0.18
        top = 0.5 + rad * (xs[-1] - xs[0]) / 2 + 0.45
        _arrow(ax, (xs[-1], 0.5), (xs[0], 0.5), rad=rad, color="#444444")
        if loop_label:
            ax.text((xs[0] + xs[-1]) / 2, top - 0.3, loop_label, ha="center", va="center", fontsize=9,
                    color="#444444")
    ax.set_xlim(-width / 2 - 0.3, xs[-1] + width / 2 + 0.3)
    ax.set_ylim(-1.3 if notes else -0.7, top)
    ax.set_aspect("auto")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)
    return _finish(fig, show)


def token_rows(rows: Sequence[Sequence[str]], arrows: Sequence[tuple] = (), row_names: Sequence[str] | None = None,
               highlight: dict | None = None, title: str = "", legend: dict[str, str] | None = None,
               show: bool = True):
    """Rows of token boxes, top row first. `arrows` are `((row, col), (row, col), label_or_None, color)` tuples
    (label and color optional); `highlight` maps (row, col) to a box color (default light grey); `legend`
    maps a label to a color for a key under the picture."""
    rows = [list(r) for r in rows]
    if not rows or not any(rows):
        raise ValueError("rows must hold at least one token")
    if row_names is not None and len(row_names) != len(rows):
        raise ValueError(f"row_names has {len(row_names)} entries for {len(rows)} rows")
    highlight = highlight or {}
    n_cols = max(len(r) for r in rows)
    fig, ax = plt.subplots(figsize=(min(0.75 * n_cols + 2.0, 14), 1.15 * len(rows) + 0.9))
    ys = {r: -1.6 * r for r in range(len(rows))}
    for r, row in enumerate(rows):
        for c, tok in enumerate(row):
            color = highlight.get((r, c), "#E8E8E8")
            ax.add_patch(FancyBboxPatch((c - 0.38, ys[r] - 0.3), 0.76, 0.6, boxstyle="round,pad=0.02",
                                        facecolor=color, edgecolor="#555555", linewidth=0.8))
            ax.text(c, ys[r], {" ": "␣", "\n": "⏎"}.get(tok, tok), ha="center", va="center", fontsize=10,
                    family="monospace")
        if row_names is not None:
            ax.text(-0.7, ys[r], row_names[r], ha="right", va="center", fontsize=9, color="#333333")
    for spec in arrows:
        (r0, c0), (r1, c1) = spec[0], spec[1]
        label = spec[2] if len(spec) > 2 else None
        color = spec[3] if len(spec) > 3 else "black"
        for r, c in ((r0, c0), (r1, c1)):
            if not (0 <= r < len(rows) and 0 <= c < len(rows[r])):
                raise ValueError(f"arrow end ({r}, {c}) is not a token of the rows")
        if r0 == r1:   # within a row: arc above it
            start, end, rad = (c0, ys[r0] + 0.32), (c1, ys[r1] + 0.32), -0.5 if c1 > c0 else 0.5
        else:
            down = r1 > r0
            start = (c0, ys[r0] - 0.32 if down else ys[r0] + 0.32)
            end = (c1, ys[r1] + 0.32 if down else ys[r1] - 0.32)
            rad = 0.0
        _arrow(ax, start, end, color=color, label=label, rad=rad, label_offset=0.02)
    if legend:
        for i, (label, color) in enumerate(legend.items()):
            y = min(ys.values()) - 0.9 - 0.35 * i
            ax.add_patch(Rectangle((-0.35, y - 0.1), 0.3, 0.2, facecolor=color, edgecolor="#555555"))
            ax.text(0.1, y, label, va="center", fontsize=8)
    bottom = min(ys.values()) - (0.9 + 0.35 * len(legend) if legend else 0.7)
    ax.set_xlim(-0.7 - (1.8 if row_names is not None else 0.2), n_cols - 0.4)
    ax.set_ylim(bottom, 1.4)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)
    return _finish(fig, show)


def graph(nodes: dict[str, tuple], edges: Sequence[tuple] = (), title: str = "", size: tuple[float, float] = (9, 5),
          show: bool = True):
    """Boxes placed by hand and joined by arrows: an architecture drawn the way a paper draws it (an LSTM cell,
    a Transformer block, an encoder and a decoder).

    `nodes` maps a name to `(x, y, label)` or `(x, y, label, color)` (color None: a plain grey box; "op": a small
    circle for an operation such as + or ×). `edges` are `(from, to)`, `(from, to, label)` or
    `(from, to, label, rad)` with `rad` bending the arrow. Coordinates are in any units; the axes fit them.
    """
    if not nodes:
        raise ValueError("nodes must name at least one box")
    for spec in edges:
        for end in spec[:2]:
            if end not in nodes:
                raise ValueError(f"edge {spec[:2]} names {end!r}, which is not in nodes")
    fig, ax = plt.subplots(figsize=size)
    where = {}
    for name, spec in nodes.items():
        x, y, label = spec[:3]
        color = spec[3] if len(spec) > 3 else None
        where[name] = (x, y)
        if color == "op":
            ax.add_patch(plt.Circle((x, y), 0.22, facecolor="white", edgecolor="black", linewidth=1.2, zorder=3))
            ax.text(x, y, label, ha="center", va="center", fontsize=11, weight="bold", zorder=4)
        elif color is None:
            ax.text(x, y, label, ha="center", va="center", fontsize=9, zorder=4,
                    bbox=dict(boxstyle="round,pad=0.35", fc="#F2F2F2", ec="#555555"))
        else:
            ax.text(x, y, label, ha="center", va="center", fontsize=9, zorder=4, color="white", weight="bold",
                    bbox=dict(boxstyle="round,pad=0.35", fc=color, ec="black"))
    for spec in edges:
        a, b = spec[0], spec[1]
        label = spec[2] if len(spec) > 2 else None
        rad = spec[3] if len(spec) > 3 else 0.0
        ax.annotate("", xy=where[b], xytext=where[a], zorder=2,
                    arrowprops=dict(arrowstyle="-|>", lw=1.3, color="0.25", shrinkA=14, shrinkB=14,
                                    connectionstyle=f"arc3,rad={rad}"))
        if label:
            (x0, y0), (x1, y1) = where[a], where[b]
            ax.text((x0 + x1) / 2, (y0 + y1) / 2, label, fontsize=8, color="#8B1A1A", ha="center", va="center",
                    zorder=5, bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8))
    xs = [p[0] for p in where.values()]
    ys = [p[1] for p in where.values()]
    ax.set_xlim(min(xs) - 1.0, max(xs) + 1.0)
    ax.set_ylim(min(ys) - 0.7, max(ys) + 0.7)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)
    return _finish(fig, show)


def cycle_diagram(steps: Sequence[tuple[str, str]], title: str = "", centre: str = "", show: bool = True):
    """A loop of boxes joined by arrows, clockwise from the top: each step is (name, a short note under it).
    For training loops (lesson 11's prompts -> samples -> checker -> advantages -> update)."""
    n = len(steps)
    if n < 2:
        raise ValueError(f"steps: expected at least 2 (name, note) pairs for a loop, got {n}")
    fig, ax = plt.subplots(figsize=(9, 5.4))
    angles = np.pi / 2 - 2 * np.pi * np.arange(n) / n
    xs, ys = 1.35 * np.cos(angles), np.sin(angles)
    for i, ((name, note), x, y) in enumerate(zip(steps, xs, ys)):
        ax.text(x, y, f"{name}\n", ha="center", va="center", fontsize=10, weight="bold",
                bbox=dict(boxstyle="round,pad=0.5", fc=f"C{i % 10}", alpha=0.18, ec=f"C{i % 10}"))
        ax.text(x, y - 0.08, note, ha="center", va="center", fontsize=8, color="0.25")
        j = (i + 1) % n
        start, end = np.array([x, y]), np.array([xs[j], ys[j]])
        ax.annotate("", xy=start + 0.72 * (end - start), xytext=start + 0.28 * (end - start),
                    arrowprops=dict(arrowstyle="-|>", lw=1.6, color="0.3", connectionstyle="arc3,rad=-0.15"))
    if centre:
        ax.text(0, 0, centre, ha="center", va="center", fontsize=9, style="italic", color="0.35")
    ax.set_xlim(-2.0, 2.0)
    ax.set_ylim(-1.35, 1.35)
    ax.axis("off")
    ax.set_title(title)
    return _finish(fig, show)
