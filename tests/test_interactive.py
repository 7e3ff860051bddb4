"""The interactive figures (course_lib.core.interactive): what a notebook output carries, and what the slider does.

No browser and no notebook here: the checks read the figure's JSON, which is what plotly.js draws in JupyterLab
and in the book. (That a heatmap on a category axis merges columns with equal labels was seen in Chromium; the
test below checks the labels that prevent it.)
"""
import json
import re

import numpy as np
import pytest

from course_lib.core import interactive

MIME = "application/vnd.plotly.v1+json"


def heat_frames():
    """Three frames with different value ranges, so a shared colour scale is visible in zmin/zmax."""
    return {"layer 0 · head 0": [[0.1, 0.9], [0.5, 0.5], [0.3, 0.7]],
            "layer 0 · head 1": [[-0.2, 0.4], [0.0, 0.6], [0.25, 0.75]],
            "layer 1 · head 0": [[1.5, 0.0], [0.2, 0.8], [0.6, 0.4]]}


def bar_frames():
    return {f"T={t}": {"all tokens": (["a", "b", "c"], [t, 2 * t, 3 * t]), "top-k": (["a", "b"], [t, t / 2])}
            for t in (0.5, 1.0, 2.0)}


def visible(step) -> list[bool]:
    return step["args"][0]["visible"]


# --- what a notebook output carries -----------------------------------------------------------------------------

def test_bundle_has_plotly_json_offline_html_and_plain_text():
    fig = interactive.slider_heatmaps(heat_frames(), x=["a", "b"], y=["p", "q", "r"], title="attention")
    b = interactive.bundle(fig)
    assert set(b) == {MIME, "text/html", "text/plain"}
    assert len(b[MIME]["data"]) == 3 and b[MIME]["layout"]["sliders"]
    assert "attention" in b["text/plain"]
    html = b["text/html"]
    div_id = re.search(r'<div id="([^"]+)"', html).group(1)
    assert f'document.getElementById("{div_id}")' in html               # the script draws into its own div
    assert not re.search(r"https?://", html), "the HTML must not load anything from the network"
    assert "cdn" not in html.lower() and "<script src" not in html.lower()
    payload = json.loads(re.search(r"var spec = (\{.*\});\n", html).group(1))
    assert payload["data"] == b[MIME]["data"]                             # web pages draw the same figure
    assert interactive.bundle(fig)["text/html"] != html                   # a fresh div id each time it is shown


def test_show_displays_the_bundle_raw(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append((obj, raw)))
    interactive.show(interactive.scatter_path([0, 1], [1, 0], title="path"))
    assert len(shown) == 1 and shown[0][1] is True and MIME in shown[0][0] and "path" in shown[0][0]["text/plain"]


def test_plotly_js_is_shipped_in_the_package():
    path = interactive.plotly_js_path()
    assert path.is_file() and path.stat().st_size > 1_000_000


def test_values_are_rounded_to_keep_notebooks_small():
    fig = interactive.slider_heatmaps({"one": [[1 / 3, 2 / 3]]})
    assert list(fig.data[0].z[0]) == [0.333, 0.667]


def test_bundle_drops_the_template_and_keeps_script_tags_in_text_inert():
    fig = interactive.slider_heatmaps({"one": [[0.1, 0.2]]}, x=["</script><b>", "b"], y=["a"])
    b = interactive.bundle(fig)
    assert "template" not in b[interactive.MIME]["layout"]
    script = b["text/html"].split("<script", 1)[1]
    assert script.count("</script>") == 1          # only the real end of the script


def test_slider_can_open_on_any_frame():
    fig = interactive.slider_bars({t: {"p": (["a"], [v])} for t, v in (("0.5", 0.2), ("1", 0.5), ("2", 0.9))},
                                  active=1)
    assert fig.layout.sliders[0].active == 1 and [t.visible for t in fig.data] == [False, True, False]
    with pytest.raises(ValueError, match="active=3"):
        interactive.slider_heatmaps({"one": [[0.0]]}, active=3)


# --- slider_heatmaps ------------------------------------------------------------------------------------------

def test_slider_step_i_shows_exactly_frame_i():
    frames = heat_frames()
    fig = interactive.slider_heatmaps(frames, x=["a", "b"], y=["p", "q", "r"])
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == list(frames)
    assert [tr.visible for tr in fig.data] == [True, False, False]       # before the slider moves
    for i, (label, values) in enumerate(frames.items()):
        assert visible(steps[i]) == [j == i for j in range(len(frames))]
        assert fig.data[i].name == label
        np.testing.assert_allclose(np.array(fig.data[i].z), np.array(values))


def test_frames_share_one_colour_scale():
    fig = interactive.slider_heatmaps(heat_frames())
    assert {(tr.zmin, tr.zmax) for tr in fig.data} == {(-0.2, 1.5)}      # min and max over every frame
    fixed = interactive.slider_heatmaps(heat_frames(), zmin=0, zmax=1)
    assert {(tr.zmin, tr.zmax) for tr in fixed.data} == {(0, 1)}


def test_repeated_labels_keep_their_own_row_and_column():
    tokens = ["the", "cat", "saw", "the", "the"]
    fig = interactive.slider_heatmaps({"one": np.eye(5)}, x=tokens, y=tokens)
    for axis in (fig.data[0].x, fig.data[0].y):
        assert len(set(axis)) == 5                                        # a category axis merges equal labels
        assert [a.replace("\u200b", "") for a in axis] == tokens          # and they still read the same


def test_each_frame_can_have_its_own_labels():
    frames = {"sentence 1": np.ones((2, 3)), "sentence 2": np.ones((4, 2))}
    x = {"sentence 1": ["le", "chat", "<eos>"], "sentence 2": ["oui", "<eos>"]}
    y = {"sentence 1": ["the", "cat"], "sentence 2": ["yes", ".", "<eos>", "!"]}
    fig = interactive.slider_heatmaps(frames, x=x, y=y)
    assert [list(tr.x) for tr in fig.data] == list(x.values())
    assert [list(tr.y) for tr in fig.data] == list(y.values())


def test_bad_heatmap_input_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="non-empty dict"):
        interactive.slider_heatmaps({})
    with pytest.raises(ValueError, match="non-empty dict"):
        interactive.slider_heatmaps([[0.1, 0.2]])
    with pytest.raises(ValueError, match=r"frames\['flat'\].*2-D"):
        interactive.slider_heatmaps({"flat": [0.1, 0.2]})
    with pytest.raises(ValueError, match=r"frames\['cube'\].*2-D"):
        interactive.slider_heatmaps({"cube": np.zeros((2, 2, 2))})
    with pytest.raises(ValueError, match=r"frames\['none'\].*non-empty"):
        interactive.slider_heatmaps({"none": np.zeros((0, 3))})
    with pytest.raises(ValueError, match=r"frames\['a'\] has shape \(2, 3\).*2 y labels and 2 x labels"):
        interactive.slider_heatmaps({"a": np.zeros((2, 3))}, x=["p", "q"], y=["r", "s"])
    with pytest.raises(ValueError, match=r"'b' is missing"):
        interactive.slider_heatmaps({"a": np.zeros((1, 1)), "b": np.zeros((1, 1))}, x={"a": ["p"]})


# --- slider_bars and scatter_path -----------------------------------------------------------------------------

def test_slider_bars_panels_move_together():
    frames = bar_frames()
    fig = interactive.slider_bars(frames, ylabel="probability")
    n_panels = 2
    assert len(fig.data) == len(frames) * n_panels
    assert [a.text for a in fig.layout.annotations] == ["all tokens", "top-k"]    # one titled panel each
    for i, (label, panels) in enumerate(frames.items()):
        step = fig.layout.sliders[0].steps[i]
        assert step.label == label
        assert visible(step) == [j // n_panels == i for j in range(len(fig.data))]
        shown = [tr for tr, v in zip(fig.data, visible(step)) if v]
        assert [tr.xaxis for tr in shown] == ["x", "x2"]                  # one trace in each panel
        for tr, (cats, heights) in zip(shown, panels.values()):
            assert list(tr.x) == cats
            np.testing.assert_allclose(tr.y, heights)
    top = max(h for f in frames.values() for _, hs in f.values() for h in hs)
    assert fig.layout.yaxis.range == (0, pytest.approx(top * 1.05))       # one height scale for every frame


def test_bad_bar_input_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="non-empty dict"):
        interactive.slider_bars({})
    frames = bar_frames()
    frames["T=2.0"] = {"all tokens": (["a"], [1.0])}
    with pytest.raises(ValueError, match=r"frames\['T=2.0'\]: expected the panels"):
        interactive.slider_bars(frames)


def test_scatter_path_keeps_points_in_order_with_their_labels():
    fig = interactive.scatter_path([0, 1, 2], [3, 1, 2], labels=["a", "b", "c"], color=[0, 5, 10])
    tr = fig.data[0]
    assert list(tr.x) == [0, 1, 2] and list(tr.y) == [3, 1, 2] and list(tr.text) == ["a", "b", "c"]
    assert list(tr.marker.color) == [0, 5, 10] and tr.marker.showscale
    with pytest.raises(ValueError, match="one entry per point"):
        interactive.scatter_path([0, 1], [1])
    with pytest.raises(ValueError, match="one entry per point"):
        interactive.scatter_path([0, 1], [1, 2], labels=["only one"])
