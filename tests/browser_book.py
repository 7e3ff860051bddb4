"""The course book in a real browser, with the network blocked: headless Chromium driven by Playwright.

    .venv/bin/python tests/browser_book.py [--html build/book/_build/html] [--allow-no-figure]   (make test-book)

Serves the built book (make book) on 127.0.0.1 and aborts every request that is not to it, recording each one.
Checks: the lessons come in order in the navigation; a lesson page shows its plots (img naturalWidth > 0);
math is typeset by the book's own MathJax; every link of the evidence page names an anchor on its lesson page;
one interactive Plotly figure draws (a .js-plotly-plot with an svg) and answers its slider (a click on the last
step shows another trace and redraws); search finds a word; the download button gives the notebook; no page
error; and no request left the machine (the test fails listing them). Screenshots go to build/book/screens/.

Needs Debian's `chromium` (CHROMIUM=/path overrides) and the `playwright` package (instructor extra); never
`playwright install`. Not part of `make test` (pytest does not collect this file).
"""
from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
import shutil
import sys
import threading
import time
from pathlib import Path

from browser_smoke import CHROMIUM_ARGS, _free_port, offline_page  # same folder: the JupyterLab browser test's settings

from course_lib.core import paths

LESSON_PAGE = re.compile(r"^(\d\d)_[a-z0-9_]+\.html$")
# Every typeset formula: MathJax 3 replaces the \( \) text inside Sphinx's span.math / div.math by an
# <mjx-container>; a formula left as text was not typeset.
MATH_JS = """() => { const all = Array.from(document.querySelectorAll('span.math, div.math'));
  return {total: all.length, typeset: all.filter(e => e.querySelector('mjx-container')).length,
          version: (window.MathJax && window.MathJax.version) || null}; }"""
IMAGES_JS = """() => Array.from(document.querySelectorAll('.cell_output img, .output img'), i => i.naturalWidth)"""
# The visible trace(s) of a figure, and what is drawn in its plot area (changes when another trace shows).
FIGURE_STATE_JS = """el => ({visible: el.data.map((t, i) => t.visible === false ? -1 : i).filter(i => i >= 0),
  drawn: (el.querySelector('.main-svg .cartesianlayer') || el).innerHTML})"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):   # one line per file would bury the test's own output
        pass


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    port = _free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                             functools.partial(QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{port}/"


def _goto(page, url: str) -> None:
    page.goto(url, wait_until="load")
    try:
        page.wait_for_load_state("networkidle", timeout=15_000)  # MathJax loads its parts after `load`
    except Exception:
        pass


def wait_math(page, seconds: float = 30) -> dict:
    deadline = time.perf_counter() + seconds
    while True:
        state = page.evaluate(MATH_JS)
        if state["typeset"] == state["total"] or time.perf_counter() > deadline:
            return state
        time.sleep(0.25)


def check_book(html: Path, screens: Path, chromium: str, allow_no_figure: bool) -> tuple[list[str], list[str]]:
    """(problems, notes)."""
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    notes: list[str] = []
    blocked: list[str] = []          # replaced by offline_page's list once the browser is up
    page_errors: list[str] = []
    server, base = serve(html)
    screens.mkdir(parents=True, exist_ok=True)

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            try:
                page, blocked = offline_page(browser, 60_000)   # what leaves 127.0.0.1 is aborted and listed
                page.on("pageerror", lambda err: page_errors.append(f"{page.url}: {err}"))

                # navigation: every lesson, in lesson order
                _goto(page, base + "index.html")
                nav = page.eval_on_selector_all("nav.bd-docs-nav a.reference.internal",
                                                "links => links.map(a => a.getAttribute('href'))")
                lessons = [h.split("#")[0] for h in nav if LESSON_PAGE.match(h.split("#")[0])]
                if not lessons:
                    problems.append("the navigation lists no lesson page")
                elif lessons != sorted(lessons):
                    problems.append(f"the navigation's lessons are not in order: {lessons}")
                page.screenshot(path=str(screens / "index.png"))

                # every lesson page: plots drawn, math typeset; remember the first with a figure
                plots_seen = math_seen = 0
                figure_page = None
                for name in lessons:
                    _goto(page, base + name)
                    widths = page.evaluate(IMAGES_JS)
                    if any(w == 0 for w in widths):
                        problems.append(f"{name}: {widths.count(0)} of {len(widths)} plots did not render")
                    if widths and not plots_seen:
                        page.locator(".cell_output img").first.scroll_into_view_if_needed()
                        page.screenshot(path=str(screens / "lesson.png"))
                    plots_seen += len(widths)
                    math = wait_math(page)
                    if math["total"]:
                        if math["typeset"] != math["total"]:
                            problems.append(f"{name}: MathJax typeset {math['typeset']} of {math['total']} "
                                            f"formulas (MathJax {math['version']})")
                        if not math_seen:
                            page.locator("mjx-container").first.scroll_into_view_if_needed()
                            page.screenshot(path=str(screens / "math.png"))
                        math_seen += math["typeset"]
                    figures = page.locator(".course-plotly").count()
                    drawn = page.evaluate("() => Array.from(document.querySelectorAll('.course-plotly'))"
                                          ".filter(el => el.querySelector('svg.main-svg')).length")
                    if drawn != figures:
                        problems.append(f"{name}: {figures - drawn} of {figures} interactive figures not drawn")
                    if figure_page is None and figures:
                        figure_page = name
                    notes.append(f"{name}: {len(widths)} plots, {drawn}/{figures} interactive figures, "
                                 f"{math['typeset']}/{math['total']} formulas")
                if lessons and not plots_seen:
                    problems.append("no lesson page has a plot (<img> in an output)")
                if lessons and not math_seen:
                    problems.append("no lesson page has math typeset by MathJax")

                # the download button gives the notebook (the book's copy, with its outputs)
                if lessons:
                    _goto(page, base + lessons[0])
                    link = page.locator("a.btn-download-source-button")
                    href = link.first.get_attribute("href") if link.count() else None
                    if not href or not href.endswith(".ipynb"):
                        problems.append(f"{lessons[0]}: no download button for its notebook (found {href!r})")
                    else:
                        response = page.request.get(base + href)
                        if not response.ok or '"cells"' not in response.text():
                            problems.append(f"{lessons[0]}: the download button's {href} is not a notebook")

                # the evidence page: each claim links to an element on its lesson page
                _goto(page, base + "evidence.html")
                page.screenshot(path=str(screens / "evidence.png"))
                hrefs = page.eval_on_selector_all("a[href*='#claim-']", "links => links.map(a => a.getAttribute('href'))")
                if not hrefs:
                    problems.append("the evidence page links no claim to its cell")
                by_page: dict[str, list[str]] = {}
                for href in hrefs:
                    target, fragment = href.split("#", 1)
                    by_page.setdefault(target, []).append(fragment)
                for target, fragments in by_page.items():
                    _goto(page, base + target)
                    absent = page.evaluate("ids => ids.filter(id => !document.getElementById(id))", fragments)
                    problems += [f"evidence link {target}#{f}: no such anchor on the page" for f in absent]
                if hrefs:                                  # follow one link as a reader would
                    _goto(page, base + "evidence.html")
                    page.locator("a[href*='#claim-']").first.click()
                    page.wait_for_load_state("load")
                    fragment = hrefs[0].split("#", 1)[1]
                    if not page.url.endswith("#" + fragment):
                        problems.append(f"clicking {hrefs[0]} on the evidence page led to {page.url}")
                    page.screenshot(path=str(screens / "evidence-link.png"))
                notes.append(f"evidence: {len(hrefs)} claim links over {len(by_page)} lesson page(s), all resolved"
                             if hrefs and not any("evidence link" in p for p in problems) else
                             f"evidence: {len(hrefs)} claim links")

                # one interactive figure: drawn by the local plotly.js, and its slider changes what is shown
                if figure_page is None:
                    (notes if allow_no_figure else problems).append("no lesson page has an interactive figure")
                else:
                    _goto(page, base + figure_page)
                    figure = page.locator(".course-plotly.js-plotly-plot").first
                    try:
                        figure.locator("svg.main-svg").first.wait_for(timeout=30_000)
                    except Exception:
                        problems.append(f"{figure_page}: the interactive figure was not drawn (no plotly svg)")
                    else:
                        figure.scroll_into_view_if_needed()
                        page.screenshot(path=str(screens / "figure-before.png"))
                        before = figure.evaluate(FIGURE_STATE_JS)
                        ticks = figure.locator(".slider-container .slider-tick-rect")
                        rail = figure.locator(".slider-container .slider-rail-touch-rect").first
                        if not ticks.count():
                            problems.append(f"{figure_page}: the first interactive figure has no slider")
                        else:
                            last, bar = ticks.nth(ticks.count() - 1).bounding_box(), rail.bounding_box()
                            page.mouse.click(last["x"] + last["width"] / 2, bar["y"] + bar["height"] / 2)
                            time.sleep(0.5)
                            after = figure.evaluate(FIGURE_STATE_JS)
                            page.screenshot(path=str(screens / "figure-after.png"))
                            if after["visible"] == before["visible"]:
                                problems.append(f"{figure_page}: the slider click left the visible traces at "
                                                f"{before['visible']}")
                            elif after["drawn"] == before["drawn"]:
                                problems.append(f"{figure_page}: the slider changed the visible trace but the "
                                                "plot was not redrawn")
                            else:
                                notes.append(f"{figure_page}: figure drawn; the slider moved the visible trace "
                                             f"from {before['visible']} to {after['visible']}")

                # search works from the static index
                _goto(page, base + "search.html?q=evidence")
                try:
                    page.wait_for_selector("#search-results ul.search li", timeout=30_000)
                    notes.append(f"search 'evidence': {page.locator('#search-results ul.search li').count()} "
                                 "results")
                except Exception:
                    problems.append("search for 'evidence' found nothing")
                page.screenshot(path=str(screens / "search.png"))
            finally:
                browser.close()
    finally:
        server.shutdown()
    problems += [f"page error: {e}" for e in page_errors]
    if blocked:
        problems.append(f"{len(blocked)} request(s) to the network (blocked): " + ", ".join(sorted(set(blocked))))
    return problems, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the built course book in headless Chromium, offline.")
    parser.add_argument("--html", type=Path, default=None, help="the built book (default: build/book/_build/html)")
    parser.add_argument("--screens", type=Path, default=None, help="screenshots (default: build/book/screens)")
    parser.add_argument("--allow-no-figure", action="store_true",
                        help="pass when no lesson in the book has an interactive figure (say so instead)")
    args = parser.parse_args(argv)
    html = args.html or paths.build_dir() / "book" / "_build" / "html"
    screens = args.screens or paths.build_dir() / "book" / "screens"
    if not (html / "index.html").is_file():
        print(f"--html {html}: no built book there (index.html): run `make book` first", file=sys.stderr)
        return 2
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        print(f"no Chromium at {chromium}: apt-get install -y chromium (or set CHROMIUM=/path)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    problems, notes = check_book(html, screens, chromium, args.allow_no_figure)
    for note in notes:
        print(note)
    print(f"The book in Chromium with the network blocked: {time.perf_counter() - started:.0f} s; "
          f"screenshots in {screens}", flush=True)
    for p in problems:
        print("FAIL:", p, file=sys.stderr)
    if not problems:
        print("book: all checks passed")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
