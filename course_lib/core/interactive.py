"""Figures a learner can play with: Plotly figures with a slider, shown the same way in JupyterLab, in the
rendered HTML pages and in the course book, with no network.

How the figure travels (the renderer is chosen here, never left to plotly's guess, which differs between
JupyterLab, papermill and nbconvert):
- `application/vnd.plotly.v1+json`: JupyterLab 4 and VS Code draw it with their own copy of plotly.js
  (the `jupyterlab-plotly` extension ships inside the `plotly` wheel);
- `text/html`: a <div> and a script that calls the page's `Plotly`. Pages that show notebooks outside
  JupyterLab (build/html/, the book) load plotly.js once, from the file `plotly_js_path()` names, never
  from a CDN. On a page without it the div says what to do instead of staying blank.

    fig = interactive.slider_heatmaps({"layer 1 · head 1": w11, ...}, x=tokens, y=tokens, title="attention")
    interactive.show(fig)
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

MIME = "application/vnd.plotly.v1+json"
# no "responsive": in JupyterLab it sizes the plot to an output box with no height of its own, and the figure
# collapses to 0 px at the first slider move (tests/browser_smoke.py caught it)
CONFIG = {"displaylogo": False}


def plotly_js_path() -> Path:
    """plotly.js as shipped inside the installed `plotly` package (pages that show our figures load this file)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def copy_plotly_js(folder: Path) -> Path:
    """plotly.js into `folder` (once: an identical copy is left alone), for web pages that show our figures."""
    from .paths import copy_if_changed

    return copy_if_changed(plotly_js_path(), Path(folder) / "plotly.min.js")


def _rounded(values, digits: int = 3):
    """Nested lists with `digits` decimals (hover shows 3): figures stay small enough to keep in an executed
    notebook, where nbformat writes every number on a line of its own."""
    return np.round(np.asarray(values, dtype=np.float64), digits).tolist()


def _html(fig_json: dict, div_id: str) -> str:
    payload = json.dumps({"data": fig_json.get("data", []), "layout": fig_json.get("layout", {}), "config": CONFIG})
    payload = payload.replace("</", "<\\/")   # a token such as "</script>" must not end the script early
    return (f'<div id="{div_id}" class="course-plotly" style="min-height:420px">'
            '<p class="course-plotly-missing">Interactive figure: open this notebook in JupyterLab, or read it '
            'in the course book (make book), to move its slider.</p></div>\n'
            f'<script type="text/javascript">(function() {{\n'
            f'  var el = document.getElementById("{div_id}");\n'
            f'  if (!el || typeof window.Plotly === "undefined") return;\n'
            f'  var spec = {payload};\n'
            '  el.innerHTML = "";\n'
            '  window.Plotly.newPlot(el, spec.data, spec.layout, spec.config);\n'
            '})();</script>')


def bundle(fig) -> dict:
    """The MIME bundle `show` displays: Plotly's JSON for JupyterLab, an offline HTML div for web pages."""
    fig_json = json.loads(fig.to_json())
    # plotly.py's default template is ~7 KB of styling per copy; plotly.js's own defaults look as good
    fig_json.get("layout", {}).pop("template", None)
    return {MIME: {"data": fig_json.get("data", []), "layout": fig_json.get("layout", {}), "config": CONFIG},
            "text/html": _html(fig_json, f"course-plotly-{uuid.uuid4().hex[:12]}"),
            "text/plain": f"<interactive figure: {fig.layout.title.text or 'plotly'}>"}


def show(fig) -> None:
    """Display `fig` in a notebook (see the module docstring for what each front end draws)."""
    from IPython.display import display

    display(bundle(fig), raw=True)


def _slider(labels: Sequence[str], prefix: str, groups: int = 1, active: int = 0) -> dict:
    """A slider whose step i shows the i-th group of `groups` traces and hides the rest; it opens at `active`."""
    n = len(labels)
    if not 0 <= active < n:
        raise ValueError(f"active={active}: expected the index of a frame, 0 to {n - 1}")
    steps = []
    for i, label in enumerate(labels):
        visible = [j // groups == i for j in range(n * groups)]
        steps.append({"method": "restyle", "label": str(label), "args": [{"visible": visible}]})
    return {"active": active, "currentvalue": {"prefix": prefix}, "pad": {"t": 40}, "steps": steps}


def _frames(frames: Mapping) -> list:
    if not isinstance(frames, Mapping) or not frames:
        raise ValueError(f"frames: expected a non-empty dict of label -> values, got {type(frames).__name__}"
                         f"{' (empty)' if isinstance(frames, Mapping) else ''}")
    return list(frames)


def _unique(labels: Sequence) -> list[str]:
    """Labels as strings, repeats made distinct with zero-width spaces: a category axis merges equal labels, so
    the two "the" of a sentence would otherwise share (and overwrite) one row or column."""
    out, used = [], set()
    for label in labels:
        s = str(label)
        while s in used:
            s += "\u200b"
        used.add(s)
        out.append(s)
    return out


def _axis_labels(labels, frame: str, n: int, name: str) -> list[str]:
    """`labels` is one sequence shared by every frame, a dict giving each frame its own, or None (0, 1, ...)."""
    if isinstance(labels, Mapping):
        if frame not in labels:
            raise ValueError(f"{name}: a dict of labels needs an entry for every frame; {frame!r} is missing")
        labels = labels[frame]
    return _unique(range(n) if labels is None else labels)


def slider_heatmaps(frames: Mapping[str, object], x: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
                    y: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
                    title: str = "", xlabel: str = "", ylabel: str = "", slider_prefix: str = "",
                    zmin: float | None = None, zmax: float | None = None, colorscale: str = "Blues",
                    active: int = 0):
    """One heatmap per slider position: `frames` maps a label ("layer 2 · head 3") to a 2-D array (rows = y).

    Every frame shares one colour scale (zmin/zmax default to the min/max over all frames), so moving the
    slider compares like with like. `x` and `y` label the columns and rows: one list for every frame, or a dict
    frame label -> list when frames differ (one sentence per frame, or self- and cross-attention). Repeated
    labels (two "the") keep their own row and column.
    """
    import plotly.graph_objects as go

    labels = _frames(frames)
    mats = [np.asarray(frames[k], dtype=np.float64) for k in labels]
    for k, m in zip(labels, mats):
        if m.ndim != 2 or m.size == 0:
            raise ValueError(f"frames[{k!r}]: expected a non-empty 2-D array (rows x columns), got shape {m.shape}")
    zmin = float(min(m.min() for m in mats)) if zmin is None else zmin
    zmax = float(max(m.max() for m in mats)) if zmax is None else zmax
    fig = go.Figure()
    for i, (label, m) in enumerate(zip(labels, mats)):
        xs, ys = _axis_labels(x, label, m.shape[1], "x"), _axis_labels(y, label, m.shape[0], "y")
        if len(xs) != m.shape[1] or len(ys) != m.shape[0]:
            raise ValueError(f"frames[{label!r}] has shape {m.shape} (rows, columns), but there are {len(ys)} "
                             f"y labels and {len(xs)} x labels")
        fig.add_trace(go.Heatmap(z=_rounded(m), x=xs, y=ys, zmin=zmin, zmax=zmax, colorscale=colorscale,
                                 visible=i == active, name=str(label),
                                 hovertemplate="row %{y}<br>column %{x}<br>%{z:.3f}<extra></extra>"))
    fig.update_layout(title=title, sliders=[_slider(labels, slider_prefix, active=active)], height=520,
                      xaxis={"title": xlabel, "type": "category"},
                      yaxis={"title": ylabel, "type": "category", "autorange": "reversed"},
                      margin={"l": 90, "r": 30, "t": 60, "b": 40})
    return fig


def slider_bars(frames: Mapping[str, Mapping[str, tuple[Sequence, Sequence]]], title: str = "",
                ylabel: str = "", slider_prefix: str = "", ymax: float | None = None, active: int = 0):
    """Side-by-side bar panels that change together: `frames[label][panel] = (categories, heights)`.

    Lesson 06 uses it for the next-token distribution: one slider position per temperature, one panel per
    sampling rule (all tokens, top-k, top-p).
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    labels = _frames(frames)
    panels = list(frames[labels[0]])
    for label in labels:
        if list(frames[label]) != panels:
            raise ValueError(f"frames[{label!r}]: expected the panels {panels}, got {list(frames[label])}")
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=panels, shared_yaxes=True)
    for i, label in enumerate(labels):
        for j, panel in enumerate(panels):
            cats, heights = frames[label][panel]
            fig.add_trace(go.Bar(x=list(cats), y=_rounded(heights), visible=i == active, name=panel, showlegend=False,
                                 marker_color=f"hsl({200 + 60 * j},60%,50%)",
                                 hovertemplate="%{x}: %{y:.3f}<extra></extra>"), row=1, col=j + 1)
    top = ymax if ymax is not None else float(max(max(h, default=0) for f in frames.values()
                                                  for _, h in f.values()))
    fig.update_yaxes(range=[0, top * 1.05])
    fig.update_yaxes(title_text=ylabel, row=1, col=1)
    fig.update_layout(title=title, sliders=[_slider(labels, slider_prefix, groups=len(panels), active=active)], height=460,
                      margin={"l": 60, "r": 30, "t": 80, "b": 40})
    return fig


def scatter_path(x: Sequence[float], y: Sequence[float], labels: Sequence[str] | None = None, title: str = "",
                 xlabel: str = "", ylabel: str = "", color: Sequence[float] | None = None, color_title: str = ""):
    """Points joined in order (e.g. one per training iteration), coloured by `color`, each with a hover label."""
    import plotly.graph_objects as go

    if len(x) != len(y) or (labels is not None and len(labels) != len(x)) or (color is not None and
                                                                              len(color) != len(x)):
        raise ValueError(f"x, y, labels and color must have one entry per point: got {len(x)}, {len(y)}, "
                         f"{None if labels is None else len(labels)}, {None if color is None else len(color)}")
    marker = {"size": 8}
    if color is not None:
        marker.update(color=_rounded(color), colorscale="Viridis", showscale=True,
                      colorbar={"title": {"text": color_title}})
    fig = go.Figure(go.Scatter(x=_rounded(x), y=_rounded(y), mode="lines+markers", marker=marker,
                               line={"color": "lightgray"}, text=list(labels) if labels is not None else None,
                               hovertemplate="%{text}<br>x %{x:.3f}<br>y %{y:.3f}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title=xlabel, yaxis_title=ylabel, height=440)
    return fig
