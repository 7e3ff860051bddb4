"""course_lib.core.diagrams: the lessons' architecture pictures are drawn by code; bad specs fail clearly."""
import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from course_lib.core import diagrams  # noqa: E402


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_flow_draws_one_box_per_step_and_the_notes():
    fig = diagrams.flow(["a", "b", "c"], notes=["x", "", "z"], loop=True, loop_label="again", show=False)
    assert {"a", "b", "c", "x", "z", "again"} <= set(_texts(fig))
    plt.close(fig)


def test_graph_places_every_node_and_rejects_an_edge_to_nowhere():
    fig = diagrams.graph({"x": (0, 0, "input"), "f": (1, 1, "×", "op"), "y": (2, 0, "out", "#4C72B0")},
                         [("x", "f", "gate"), ("f", "y")], show=False)
    assert {"input", "×", "out", "gate"} <= set(_texts(fig))
    plt.close(fig)
    with pytest.raises(ValueError, match="'z', which is not in nodes"):
        diagrams.graph({"x": (0, 0, "x")}, [("x", "z")], show=False)


def test_bad_specs_name_what_was_expected():
    with pytest.raises(ValueError, match="at least one box"):
        diagrams.flow([], show=False)
    with pytest.raises(ValueError, match="one per step"):
        diagrams.flow(["a", "b"], notes=["only one"], show=False)
    with pytest.raises(ValueError, match="not a token of the rows"):
        diagrams.token_rows([["a", "b"]], arrows=[((0, 0), (1, 0))], show=False)
    with pytest.raises(ValueError, match="at least 2"):
        diagrams.cycle_diagram([("only", "one")], show=False)
