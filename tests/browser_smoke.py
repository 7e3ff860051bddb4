"""A lesson in a real browser: JupyterLab from the venv + headless Chromium driven by Playwright.

    .venv/bin/python tests/browser_smoke.py [--lesson 01] [--timeout 900]      (make test-browser)
    .venv/bin/python tests/browser_smoke.py --learner      the learner's copy (make lab's workspace) instead: Run
        All must run the lesson and stop at exercise 1 (NotImplementedError), no solution or hidden-test line in
        the page or the saved file, notebooks/ untouched (git status)

Starts JupyterLab on 127.0.0.1 with a random token, opens a copy of the lesson (never the committed notebook:
Lab autosaves outputs into what it opens), clicks Run -> Run All Cells at the `smoke` profile, waits for the
last cell, saves, and checks: no error output, every code cell ran, a plot rendered in the page. Saves a
screenshot of the first plot to build/browser/<lesson>.png. Then, in the same Lab, a one-cell notebook shows
an interactive figure (course_lib.core.interactive: a heatmap per slider step): checks that JupyterLab's plotly
renderer (jupyterlab-plotly, inside the plotly wheel) drew it, clicks the slider's second step, checks that the
heatmap changed, and saves build/browser/interactive.png. Finally shuts the browser, the kernels and the server.

The browser has no network: every request whose host is not 127.0.0.1/localhost is aborted, recorded and
reported as a failure (the lesson and the figure must work offline).

Needs Debian's `chromium` (apt-get install -y chromium; CHROMIUM=/path overrides) and the `playwright`
Python package from the instructor extra. Never `playwright install`: it would download another browser.
Not part of `make test` (pytest does not collect this file).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import nbformat

from course_lib.core import paths

from course_lib.harness import runner

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Lab settings for a quiet, deterministic page: no news toast, and every cell kept in the DOM (the default
# windowing leaves far-away cells unrendered, so their prompts could not be read).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
# A student's Lab has no nbgrader (the instructor extra): switch its menus and server extensions off here.
NBGRADER_OFF = {
    "labconfig/page_config.json": {"disabledExtensions": {"@jupyter/nbgrader": True}},
    "jupyter_server_config.json": {"ServerApp": {"jpserver_extensions": {
        f"nbgrader.server_extensions.{name}": False
        for name in ("formgrader", "validate_assignment", "assignment_list", "course_list")}}},
}
PROMPTS_JS = "() => Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt'), e => e.textContent)"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# Every URL that would leave this machine. A pattern (not a Python function) is matched inside the browser, so
# requests to Lab itself are never held for Python: the sync API answers a held request only while Python is in a
# Playwright call, and the test's time.sleep loops would stall Lab's saves and kernel sockets.
NOT_LOCAL = re.compile(r"^(?!data:|blob:|(https?|wss?)://(127\.0\.0\.1|localhost)(:\d+)?(/|$))")

# The interactive figure: two 3x3 heatmaps ("a" = identity, "b" = ones) behind a two-step slider.
INTERACTIVE_NB = "interactive_figure.ipynb"
INTERACTIVE_CODE = ('from course_lib.core import interactive; import numpy as np; '
                    'interactive.show(interactive.slider_heatmaps({"a": np.eye(3), "b": np.ones((3, 3))}, '
                    'x=list("xyz"), y=list("xyz"), title="t"))')
# jupyterlab-plotly's renderer (for application/vnd.plotly.v1+json) is the output node .jp-RenderedPlotly;
# plotly.js makes it the graph div (.js-plotly-plot); the visible heatmap is an <image> in g.hm; a slider has one
# rect.slider-tick-rect per step. Without the plotly MIME type Lab would show the text/html fallback instead.
PLOTLY_RENDERER = "jp-RenderedPlotly"
FIGURE_STATE_JS = """gd => ({
    visible: gd.data.map(t => t.visible),
    images: Array.from(gd.querySelectorAll('g.hm image'), i => i.getAttribute('href') || i.getAttribute('xlink:href')),
    active: ((gd.layout.sliders || [])[0] || {}).active,
    height: Math.round(gd.querySelector('.svg-container').getBoundingClientRect().height)})"""
TRACE_KEYS = ("visible", "images", "active")  # what the slider changes (height: what it must not)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except OSError:
        return 0


def _executed_cells(path: Path) -> int:
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # caught mid-write
        return -1
    return sum(c.cell_type == "code" and c.execution_count is not None for c in nb.cells)


def start_lab(root: Path, work: Path, token: str, port: int) -> subprocess.Popen:
    """JupyterLab from this venv, serving `root`; its kernels run the lesson at the smoke profile."""
    settings, config = work / "settings", work / "config"
    for folder, files in ((settings, LAB_SETTINGS), (config, NBGRADER_OFF)):
        for name, values in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(json.dumps(values))
    # One torch thread unless told otherwise: the smoke models gain nothing from more, and on a busy machine
    # a second thread made a lesson several times slower. What is under test here is the page, not the threads.
    env = {**os.environ, "COURSE_PROFILE": "smoke", "COURSE_BUILD_DIR": str(work / "build"),
           "COURSE_THREADS": os.environ.get("COURSE_THREADS", "1"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(work / "workspaces"),
           "JUPYTER_CONFIG_DIR": str(config),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    env.pop("TQDM_DISABLE", None)  # a learner sees the progress bar and the live loss plot: so does this test
    cmd = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(work / "jupyter.log", "w")
    # its own process group, so that shutting down reaches the kernels it started and nothing else
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_lab(lab: subprocess.Popen, base: str, token: str) -> None:
    request = urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST")
    try:
        urllib.request.urlopen(request, timeout=10).close()  # also shuts down its kernels
        lab.wait(timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        pass
    if lab.poll() is None:
        os.killpg(lab.pid, signal.SIGTERM)
        try:
            lab.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait()


def run_all(page, tries: int = 3) -> float:
    """Run -> Run All Cells; returns when cells are queued. A click that lands while the freshly started
    kernel is still connecting can be dropped without a trace, so it is retried."""
    for _ in range(tries):
        started = time.perf_counter()
        page.click('.lm-MenuBar-itemLabel:text-is("Run")')
        page.click('.lm-Menu-itemLabel:text-is("Run All Cells")')
        while time.perf_counter() - started < 30:
            if any(p.strip("[]: ") for p in page.evaluate(PROMPTS_JS)):  # "*" or a number: it runs
                return started
            time.sleep(0.5)
    raise RuntimeError(f"Run All Cells did not start any cell after {tries} tries")


def _local(url: str) -> bool:
    parsed = urllib.parse.urlsplit(url)
    return parsed.scheme in ("data", "blob") or parsed.hostname in LOCAL_HOSTS


def offline_page(browser, timeout_ms: int):
    """A page of a fresh context of `browser` with the network blocked (see block_network) and `timeout_ms`
    as its default timeout: (page, the list that collects blocked URLs)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    blocked = block_network(context)
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    return page, blocked


def block_network(context) -> list[str]:
    """Abort every request (and WebSocket) of `context` that would leave this machine; returns the list that
    collects their URLs."""
    blocked: list[str] = []

    def route(r):
        if _local(r.request.url):  # NOT_LOCAL let it through: should not happen
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    def route_websocket(ws):  # never connected to a server: the socket just closes
        blocked.append(ws.url)
        ws.close()

    context.route(NOT_LOCAL, route)
    context.route_web_socket(NOT_LOCAL, route_websocket)
    return blocked


def interactive_figure_in_lab(page, base: str, token: str, root: Path, timeout: float) -> dict:
    """Opens a one-cell notebook showing a slider heatmap, runs it, and moves the slider to its second step.
    Returns what the page showed: the output's renderer, the figure's state before and after the click."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(INTERACTIVE_CODE)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / INTERACTIVE_NB)
    # a workspace of its own: the page shows this notebook only, not the lesson's tab as well
    page.goto(f"{base}/lab/workspaces/interactive/tree/{INTERACTIVE_NB}?token={token}", wait_until="domcontentloaded")
    page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell")
    page.wait_for_selector('.jp-StatusBar-Widget:has-text("| Idle")')
    run_started = run_all(page)
    while True:
        prompts = page.evaluate(PROMPTS_JS)
        if prompts and prompts[0].strip("[]: ").isdigit():
            break
        if time.perf_counter() - run_started > timeout:
            raise TimeoutError(f"the interactive figure's cell still running after {timeout:.0f} s: {prompts}")
        time.sleep(0.5)
    outputs = page.locator(".jp-NotebookPanel .jp-OutputArea-output")
    result = {"renderers": [outputs.nth(i).get_attribute("class") for i in range(outputs.count())],
              "output_text": outputs.all_inner_texts(), "before": None, "after": None}
    graph = page.locator(f".jp-OutputArea-child .{PLOTLY_RENDERER}.js-plotly-plot")
    screenshot = paths.build_dir() / "browser" / "interactive.png"
    result["screenshot"] = screenshot
    try:
        graph.locator("svg.main-svg").first.wait_for(timeout=30_000)
    except PlaywrightTimeout:  # not drawn: check_interactive says so, with the output's renderer and text
        page.screenshot(path=str(screenshot))
        return result
    graph.scroll_into_view_if_needed()
    result["before"] = graph.evaluate(FIGURE_STATE_JS)
    ticks = graph.locator("g.slider-container rect.slider-tick-rect")
    result["slider_steps"] = ticks.count()
    if result["slider_steps"] >= 2:
        # The ticks are 1-2 px wide: click the rail at the second tick's position, as a learner would.
        box = ticks.nth(1).bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        deadline = time.perf_counter() + 10
        while True:
            after = graph.evaluate(FIGURE_STATE_JS)
            if any(after[k] != result["before"][k] for k in TRACE_KEYS) or time.perf_counter() > deadline:
                break
            page.wait_for_timeout(250)
        page.wait_for_timeout(1000)  # let Lab and plotly.js finish redrawing and resizing
        result["after"] = graph.evaluate(FIGURE_STATE_JS)
    page.screenshot(path=str(screenshot))
    return result


def run_lesson_in_browser(nb: Path, work: Path, timeout: float, chromium: str, learner: bool = False) -> dict:
    from playwright.sync_api import sync_playwright

    root = work / "lab"
    root.mkdir(parents=True, exist_ok=True)
    copy = root / nb.name
    if learner:            # the learner's copy, as `make lab` makes it: no solutions, no hidden tests
        from course_lib.harness import workspace
        workspace.sync(root, [nb])
    else:
        shutil.copyfile(nb, copy)
    token, port = secrets.token_hex(16), _free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    lab = start_lab(root, work, token, port)
    try:
        while _get(f"{base}/api/status?token={token}") != 200:
            if lab.poll() is not None or time.perf_counter() - started > 120:
                raise RuntimeError(f"JupyterLab did not start; see {work / 'jupyter.log'}")
            time.sleep(0.5)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            try:
                # Lab's first load is slow on a busy machine (a 30 s timeout is not enough)
                page, blocked = offline_page(browser, 120_000)
                page_errors: list[str] = []
                page.on("pageerror", lambda err: page_errors.append(str(err)))
                page.goto(f"{base}/lab/tree/{nb.name}?token={token}", wait_until="domcontentloaded")
                page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell")
                page.wait_for_selector('.jp-StatusBar-Widget:has-text("| Idle")')
                run_started = run_all(page)
                while True:  # done when the first cell has its number and none is waiting or running ([*])
                    prompts = page.evaluate(PROMPTS_JS)
                    if prompts and prompts[0].strip("[]: ").isdigit() and not any("*" in p for p in prompts):
                        break
                    if time.perf_counter() - run_started > timeout:
                        raise TimeoutError(f"cells still running after {timeout:.0f} s: {prompts}")
                    time.sleep(1)
                run_seconds = time.perf_counter() - run_started
                ran = sum(p.strip("[]: ").isdigit() for p in prompts)
                page.keyboard.press("Control+s")
                deadline = time.perf_counter() + 60
                while _executed_cells(copy) != ran:  # the file on disk holds what the page shows
                    if time.perf_counter() > deadline:
                        raise TimeoutError(f"the saved notebook does not show the {ran} executed cells after 60 s")
                    time.sleep(0.5)
                image = page.locator(".jp-OutputArea-output img").first
                image.scroll_into_view_if_needed()
                plot_width = image.evaluate("img => img.naturalWidth")
                screenshot = paths.build_dir() / "browser" / f"{nb.stem}.png"
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot))
                prompts = page.evaluate(PROMPTS_JS)
                page_text = page.inner_text(".jp-NotebookPanel")      # what the learner sees, every cell
                interactive = interactive_figure_in_lab(page, base, token, root, timeout=300)
            finally:
                browser.close()
    finally:
        stop_lab(lab, base, token)
    return {"copy": copy, "prompts": prompts, "plot_width": plot_width, "page_errors": page_errors,
            "screenshot": screenshot, "run_seconds": run_seconds, "total_seconds": time.perf_counter() - started,
            "server_gone": lab.poll() is not None, "interactive": interactive, "blocked": blocked,
            "page_text": page_text}


def learner_problems(nb, errors: list[str], unrun: list[int], result: dict) -> list[str]:
    """A learner's copy: Run All runs the whole lesson and stops at exercise 1 (its NotImplementedError, the
    only error); no solution or hidden test reached the page; the repository's tracked files are untouched."""
    stub = next(i for i, c in enumerate(nb.cells) if "raise NotImplementedError()" in c.source)
    # the stub's own cell only defines the function: the first test cell that calls it raises
    stops = [int(e.split()[1]) for e in errors if " raised NotImplementedError" in e]
    problems = [e for e in errors if " raised NotImplementedError" not in e]
    if len(stops) != 1 or stops[0] < stub:
        problems.append(f"Run All did not stop once, at or after the first exercise (cell {stub}), with "
                        f"NotImplementedError: cells {stops}")
    early = [i for i in unrun if i < (stops[0] if stops else stub)]
    if early:
        problems.append(f"code cells before the first exercise never ran: {early}")
    teacher = nbformat.read(result["lesson"], as_version=4)
    secret = [line.strip() for c in teacher.cells for line in _secret_lines(c.source)]
    shown = result["page_text"]
    leaked = [line for line in secret if line in shown or any(line in c.source.splitlines() for c in nb.cells)]
    if leaked:
        problems.append(f"{len(leaked)} solution / hidden-test line(s) in the learner's page, e.g. {leaked[0]!r}")
    if result["git_status"][0] != result["git_status"][1]:
        problems.append(f"git status changed: {result['git_status'][0]!r} -> {result['git_status'][1]!r}")
    return problems


def _secret_lines(source: str) -> list[str]:
    out, inside = [], False
    for line in source.splitlines():
        if "### BEGIN SOLUTION" in line or "### BEGIN HIDDEN TESTS" in line:
            inside = True
        elif "### END SOLUTION" in line or "### END HIDDEN TESTS" in line:
            inside = False
        elif inside and len(line.strip()) > 12:       # long enough not to match ordinary code by chance
            out.append(line)
    return out


def _git_status() -> str:
    """The lessons' tracked files as git sees them (Lab must write nothing there)."""
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", "notebooks"],
                          cwd=paths.ROOT, capture_output=True, text=True).stdout


def check(result: dict) -> list[str]:
    """What went wrong, from the saved notebook (the truth about outputs) and the page."""
    nb = nbformat.read(result["copy"], as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    problems = [f"cell {i} raised {o.get('ename')}: {o.get('evalue')}" for i, c in enumerate(nb.cells)
                if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    unrun = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.execution_count is None]
    if result.get("learner"):
        problems = learner_problems(nb, problems, unrun, result)
    elif unrun:
        problems.append(f"code cells never ran: {unrun}")
    if not any("image/png" in o.get("data", {}) for c in code for o in c.outputs):
        problems.append("no plot (image/png output) in the saved notebook")
    if not result["plot_width"]:
        problems.append("the first plot's <img> did not render in the page")
    if len(result["prompts"]) != len(code):
        problems.append(f"the page shows {len(result['prompts'])} code cells, the notebook has {len(code)}")
    problems += check_interactive(result["interactive"])
    problems += [f"page error: {e}" for e in result["page_errors"]]
    if result["blocked"]:
        problems.append(f"{len(result['blocked'])} request(s) to the network (blocked): "
                        + ", ".join(sorted(set(result["blocked"]))))
    if not result["server_gone"]:
        problems.append("JupyterLab did not shut down")
    return problems


def check_interactive(fig: dict) -> list[str]:
    """What went wrong with the interactive figure in Lab (see interactive_figure_in_lab)."""
    where = f"interactive figure ({INTERACTIVE_NB})"
    if not any(PLOTLY_RENDERER in (classes or "").split() for classes in fig["renderers"]):
        return [f"{where}: no output drawn by JupyterLab's plotly renderer (.{PLOTLY_RENDERER}); outputs: "
                f"{fig['renderers']}, text {' | '.join(t.strip() for t in fig['output_text'])[:300]!r}"]
    if fig["before"] is None:
        return [f"{where}: the plotly output is no .js-plotly-plot with an <svg> inside after 30 s"]
    problems = []
    before, after = fig["before"], fig["after"]
    if before["visible"] != [True, False] or len(before["images"]) != 1:
        problems.append(f"{where}: before the click, expected frame a alone drawn (visible [True, False], one heatmap "
                        f"image), got visible {before['visible']} and {len(before['images'])} image(s)")
    if fig["slider_steps"] != 2:
        problems.append(f"{where}: the slider shows {fig['slider_steps']} steps (rect.slider-tick-rect), expected 2")
    elif all(after[k] == before[k] for k in TRACE_KEYS):
        problems.append(f"{where}: clicking the slider's second step changed nothing (still {before['visible']}, "
                        f"slider at step {before['active']})")
    elif after["visible"] != [False, True] or len(after["images"]) != 1 or after["images"] == before["images"]:
        problems.append(f"{where}: after clicking the second step, expected frame b alone drawn with a new heatmap "
                        f"image; got visible {after['visible']}, {len(after['images'])} image(s), "
                        f"image {'unchanged' if after['images'] == before['images'] else 'changed'}")
    if after and after["height"] < 0.9 * before["height"]:
        problems.append(f"{where}: after the slider click the figure is {after['height']} px tall, it was "
                        f"{before['height']} px: the learner sees it vanish (seen with plotly config responsive=True: "
                        "plotly.js sets .svg-container's height to 100% of an output node with no height)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a lesson in JupyterLab in headless Chromium.")
    parser.add_argument("--lesson", default="01", help="lesson number (default 01)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed for Run All")
    parser.add_argument("--learner", action="store_true",
                        help="open the learner's copy (make lab's workspace): it must stop at exercise 1, unsolved")
    args = parser.parse_args(argv)
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        print(f"no Chromium at {chromium}: apt-get install -y chromium (or set CHROMIUM=/path)", file=sys.stderr)
        return 2
    nb = runner.discover(args.lesson)[0]
    work = paths.build_dir() / "browser" / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    before = _git_status()
    result = run_lesson_in_browser(nb, work, args.timeout, chromium, learner=args.learner)
    result.update(learner=args.learner, lesson=nb, git_status=(before, _git_status()))
    problems = check(result)
    print(f"{nb.name} in Chromium: Run All took {result['run_seconds']:.0f} s "
          f"({result['total_seconds']:.0f} s with server start and shutdown); "
          f"{len(result['prompts'])} code cells; screenshot {result['screenshot']}")
    fig = result["interactive"]
    before, after = fig["before"], fig["after"]
    moved = (f"slider step {before['active']} -> {after['active']}, visible traces {before['visible']} -> "
             f"{after['visible']}, height {before['height']} -> {after['height']} px"
             if after else "not drawn or not moved")
    print(f"interactive figure in Lab: {moved}; screenshot {fig['screenshot']}")
    print(f"network blocked: {len(result['blocked'])} request(s) tried to leave 127.0.0.1")
    for p in problems:
        print("FAIL:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
