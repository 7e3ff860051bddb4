"""The course book (course_lib.harness.book): claim anchors, the evidence page, README sections, the offline
check, and one real Jupyter Book build of a tiny book (about 15 s). The browser checks are tests/browser_book.py."""
from __future__ import annotations

import base64
import io
import json
import re

import nbformat
import pytest

from course_lib.harness import book, runner


def _notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for s in sources:
        nb.cells.append(nbformat.v4.new_markdown_cell(s[3:]) if s.startswith("md:") else nbformat.v4.new_code_cell(s))
    return nb


def test_anchor_goes_before_the_cell_that_checks_the_claim():
    nb = _notebook("md:# 01 A lesson", "x = 1",
                   'claims.check("first", x == 1, required_at="always", x=x)',
                   "claims.check(\n    'second', True)\nclaims.check(\"third\", True)",
                   'claims.check("first_but_longer", True)')
    copy, anchors = book.inject_anchors(nb, "01_demo", ["first", "second", "third", "first_but_longer"])
    assert anchors.found == {"first": 2, "second": 3, "third": 3, "first_but_longer": 4}
    # a claim that course_lib checks for the lesson is anchored at the call that has it checked
    _, timed = book.inject_anchors(_notebook("x = 1", "lesson.finish()"), "01_demo", ["notebook_within_10_minutes"])
    assert timed.found == {"notebook_within_10_minutes": 1} and timed.missing == []
    assert anchors.missing == []
    assert len(nb.cells) == 5, "the executed notebook itself is never changed"
    assert [c.cell_type for c in copy.cells] == ["markdown", "code", "markdown", "code", "markdown", "code",
                                                 "markdown", "code"]
    assert copy.cells[2].source.startswith("(claim-01_demo-first)=\n")
    assert copy.cells[3].source.startswith('claims.check("first"')
    assert "(claim-01_demo-second)=\n(claim-01_demo-third)=" in copy.cells[4].source
    assert copy.cells[6].source.startswith("(claim-01_demo-first_but_longer)=")
    nbformat.validate(copy)                       # the added cells are valid cells (with ids)


def test_a_claim_with_no_checking_cell_is_reported_not_linked():
    nb = _notebook('claims.check("kept", True)', 'print("claims.check is not called here: renamed_claim")')
    copy, anchors = book.inject_anchors(nb, "02_demo", ["kept", "renamed_claim"])
    assert anchors.missing == ["renamed_claim"]
    assert "renamed_claim" not in "".join(c.source for c in copy.cells if c.cell_type == "markdown")
    results = [{"notebook": "02_demo", "profile": "smoke", "device": "cpu", "seconds": 1.0, "claims": [
        {"name": "kept", "passed": True, "required": True, "required_at": "always", "metrics": {"a": 1}},
        {"name": "renamed_claim", "passed": False, "required": False, "required_at": "lesson",
         "metrics": {"by_length": {"1|2": 0.5}, "note": "$5 <b>"}}]},
        {"notebook": "03_absent", "profile": "smoke", "device": "cpu", "seconds": 1.0, "claims": [
            {"name": "elsewhere", "passed": True, "required": True, "required_at": "always", "metrics": {}}]}]
    page = book.evidence_page(results, {"02_demo": anchors})
    rows = {line.split("|")[2].strip(): line for line in page.splitlines() if line.startswith("| [02_demo]")}
    assert "{ref}`kept <claim-02_demo-kept>`" in page
    assert "{ref}" not in next(line for line in page.splitlines() if "renamed" in line)
    assert "no cell checks it by this name" in page
    assert "elsewhere (lesson not in this book)" in page and "[03_absent]" not in page
    # numbers cannot break the table or turn into math or HTML
    assert r"1\|2" in page and r"\$5 \<b\>" in page
    assert len(rows) == 2 and all(line.count("|") - line.count(r"\|") == 6 for line in rows.values())


def test_no_executed_notebooks_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "executed").mkdir()
    with pytest.raises(book.BookError, match=r"no executed lessons in .*executed: run `make course` first"):
        book.build(out=tmp_path / "book", executed=tmp_path / "executed", results=tmp_path / "results")
    assert book.main(["--executed", str(tmp_path / "nowhere"), "--out", str(tmp_path / "book")]) == 1
    err = capsys.readouterr().err
    assert "make course" in err and "PROFILE=smoke" in err and "nowhere" in err


def test_readme_sections_come_from_the_readme():
    text = ("# Title\n\nOpening.\n\n## For teachers\n\nStep one, see [the card](datasets/README.md) and "
            "[bubblewrap](https://github.com/containers/bubblewrap).\n\n```bash\n# not a heading\nmake grade\n```\n\n"
            "### Grading safely\n\nSandbox.\n\n## Next section\n\nNot this.\n")
    section = book._unlink_relative(book.markdown_section(text, "## For teachers"))
    assert section.startswith("# For teachers\n")
    assert "## Grading safely" in section and "# not a heading" in section and "Not this" not in section
    assert "see the card and [bubblewrap](https://github.com/containers/bubblewrap)" in section
    with pytest.raises(book.BookError, match="README.md: no line '## Missing'"):
        book.markdown_section(text, "## Missing")
    # the real README has the sections the book takes
    readme = (book.paths.ROOT / "README.md").read_text(encoding="utf-8")
    assert "make assignments" in book.markdown_section(readme, "## For teachers")
    title, intro = book.intro_page(readme, ["01_rnn"])
    assert title.startswith("From RNNs to RLHF") and "[](01_rnn.ipynb)" in intro and "\n## Two" not in intro


def test_timeline_links_only_the_lessons_in_the_book():
    page = book.timeline_page({"01": "01_rnn", "05": "05_transformer"})
    assert "[](01_rnn.ipynb)" in page and "[](05_transformer.ipynb)" in page
    assert "Lesson 02 (not in this build of the book)" in page
    years = [y for y, *_ in book.TIMELINE]
    assert years[0] == "1990" and {"1997", "2017", "2018", "2020", "2022"} <= set(years)


def test_offline_check_names_every_remote_resource(tmp_path):
    (tmp_path / "_static").mkdir()
    (tmp_path / "page.html").write_text(
        '<html><head><script src="_static/local.js"></script><script src="https://cdn.example/x.js"></script>'
        '<link rel="stylesheet" href="//fonts.example/css"><link rel="canonical" href="https://site/page.html">'
        '</head><body><a href="https://tatoeba.org">a link loads nothing</a><img src="http://img.example/a.png">'
        '</body></html>')
    (tmp_path / "_static" / "style.css").write_text("@import 'https://fonts.example/f.css'; a{background:url(x.png)}")
    assert book.check_offline(tmp_path) == ["page.html: https://cdn.example/x.js", "page.html: //fonts.example/css",
                                            "page.html: http://img.example/a.png",
                                            "_static/style.css: https://fonts.example/f.css"]


def test_rendered_html_loads_plotly_from_beside_it_first():
    page = ('<!DOCTYPE html>\n<html>\n<head><meta charset="utf-8"/>\n'
            '<script src="https://cdnjs.example/require.min.js"></script></head><body></body></html>')
    out = runner._with_plotly(page)
    assert out.index(runner.PLOTLY_TAG) < out.index("require.min.js")
    assert out.index('<meta charset="utf-8"/>') < out.index(runner.PLOTLY_TAG)
    assert runner._with_plotly(out) == out


def _png() -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [1, 0])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def test_a_tiny_book_builds_offline(tmp_path):
    pytest.importorskip("jupyter_book", reason="the book extra (make book installs it)")
    pytest.importorskip("mathjax", reason="the book extra's MathJax (django-static-mathjax)")
    import numpy as np

    from course_lib.core import interactive

    executed, results = tmp_path / "executed", tmp_path / "results"
    executed.mkdir()
    results.mkdir()
    nb = _notebook("md:# 01 · A tiny lesson\n\nThe loss $\\mathcal{L} = -\\log p$ falls.", "x = 1",
                   'claims.check("loss_falls", True, required_at="always")', "show_figure()")
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={"image/png": _png(), "text/plain": "<Fig>"})]
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="[claim] loss_falls: PASS\n")]
    fig = interactive.slider_heatmaps({"a": np.eye(3), "b": np.ones((3, 3))}, title="demo")
    nb.cells[3].outputs = [nbformat.v4.new_output("display_data", data=interactive.bundle(fig))]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, executed / "01_tiny.ipynb")
    (results / "01_tiny.json").write_text(json.dumps({
        "notebook": "01_tiny", "profile": "smoke", "device": "cpu", "seconds": 1.0, "claims": [
            {"name": "loss_falls", "passed": True, "required": True, "required_at": "always", "metrics": {}},
            {"name": "not_in_the_notebook", "passed": True, "required": True, "required_at": "always",
             "metrics": {}}]}))
    readme = tmp_path / "README.md"
    readme.write_text("# A tiny course\n\nIntro.\n\n## For teachers\n\nGrade it.\n")
    cards = tmp_path / "cards.md"
    cards.write_text("# Data card\n\n| dataset | license |\n|---|---|\n| tiny | MIT |\n")

    done = book.build(out=tmp_path / "book", executed=executed, results=results, readme=readme,
                      datasets_readme=cards)
    html = done["html"]
    assert done["lessons"] == ["01_tiny"] and done["links"] == 1
    assert done["unlinked"] == ['01_tiny: not_in_the_notebook (no cell contains claims.check("not_in_the_notebook")']
    for page in ("index.html", "01_tiny.html", "evidence.html", "timeline.html", "data.html", "teachers.html",
                 "search.html", "_static/plotly.min.js", "_static/mathjax/tex-mml-chtml.js", "_sources/01_tiny.ipynb"):
        assert (html / page).is_file(), page
    assert book.check_offline(html) == []
    lesson = (html / "01_tiny.html").read_text(encoding="utf-8")
    assert 'src="_static/plotly.min.js' in lesson.split("</head>")[0]
    assert 'src="_static/mathjax/tex-mml-chtml.js' in lesson
    assert "course-plotly" in lesson and "window.Plotly.newPlot" in lesson     # the text/html output, drawn
    assert "<img" in lesson and "Grade it." in (html / "teachers.html").read_text(encoding="utf-8")
    for page in html.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"unpkg\.com|jsdelivr|cdnjs|googleapis|require\.min\.js|thebe@", text), page.name
    checked, broken = book.check_evidence_links(html)
    assert (checked, broken) == (1, [])
    assert nbformat.read(executed / "01_tiny.ipynb", as_version=4) == nb   # the executed copy is untouched


def test_the_measurement_log_is_a_page_of_the_book(tmp_path):
    """docs/EVIDENCE.md (the log moved out of the README) becomes the book's measurements page; without it, none."""
    import yaml
    executed = tmp_path / "executed"
    executed.mkdir()
    nbformat.write(_notebook("md:# 01 · A lesson", "x = 1"), executed / "01_a.ipynb")
    readme, cards = tmp_path / "README.md", tmp_path / "cards.md"
    readme.write_text("# A course\n\nIntro.\n\n## For teachers\n\nGrade it.\n")
    cards.write_text("# Data\n")
    book.assemble(tmp_path / "src", executed, tmp_path / "results", readme, cards)
    assert not (tmp_path / "src" / "measurements.md").exists()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "EVIDENCE.md").write_text("# Evidence\n\nSee the [README](../README.md): 49.1 min.\n")
    book.assemble(tmp_path / "src", executed, tmp_path / "results", readme, cards)
    assert (tmp_path / "src" / "measurements.md").read_text() == "# Evidence\n\nSee the README: 49.1 min.\n"
    toc = yaml.safe_load((tmp_path / "src" / "_toc.yml").read_text())
    assert {"file": "measurements"} in toc["parts"][1]["chapters"]
    assert (book.paths.ROOT / "docs" / "EVIDENCE.md").read_text().count("| 01_rnn |") >= 3   # the real log moved
