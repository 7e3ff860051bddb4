"""A lesson in a real browser: JupyterLab from the venv + headless Chromium driven by Playwright.

    .venv/bin/python tests/browser_smoke.py [--lesson 01] [--timeout 900]      (make test-browser)

Starts JupyterLab on 127.0.0.1 with a random token, opens a copy of the lesson (never the committed notebook:
Lab autosaves outputs into what it opens), clicks Run -> Run All Cells at the `smoke` profile, waits for the
last cell, saves, and checks: no error output, every code cell ran, a plot rendered in the page. Saves a
screenshot of the first plot to build/browser/<lesson>.png, then shuts the browser, the kernel and the server.

Needs Debian's `chromium` (apt-get install -y chromium; CHROMIUM=/path overrides) and the `playwright`
Python package from the instructor extra. Never `playwright install`: it would download another browser.
Not part of `make test` (pytest does not collect this file).
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
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


def run_lesson_in_browser(nb: Path, work: Path, timeout: float, chromium: str) -> dict:
    from playwright.sync_api import sync_playwright

    root = work / "lab"
    root.mkdir(parents=True, exist_ok=True)
    copy = root / nb.name
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
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(120_000)  # Lab's first load is slow on a busy machine (30 s is not enough)
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
            finally:
                browser.close()
    finally:
        stop_lab(lab, base, token)
    return {"copy": copy, "prompts": prompts, "plot_width": plot_width, "page_errors": page_errors,
            "screenshot": screenshot, "run_seconds": run_seconds, "total_seconds": time.perf_counter() - started,
            "server_gone": lab.poll() is not None}


def check(result: dict) -> list[str]:
    """What went wrong, from the saved notebook (the truth about outputs) and the page."""
    nb = nbformat.read(result["copy"], as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    problems = [f"cell {i} raised {o.get('ename')}: {o.get('evalue')}" for i, c in enumerate(nb.cells)
                if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    unrun = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.execution_count is None]
    if unrun:
        problems.append(f"code cells never ran: {unrun}")
    if not any("image/png" in o.get("data", {}) for c in code for o in c.outputs):
        problems.append("no plot (image/png output) in the saved notebook")
    if not result["plot_width"]:
        problems.append("the first plot's <img> did not render in the page")
    if len(result["prompts"]) != len(code):
        problems.append(f"the page shows {len(result['prompts'])} code cells, the notebook has {len(code)}")
    problems += [f"page error: {e}" for e in result["page_errors"]]
    if not result["server_gone"]:
        problems.append("JupyterLab did not shut down")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a lesson in JupyterLab in headless Chromium.")
    parser.add_argument("--lesson", default="01", help="lesson number (default 01)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed for Run All")
    args = parser.parse_args(argv)
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        print(f"no Chromium at {chromium}: apt-get install -y chromium (or set CHROMIUM=/path)", file=sys.stderr)
        return 2
    nb = runner.discover(args.lesson)[0]
    work = paths.build_dir() / "browser" / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    result = run_lesson_in_browser(nb, work, args.timeout, chromium)
    problems = check(result)
    print(f"{nb.name} in Chromium: Run All took {result['run_seconds']:.0f} s "
          f"({result['total_seconds']:.0f} s with server start and shutdown); "
          f"{len(result['prompts'])} code cells; screenshot {result['screenshot']}")
    for p in problems:
        print("FAIL:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
