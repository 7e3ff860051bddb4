"""Plots every lesson shares: loss curves (live in notebooks), log-scale lines with a fitted rate, heatmaps."""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np


def _finish(fig, show: bool):
    """Lay out; show the figure and return None, or (show=False) return it to add to or save. None, because a
    notebook cell ending with a plotting call would otherwise echo the Figure and draw it a second time."""
    fig.tight_layout()
    if show:
        plt.show()
        return None
    return fig


class LiveLossPlot:
    """A Trainer callback that redraws the loss plot in place at every evaluation, in a notebook:

        trainer.add_callback("on_eval", LiveLossPlot("char-RNN"))

    Outside a notebook (plain Python, pytest) it draws nothing.
    """

    def __init__(self, title: str = "training"):
        from IPython import get_ipython
        from IPython.display import display

        self.title = title
        shell = get_ipython()
        self.handle = display(display_id=True) if type(shell).__name__ == "ZMQInteractiveShell" else None

    def __call__(self, trainer, metrics=None) -> None:
        self.update(trainer.history)

    def update(self, history) -> None:
        if self.handle is None:
            return
        fig = loss_curves({self.title: history}, show=False)
        self.handle.update(fig)
        plt.close(fig)


def loss_curves(histories: dict, title: str = "loss", logy: bool = False, show: bool = True):
    """Training loss (thin) and every evaluation series (markers) for one or more `History` objects."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for i, (label, h) in enumerate(histories.items()):
        color = f"C{i}"
        if h.steps:
            ax.plot(h.steps, h.losses, color=color, alpha=0.45, lw=1, label=f"{label} train")
        keys = sorted({k for e in h.evals for k in e if k != "step" and "loss" in k})
        for j, key in enumerate(keys):
            xs, ys = h.eval_series(key)
            ax.plot(xs, ys, color=color, marker="os^v"[j % 4], ms=4, lw=1.5, label=f"{label} {key}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats)")
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _finish(fig, show)


def fit_exponential(x: Sequence[float], y: Sequence[float], drop_nonpositive: bool = False) -> tuple[float, float]:
    """Least-squares fit of log(y) = log(a) + b x. Returns (a, b); y shrinks by e^b per unit of x.

    A y that is 0, negative or not finite has no logarithm. Such points raise a ValueError saying how many there
    are (a 0 is usually an underflow, and silently leaving it out would bias the slope); `drop_nonpositive=True`
    fits the rest instead and warns with the count.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(y) & (y > 0)
    bad = int((~keep).sum())
    if bad:
        message = f"fit_exponential: {bad} of {len(y)} y values are 0, negative or not finite (no logarithm)"
        if not drop_nonpositive:
            raise ValueError(message + "; pass drop_nonpositive=True to fit the others")
        warnings.warn(message + "; they were left out of the fit", stacklevel=2)
    if keep.sum() < 2:
        raise ValueError(f"fit_exponential: needs at least 2 positive y values, got {int(keep.sum())}")
    b, log_a = np.polyfit(x[keep], np.log(y[keep]), 1)
    return float(np.exp(log_a)), float(b)


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Least-squares fit of log(y) = log(a) + k log(x). Returns (a, k)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    k, log_a = np.polyfit(np.log(x), np.log(y), 1)
    return float(np.exp(log_a)), float(k)


def log_lines(series: dict[str, tuple[Sequence[float], Sequence[float]]], xlabel: str, ylabel: str,
              title: str = "", logx: bool = False, fit: str | None = None, show: bool = True):
    """Several lines on a log-y (and optionally log-x) axis; `fit` = "exp" or "power" overlays a fit per line."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for i, (label, (x, y)) in enumerate(series.items()):
        x, y = np.asarray(x, float), np.asarray(y, float)
        ax.plot(x, y, "o-", color=f"C{i}", ms=3, lw=1.2, label=label)
        if fit == "exp":
            a, b = fit_exponential(x, y, drop_nonpositive=True)   # a plot still draws; the warning says what was left out
            ax.plot(x, a * np.exp(b * x), "--", color=f"C{i}", lw=1, label=f"fit: x{np.exp(b):.3f} per step")
        elif fit == "power":
            a, k = fit_power_law(x, y)
            ax.plot(x, a * x**k, "--", color=f"C{i}", lw=1, label=f"fit: slope {k:.2f}")
    ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _finish(fig, show)


def lines(series: dict[str, tuple[Sequence[float], Sequence[float]]], xlabel: str, ylabel: str,
          title: str = "", hline: tuple[float, str] | None = None, show: bool = True):
    """Plain line plot of several named series; `hline=(y, label)` draws a reference (e.g. chance)."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for i, (label, (x, y)) in enumerate(series.items()):
        ax.plot(x, y, "o-", color=f"C{i}", ms=4, lw=1.5, label=label)
    if hline is not None:
        ax.axhline(hline[0], color="gray", ls=":", lw=1, label=hline[1])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _finish(fig, show)


def heatmap(matrix, xlabels: Sequence[str] | None = None, ylabels: Sequence[str] | None = None,
            title: str = "", xlabel: str = "", ylabel: str = "", cmap: str = "viridis", ax=None,
            show: bool = True, colorbar: bool = True):
    """A labelled heatmap (attention weights, confusion matrices, gate activations)."""
    m = np.asarray(matrix.detach().cpu() if hasattr(matrix, "detach") else matrix, float)
    own = ax is None
    if own:
        h, w = m.shape
        fig, ax = plt.subplots(figsize=(min(12, 1.5 + 0.45 * w), min(10, 1.2 + 0.4 * h)))
    else:
        fig = ax.figure
    im = ax.imshow(m, cmap=cmap, aspect="auto")
    if xlabels is not None:
        ax.set_xticks(range(len(xlabels)), labels=list(xlabels), rotation=60, ha="right", fontsize=8)
    if ylabels is not None:
        ax.set_yticks(range(len(ylabels)), labels=list(ylabels), fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if colorbar:
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return _finish(fig, show) if own else fig
