"""The course as a book: a static, offline web site built from the executed lessons with Jupyter Book 1.

    python -m course_lib.harness.book        (make book; after make course)

Reads build/executed/NN_*.ipynb and build/results/*.json (both written by the runner), assembles the book's
sources under build/book/src/ and builds them with Jupyter Book (Sphinx + MyST-NB) into build/book/_build/html/.
The notebooks are not run again: the book shows the outputs of the run that produced them.

What the book has: the lessons in order, with their outputs, plots and interactive figures; the evidence table,
whose every claim links to the cell that checks it; a timeline of the eras the course walks; the data and model
cards (datasets/README.md); the teachers' page (README.md's "For teachers" section, read at build time, so each
text has one source). The site loads nothing from the network: MathJax and plotly.js are copied from installed
Python packages into the site, and the build fails if any page still names a remote script, style sheet, image
or frame (check_offline).

The book's copy of each notebook gets one small markdown cell before every cell that checks a claim, carrying a
MyST target `(claim-<lesson>-<claim>)=` that the evidence page links to; build/executed/ itself is never touched.
"""
from __future__ import annotations

import argparse
import datetime as dt
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..core import paths
from .runner import NOTEBOOK_PATTERN

MATHJAX_ENTRY = "tex-mml-chtml.js"          # the MathJax 3 component Sphinx loads by default (from a CDN)
# Of MathJax's es5/ tree, the entry point and the folders it loads from at run time (fonts, the menu, input
# and output jax, accessibility); the other combined builds (svg, full, speech) are left out of the site.
MATHJAX_PARTS = (MATHJAX_ENTRY, "a11y", "adaptors", "input", "output", "sre", "ui")
# Static files live in _assets/, not _static/: Jupyter Book adds every *.js under a source folder named _static
# to every page as a <script>, which would be MathJax's hundreds of files.
ASSETS = "_assets"


class BookError(RuntimeError):
    """The book cannot be built; the message says why and what to run."""


# --------------------------------------------------------------------------------------------- claim anchors

def claim_label(lesson: str, claim: str) -> str:
    """The MyST target of the cell that checks `claim` in `lesson` (Sphinx lower-cases labels)."""
    return f"claim-{lesson}-{claim}".lower()


def _checks(name: str) -> re.Pattern:
    # claims.check("name", ...) or claims.check(\n    'name', ...): the name is always a literal in the lessons
    return re.compile(r"claims\.check\(\s*(['\"])" + re.escape(name) + r"\1")


# Claims that course_lib checks on the lesson's behalf, and the call in the notebook that has them checked:
# Lesson.finish() (course_lib.harness.lesson) records how long the notebook took.
CHECKED_BY_CALL = {"notebook_within_10_minutes": re.compile(r"\blesson\.finish\(")}


@dataclass
class Anchors:
    """Where each claim of one lesson is checked: `found[claim]` = index of the checking cell in the executed
    notebook; `missing` = claims with no cell containing `claims.check("<claim>"` (reported, never linked)."""
    lesson: str
    found: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def inject_anchors(nb: nbformat.NotebookNode, lesson: str, claims: list[str]) -> tuple[nbformat.NotebookNode,
                                                                                       Anchors]:
    """A copy of `nb` with a markdown cell holding a MyST target before each cell that checks one of `claims`."""
    anchors = Anchors(lesson)
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    for claim in claims:
        index = None
        for pattern in (_checks(claim), CHECKED_BY_CALL.get(claim)):
            if pattern is not None and index is None:
                index = next((i for i, c in code if pattern.search(c.source)), None)
        if index is None:
            anchors.missing.append(claim)
        else:
            anchors.found[claim] = index
    by_cell: dict[int, list[str]] = {}
    for claim, index in anchors.found.items():
        by_cell.setdefault(index, []).append(claim)
    out = nbformat.from_dict(json.loads(json.dumps(nb)))   # a deep copy: the executed notebook stays as it was
    for index in sorted(by_cell, reverse=True):             # from the end, so earlier indices stay valid
        names = by_cell[index]
        targets = "\n".join(f"({claim_label(lesson, c)})=" for c in names)
        listed = ", ".join(f"`{c}`" for c in names)
        cell = nbformat.v4.new_markdown_cell(
            f"{targets}\n*The next cell checks the claim{'s' if len(names) > 1 else ''} {listed} "
            f"([evidence table](evidence.md)).*")
        cell.metadata["course_book"] = {"claims": names}   # marks the cells the book added
        out.cells.insert(index, cell)
    return out, anchors


# --------------------------------------------------------------------------------------------- text helpers

TEST_MARKER = re.compile(r"^[ \t]*# NBVAL_[A-Z_]+[ \t]*(\n|$)", re.MULTILINE)


def strip_test_markers(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The book's copy without the `# NBVAL_CHECK_OUTPUT` lines: they tell nbval which outputs to compare,
    and mean nothing to a reader."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = TEST_MARKER.sub("", cell.source)
    return nb


def with_colab_link(nb: nbformat.NotebookNode, lesson: str) -> nbformat.NotebookNode:
    """An "Open in Colab" line under the lesson's first cell (a plain link: the page loads nothing from it)."""
    from .colab import colab_url

    link = nbformat.v4.new_markdown_cell(f"[Open in Colab]({colab_url(lesson)}) (runs the lesson from the "
                                         "published repository; its first cells install `course_lib` there)")
    nb.cells.insert(1 if nb.cells else 0, link)
    return nb


def _md_escape(text: str) -> str:
    """Plain text inside a MyST table cell: backslash-escape what markdown (and dollar math) would interpret."""
    return re.sub(r"([\\`*_\[\]<>|$#~{}])", r"\\\1", str(text))


def markdown_section(text: str, heading: str, source: str = "README.md") -> str:
    """The section of `text` that starts at the line `heading` (e.g. "## For teachers") and runs to the next
    heading of the same or a higher level, with every heading in it raised so that it starts at "# "."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == heading.strip())
    except StopIteration:
        raise BookError(f"{source}: no line {heading!r}; the book takes that section from it") from None
    end, fence = len(lines), False
    for i in range(start + 1, len(lines)):
        if lines[i].startswith("```"):
            fence = not fence
        m = re.match(r"^(#+) ", lines[i])
        if m and not fence and len(m.group(1)) <= level:
            end = i
            break
    shift = level - 1
    body, fence = [], False
    for line in lines[start:end]:
        if line.startswith("```"):
            fence = not fence
        if not fence and re.match(r"^#+ ", line):
            line = line[shift:]
        body.append(line)
    return "\n".join(body).strip() + "\n"


def _unlink_relative(md: str) -> str:
    """Relative links name files of the repository, which the book does not have: keep their text only."""
    return re.sub(r"\[([^\]]+)\]\((?![a-z][a-z0-9+.-]*:|#)[^)]*\)", r"\1", md)


# --------------------------------------------------------------------------------------------- pages

# The eras the course walks, in the order they happened: (years, title, lesson number, text in our words).
TIMELINE = [
    ("1990", "Elman's simple recurrent network", "01",
     "A network that keeps a hidden state and feeds it back in at the next word reads a sequence one step at a "
     "time and can learn structure that unfolds in time. Trained by backpropagation through time, its gradient "
     "shrinks (or blows up) with every step it travels back."),
    ("1997", "Long short-term memory", "02",
     "Hochreiter and Schmidhuber add a cell state that is changed by addition and guarded by gates, so the "
     "gradient has a path that does not fade: the network can hold a fact over a hundred steps."),
    ("2014", "Sequence to sequence", "03",
     "Sutskever, Vinyals and Le (and Cho et al.) translate with two recurrent networks: an encoder squeezes the "
     "sentence into one vector, a decoder writes the translation from it. Long sentences suffer: one vector is "
     "a bottleneck."),
    ("2014", "Bahdanau attention", "04",
     "Bahdanau, Cho and Bengio let the decoder look back at every encoder state and take a weighted average, "
     "learned afresh at each output word: the bottleneck is gone and the weights show which word aligns with "
     "which."),
    ("2017", "The Transformer", "05",
     "Vaswani et al. keep the attention and drop the recurrence: every position attends to every other in "
     "parallel, several heads at once, with positions added to the input because attention alone ignores order."),
    ("2017–2022", "Learning from human preferences (RLHF)", "10",
     "Christiano et al. (2017) train a reward model from people's comparisons and optimise a policy against it; "
     "the recipe is applied to summaries (2020) and to chat models with InstructGPT (2022), with a KL penalty "
     "that keeps the tuned model near where it started. DPO (2023) reaches the same goal without a reward model."),
    ("2018", "GPT: generative pre-training", "06",
     "Radford et al. pre-train a decoder-only Transformer to predict the next token on plain text and then "
     "fine-tune it; sampling from it word by word writes text."),
    ("2018", "BERT: both sides of the context", "07",
     "Devlin et al. pre-train an encoder by hiding words and guessing them from both sides, then fine-tune it "
     "on small labelled sets: pre-training pays most when labels are few."),
    ("2020", "GPT-3 and in-context learning", "08",
     "Brown et al. show that a large enough language model learns a task from a few examples placed in its "
     "prompt, with no change to its weights."),
    ("2021–2022", "Instruction tuning: FLAN and InstructGPT", "09",
     "Wei et al. (FLAN) fine-tune on many tasks phrased as instructions, and the model follows new instructions "
     "better; Ouyang et al. (InstructGPT) tune on written demonstrations before the RLHF step."),
    ("2022", "Induction heads", "08",
     "Olsson, Elhage et al. find a two-head circuit, a previous-token head feeding a head that copies what came "
     "after the last occurrence of the current token, which appears suddenly during training, together with "
     "in-context learning."),
    ("2022–2025", "Reasoning: chain of thought and RL with verifiable rewards", "11",
     "Wei et al. show that writing the intermediate steps out improves answers; Wang et al. vote over many sampled "
     "chains (self-consistency). DeepSeekMath's GRPO (2024) and DeepSeek-R1 (2025) train the chains with "
     "reinforcement learning whose reward is a program that checks the answer; whether that teaches new skills or "
     "sharpens existing ones is debated (Yue et al. 2025)."),
]


def timeline_page(lessons: dict[str, str]) -> str:
    """`lessons` maps a lesson number ("01") to its page name ("01_rnn") for the lessons in this book."""
    out = ["# Timeline", "",
           "The road the course walks, in the order it happened. Each step links to the lesson that rebuilds "
           "it and measures its claim.", ""]
    for years, title, number, text in TIMELINE:
        page = lessons.get(number)
        where = (f"Lesson: []({page}.ipynb)" if page       # empty link text: MyST shows the page's title
                 else f"Lesson {number} (not in this build of the book)")
        out += [f"## {years}: {title}", "", text, "", where, ""]
    return "\n".join(out)


def evidence_page(results: list[dict], anchors: dict[str, Anchors]) -> str:
    """The evidence table; each claim found in its lesson links to the cell that checks it."""
    from .report import rows

    profiles = sorted({r["profile"] for r in results}) or ["-"]
    devices = sorted({r["device"] for r in results}) or ["-"]
    out = ["# Evidence", "",
           f"Every claim the lessons check, as recorded by the run that executed them (`build/results/*.json`; "
           f"profile {', '.join(profiles)}, device {', '.join(devices)}). A claim's name links to the cell that "
           "checks it. At the `smoke` profile the learning claims are not required: run `make course` at the "
           "default `lesson` profile for the numbers the lessons teach from.", "",
           "| lesson | claim | numbers | result | required at |", "|---|---|---|---|---|"]
    for row in rows(results):
        lesson, claim = row["lesson"], row["claim"]
        found = anchors.get(lesson)
        if found is not None and claim in found.found:
            name = f"{{ref}}`{claim} <{claim_label(lesson, claim)}>`"
        else:
            why = "lesson not in this book" if found is None else "no cell checks it by this name"
            name = f"{_md_escape(claim)} ({why})"
        page = f"[{lesson}]({lesson}.ipynb)" if found is not None else _md_escape(lesson)
        out.append(f"| {page} | {name} | {_md_escape(row['numbers'])} | {_md_escape(row['result'])} "
                   f"| {_md_escape(row['required'])} |")
    if not results:
        out += ["", "No results were found in `build/results/`."]
    return "\n".join(out) + "\n"


def intro_page(readme: str, lessons: list[str]) -> tuple[str, str]:
    """(book title, the start page): README's title and opening paragraphs, then what the book holds."""
    title_line = next((line for line in readme.splitlines() if line.startswith("# ")), None)
    if title_line is None:
        raise BookError("README.md: no '# ' title line; the book's title and start page come from it")
    opening = markdown_section(readme, title_line)
    opening = opening.split("\n## ", 1)[0]           # the title and the paragraphs before the first section
    pages = "\n".join(f"- []({name}.ipynb)" for name in lessons)      # each shown by its title
    text = (f"{_unlink_relative(opening).rstrip()}\n\n## In this book\n\n"
            "The lessons, each as it ran, with its outputs, plots and interactive figures "
            "(the download button at the top of a page gives its notebook):\n\n"
            f"{pages}\n\n"
            "and [the evidence table](evidence.md), [a timeline](timeline.md) of the eras, "
            "[the data and model cards](data.md) and [a page for teachers](teachers.md).\n")
    return title_line[2:].strip(), text


# --------------------------------------------------------------------------------------------- assembly

def mathjax_dir() -> Path:
    """MathJax 3's es5/ folder as shipped by the `django-static-mathjax` package (the book extra)."""
    try:
        import mathjax
    except ImportError:
        raise BookError("MathJax is not installed: `make book` installs it (the `book` extra, package "
                        "django-static-mathjax)") from None
    folder = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (folder / MATHJAX_ENTRY).is_file():
        raise BookError(f"{folder / MATHJAX_ENTRY}: not found; reinstall django-static-mathjax")
    return folder


def copy_mathjax(folder: Path) -> Path:
    """MathJax's entry point and the folders it loads at run time into `folder` (the book's assets, the grader's
    feedback); returns the entry point's path."""
    source = mathjax_dir()
    for part in MATHJAX_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, folder / part, dirs_exist_ok=True)
        else:
            paths.copy_if_changed(source / part, folder / part)
    return folder / MATHJAX_ENTRY


def copy_assets(assets: Path) -> None:
    """plotly.js and MathJax into the site, so that no page needs the network."""
    from ..core.interactive import copy_plotly_js

    copy_plotly_js(assets)
    copy_mathjax(assets / "mathjax")
    (assets / "course-book.css").write_text(
        "/* the interactive figures' fallback text shows only where plotly.js did not load */\n"
        ".js-plotly-plot .course-plotly-missing { display: none; }\n", encoding="utf-8")


def book_config(title: str) -> dict:
    return {
        "title": title,
        "author": "the course's authors",
        "copyright": str(dt.date.today().year),
        "only_build_toc_files": True,
        "execute": {"execute_notebooks": "off"},        # the outputs are those of `make course`
        "parse": {"myst_enable_extensions": ["amsmath", "colon_fence", "dollarmath", "substitution"]},
        "html": {"use_repository_button": False, "use_issues_button": False, "use_edit_page_button": False,
                 "home_page_in_navbar": True, "use_multitoc_numbering": False,
                 "comments": {"hypothesis": False, "utterances": False},
                 "analytics": {"google_analytics_id": "", "plausible_analytics_domain": ""}},
        # no Binder, Colab, JupyterHub or Thebe (live code): each would load from the network
        "launch_buttons": {"notebook_interface": "jupyterlab", "binderhub_url": "", "jupyterhub_url": "",
                           "colab_url": "", "deepnote_url": "", "thebe": False},
        "repository": {"url": "", "path_to_book": "", "branch": "main"},
        "sphinx": {"config": {
            # Jupyter Book's extensions less sphinx_thebe (every page names thebe's CDN URL) and intersphinx
            # (it fetches other sites' inventories); sphinx_comments stays, with both its services off (above)
            "extensions": ["sphinx_togglebutton", "sphinx_copybutton", "myst_nb", "jupyter_book", "sphinx_comments",
                           "sphinx_external_toc", "sphinx_design", "sphinx_book_theme"],
            "html_static_path": [ASSETS],
            "mathjax_path": f"mathjax/{MATHJAX_ENTRY}",            # relative: Sphinx serves it from _static/
            "html_js_files": ["plotly.min.js"],                     # once per page, in <head>, before any figure
            "html_css_files": ["course-book.css"],
            "html_theme_options": {"search_bar_text": "Search the course...", "use_download_button": True, "use_fullscreen_button": True,
                                   "use_repository_button": False, "launch_buttons": {}},
            # the interactive figures are drawn from their text/html output (a div and a script calling the
            # page's Plotly), never from plotly's JSON, which only JupyterLab's renderer draws
            "nb_ipywidgets_js": {},                                 # no require.js or widget scripts from a CDN
            # lessons' heading levels are theirs; MyST-NB warns of plotly's JSON while it keeps every output
            # format, before it picks the text/html one for the page
            "suppress_warnings": ["myst.domains", "myst.header", "mystnb.unknown_mime_type"],
        }},
    }


@dataclass
class Assembled:
    src: Path
    lessons: list[str]
    anchors: dict[str, Anchors]
    missing: list[str]          # "lesson: claim" that the evidence page lists without a link


def executed_notebooks(executed: Path) -> list[Path]:
    found = sorted(p for p in executed.glob("*.ipynb") if NOTEBOOK_PATTERN.match(p.name)) if executed.is_dir() else []
    if not found:
        raise BookError(f"no executed lessons in {executed}: run `make course` first "
                        "(PROFILE=smoke is enough for the pages; the default PROFILE=lesson gives the real numbers)")
    return found


def assemble(src: Path, executed: Path, results_dir: Path, readme: Path, datasets_readme: Path) -> Assembled:
    """Write the book's sources into `src` (emptied first, except the copied static files)."""
    notebooks = executed_notebooks(executed)
    from .report import load_results, mixed_runs

    results = load_results(results_dir) if results_dir.is_dir() else []
    if mixed_runs(results):                     # one book, one run's settings
        raise BookError(f"{results_dir}: {mixed_runs(results)}")
    claims_by_lesson = {r["notebook"]: [c["name"] for c in r["claims"]] for r in results}
    src.mkdir(parents=True, exist_ok=True)
    for old in src.iterdir():                   # no page from an earlier build (a lesson since removed)
        if old.name != ASSETS:
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    anchors: dict[str, Anchors] = {}
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        copy, anchors[path.stem] = inject_anchors(nb, path.stem, claims_by_lesson.get(path.stem, []))
        nbformat.write(with_colab_link(strip_test_markers(copy), path.stem), src / path.name)
    lessons = [p.stem for p in notebooks]
    missing = [f"{a.lesson}: {c} (no cell contains claims.check(\"{c}\")" for a in anchors.values()
               for c in a.missing]
    missing += [f"{r['notebook']}: its results are in {results_dir} but {executed} has no executed copy"
                for r in results if r["notebook"] not in anchors]

    for path, what in ((readme, "the start page and the teachers' page"), (datasets_readme, "the data cards")):
        if not path.is_file():
            raise BookError(f"{path}: not found; the book takes {what} from it")
    readme_text = readme.read_text(encoding="utf-8")
    title, intro = intro_page(readme_text, lessons)
    pages = {
        "intro.md": intro,
        "evidence.md": evidence_page(results, anchors),
        "timeline.md": timeline_page({name[:2]: name for name in lessons}),
        "data.md": _unlink_relative(datasets_readme.read_text(encoding="utf-8")),
        "teachers.md": _unlink_relative(markdown_section(readme_text, "## For teachers")),
    }
    log = readme.parent / "docs" / "EVIDENCE.md"           # the measurement log, beside the README when there is one
    if log.is_file():
        pages["measurements.md"] = _unlink_relative(log.read_text(encoding="utf-8"))
    for name, text in pages.items():
        (src / name).write_text(text, encoding="utf-8")
    import yaml

    (src / "_config.yml").write_text(yaml.safe_dump(book_config(title), sort_keys=False), encoding="utf-8")
    toc = {"format": "jb-book", "root": "intro",
           "parts": [{"caption": "Lessons", "chapters": [{"file": name} for name in lessons]},
                     {"caption": "The evidence", "chapters": [{"file": "evidence"}, {"file": "timeline"}]
                      + ([{"file": "measurements"}] if "measurements.md" in pages else [])},
                     {"caption": "About", "chapters": [{"file": "data"}, {"file": "teachers"}]}]}
    (src / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False), encoding="utf-8")
    copy_assets(src / ASSETS)
    return Assembled(src, lessons, anchors, missing)


# --------------------------------------------------------------------------------------------- checks

class _Scan(html.parser.HTMLParser):
    """Collects what a page loads (script src, link href, img/iframe/source src) and every element id."""
    LOADS = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src", "embed": "src",
             "audio": "src", "video": "src", "object": "data"}

    def __init__(self):
        super().__init__()
        self.loads: list[str] = []
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "link" and attrs.get("rel", "") in ("canonical", "alternate"):
            return                                      # names a page, loads nothing
        if tag in self.LOADS and attrs.get(self.LOADS[tag]):
            self.loads.append(attrs[self.LOADS[tag]])


def scan(page: Path) -> _Scan:
    parser = _Scan()
    parser.feed(page.read_text(encoding="utf-8", errors="replace"))
    return parser


REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)        # http://, https://, //host
CSS_REMOTE = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])((?:https?:)?//[^'")\s]+)""", re.IGNORECASE)


def check_offline(html_dir: Path) -> list[str]:
    """Every remote resource a page or style sheet of the site would load: "<file>: <url>" (empty = offline)."""
    problems = []
    for page in sorted(html_dir.rglob("*.html")):
        problems += [f"{page.relative_to(html_dir)}: {url}" for url in scan(page).loads if REMOTE.match(url)]
    for sheet in sorted(html_dir.rglob("*.css")):
        text = sheet.read_text(encoding="utf-8", errors="replace")
        problems += [f"{sheet.relative_to(html_dir)}: {url}" for url in CSS_REMOTE.findall(text)]
    return problems


def check_evidence_links(html_dir: Path) -> tuple[int, list[str]]:
    """(links checked, broken ones): each link of the evidence page to a lesson's cell must name an id there."""
    evidence = html_dir / "evidence.html"
    if not evidence.is_file():
        return 0, [f"{evidence}: not built"]
    ids: dict[str, set[str]] = {}
    broken, checked = [], 0
    for href in scan(evidence).links:
        if "#" not in href or REMOTE.match(href) or href.startswith("#"):
            continue
        page, fragment = href.split("#", 1)
        if not fragment.startswith("claim-"):
            continue
        checked += 1
        if page not in ids:
            target = html_dir / page
            ids[page] = scan(target).ids if target.is_file() else set()
        if fragment not in ids[page]:
            broken.append(href)
    return checked, broken


# --------------------------------------------------------------------------------------------- build

def sphinx_build(src: Path, out: Path, log: Path) -> Path:
    """Jupyter Book's build of `src` into `out`/_build/html; its output goes to `log`."""
    jb = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(jb)] if jb.exists() else [sys.executable, "-m", "jupyter_book.cli.main"]
    cmd += ["build", str(src), "--path-output", str(out), "--builder", "html"]
    # no page left from an earlier build (Sphinx rewrites only what changed, and never deletes a page)
    shutil.rmtree(out / "_build" / "html", ignore_errors=True)
    env = {**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    with open(log, "w", encoding="utf-8") as handle:
        done = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-25:])
        raise BookError(f"jupyter-book build failed (exit {done.returncode}); the end of {log}:\n{tail}")
    return out / "_build" / "html"


def build(out: Path | None = None, executed: Path | None = None, results: Path | None = None,
          readme: Path | None = None, datasets_readme: Path | None = None) -> dict:
    """Assemble and build the book; returns what was built and checked. Raises BookError on any problem."""
    build_root = paths.build_dir()
    out = Path(out or build_root / "book")
    executed = Path(executed or build_root / "executed")
    results = Path(results or build_root / "results")
    started = time.perf_counter()
    book = assemble(out / "src", executed, results, Path(readme or paths.ROOT / "README.md"),
                    Path(datasets_readme or paths.ROOT / "datasets" / "README.md"))
    html_dir = sphinx_build(book.src, out, out / "build.log")
    remote = check_offline(html_dir)
    if remote:
        raise BookError("the book would load from the network:\n  " + "\n  ".join(remote))
    checked, broken = check_evidence_links(html_dir)
    if broken:
        raise BookError(f"{len(broken)} of the evidence page's links name no anchor in their lesson page: "
                        + ", ".join(broken))
    expected = sum(len(a.found) for a in book.anchors.values())
    if checked != expected:
        raise BookError(f"the evidence page links {checked} claims to their cells; {expected} were anchored")
    warnings = [line for line in (out / "build.log").read_text(encoding="utf-8", errors="replace").splitlines()
                if "WARNING" in line]
    return {"html": html_dir, "index": html_dir / "index.html", "lessons": book.lessons, "links": checked,
            "unlinked": book.missing, "warnings": warnings, "seconds": time.perf_counter() - started,
            "log": out / "build.log"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the course book from the executed lessons.")
    parser.add_argument("--executed", type=Path, help="executed notebooks (default: build/executed)")
    parser.add_argument("--results", type=Path, help="claims as JSON (default: build/results)")
    parser.add_argument("--out", type=Path, help="where src/ and _build/html/ go (default: build/book)")
    args = parser.parse_args(argv)
    try:
        done = build(args.out, args.executed, args.results)
    except BookError as err:
        print(f"make book: {err}", file=sys.stderr)
        return 1
    for line in done["unlinked"]:
        print(f"warning: not linked from the evidence page: {line}", file=sys.stderr)
    print(f"Built the book from {len(done['lessons'])} lesson(s) in {done['seconds']:.0f} s: {done['index']}\n"
          f"{done['links']} claims link to their cells; no page loads anything from the network. "
          f"Sphinx's log ({len(done['warnings'])} warnings): {done['log']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
