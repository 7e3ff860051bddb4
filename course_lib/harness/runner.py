"""Execute the lesson notebooks in order with papermill, then render and report.

    python -m course_lib.harness.runner --profile lesson --lessons "01 02"

For each notebook: check its parameters (papermill only *warns* about unknown names, we refuse them), run it
with `COURSE_PROFILE` set, save the executed copy under build/executed/, render it to HTML under build/html/.
A failing notebook is reported (which notebook, which cell, which executed copy to open) and the run goes on
with the next lessons, so one lesson never hides the others' results; the exit status is non-zero at the end,
with a summary of what failed. Then build/report.md and build/html/index.html hold the evidence table
(course_lib.harness.report).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

from ..core import paths
from ..core.runtime import PROFILES, check_profile

NOTEBOOK_PATTERN = re.compile(r"^(\d\d)_[a-z0-9_]+\.ipynb$")


def discover(lessons: str | list[str] | None = None) -> list[Path]:
    """Lesson notebooks in order; `lessons` like "01 02" (or a list) picks a subset by number."""
    found = sorted(p for p in paths.NOTEBOOKS.glob("*.ipynb") if NOTEBOOK_PATTERN.match(p.name))
    if not lessons:
        return found
    wanted = lessons.replace(",", " ").split() if isinstance(lessons, str) else list(lessons)
    wanted = list(dict.fromkeys(w.zfill(2) for w in wanted))       # "01 01" runs lesson 01 once
    by_number = {p.name[:2]: p for p in found}
    unknown = [w for w in wanted if w.zfill(2) not in by_number]
    if unknown:
        raise SystemExit(f"LESSONS={' '.join(wanted)}: no notebook numbered {', '.join(unknown)} "
                         f"(have {' '.join(sorted(by_number))})")
    return [by_number[w.zfill(2)] for w in wanted]


def check_parameters(nb: Path, parameters: dict) -> None:
    import papermill as pm

    declared = pm.inspect_notebook(str(nb))
    if "profile" not in declared:
        raise ValueError(f"{nb.name}: its parameters cell does not declare `profile`")
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ValueError(f"{nb.name}: unknown parameter(s) {unknown}; it declares {sorted(declared)}")


def execute(nb: Path, profile: str, out_dir: Path | None = None, parameters: dict | None = None,
            progress: bool = True, timeout: int = 1800) -> Path:
    """Run one notebook with papermill; return the executed copy. Raises papermill's error on failure."""
    import papermill as pm

    from ..core.progress import PROGRESS_ENV
    from .kernel import papermill_options

    check_profile(profile)
    params = {"profile": profile, **(parameters or {})}
    check_parameters(nb, params)
    out_dir = out_dir or paths.build_dir() / "executed"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / nb.name
    os.environ["COURSE_PROFILE"] = profile  # the parameters cell reads it too (nbval, JupyterLab)
    os.environ.setdefault(PROGRESS_ENV, "off")  # saved copies keep no progress bars (core/progress.py)
    pm.execute_notebook(str(nb), str(out), parameters=params, kernel_name="python3", cwd=str(nb.parent),
                        progress_bar=progress, execution_timeout=timeout, log_output=False,
                        **papermill_options())
    return out


PLOTLY_TAG = '<script src="plotly.min.js"></script>'


def _with_plotly(page: str) -> str:
    """`page` loading plotly.js from the file beside it, first thing in <head>: the interactive figures
    (course_lib.core.interactive) call window.Plotly, and no page may fetch it from a CDN. First, because
    nbconvert's template loads require.js, and plotly.js loaded after it registers as an AMD module instead of
    setting window.Plotly."""
    if PLOTLY_TAG in page:
        return page
    head = re.search(r"<head[^>]*>\s*(<meta charset=[^>]*>\s*)?", page, re.IGNORECASE)
    if head is None:
        return PLOTLY_TAG + "\n" + page
    return page[:head.end()] + PLOTLY_TAG + "\n" + page[head.end():]


def render_html(executed: Path, html_dir: Path) -> Path:
    from nbconvert import HTMLExporter

    from ..core.interactive import copy_plotly_js

    html_dir.mkdir(parents=True, exist_ok=True)
    copy_plotly_js(html_dir)                           # one copy for every page of the folder
    body, _ = HTMLExporter().from_filename(str(executed))
    target = html_dir / (executed.stem + ".html")
    target.write_text(_with_plotly(body), encoding="utf-8")
    return target


def _describe_failure(err: Exception) -> str:
    cell = getattr(err, "exec_count", None)
    ename = getattr(err, "ename", type(err).__name__)
    evalue = getattr(err, "evalue", str(err))
    where = f"cell In [{cell}]" if cell is not None else "a cell"
    return f"{where} raised {ename}: {evalue}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute the course notebooks and collect the evidence.")
    parser.add_argument("--profile", default=os.environ.get("PROFILE", "lesson"), choices=PROFILES,
                        help="default: $PROFILE, else lesson")
    parser.add_argument("--lessons", default=os.environ.get("LESSONS", ""), help='e.g. "01 02" (default: all)')
    parser.add_argument("--no-html", action="store_true", help="skip the HTML rendering")
    parser.add_argument("--seed", type=int, help="the notebooks' `seed` parameter (default: each notebook's own, 0)")
    args = parser.parse_args(argv)
    if args.profile not in PROFILES:        # argparse checks `choices` only for values given on the command line
        parser.error(f"PROFILE={args.profile!r}: expected one of {', '.join(PROFILES)}")

    notebooks = discover(args.lessons)
    if not notebooks:
        print("no notebooks found under", paths.NOTEBOOKS)
        return 1
    build = paths.build_dir()
    executed_dir, html_dir = build / "executed", build / "html"
    print(f"Running {len(notebooks)} notebook(s) at profile '{args.profile}' -> {executed_dir}")
    total_start = time.perf_counter()
    failed: list[tuple[str, str]] = []
    for i, nb in enumerate(notebooks, 1):
        print(f"\n[{i}/{len(notebooks)}] {nb.name} ...", flush=True)
        out = executed_dir / nb.name
        # no stale evidence: an old results file or executed copy must never pass for this run's
        (paths.results_dir() / f"{nb.stem}.json").unlink(missing_ok=True)
        out.unlink(missing_ok=True)
        (html_dir / f"{nb.stem}.html").unlink(missing_ok=True)
        start = time.perf_counter()
        try:
            execute(nb, args.profile, executed_dir, parameters=None if args.seed is None else {"seed": args.seed})
        except Exception as err:  # papermill raises PapermillExecutionError with the cell's details
            why = _describe_failure(err)
            failed.append((nb.name, why))
            print(f"\nFAILED: {nb.name} at profile '{args.profile}': {why}", file=sys.stderr)
            if out.exists():
                print(f"Open the executed copy to see the traceback: {out}", file=sys.stderr)
                if not args.no_html:
                    print(f"(rendered: {render_html(out, html_dir)})", file=sys.stderr)
            print("Going on with the next lessons.", file=sys.stderr, flush=True)
            continue
        print(f"[{i}/{len(notebooks)}] {nb.name} done in {time.perf_counter() - start:.0f} s", flush=True)
        if not args.no_html:
            render_html(out, html_dir)

    from .report import write_report

    report = write_report(profile=args.profile)
    minutes = (time.perf_counter() - total_start) / 60
    print(f"\nEvidence table: {report}  (HTML: {html_dir / 'index.html'})")
    if failed:
        print(f"\n{len(failed)} of {len(notebooks)} notebook(s) FAILED at profile '{args.profile}' "
              f"({minutes:.1f} min):", file=sys.stderr)
        for name, why in failed:
            print(f"  {name}: {why}", file=sys.stderr)
        return 1
    print(f"All {len(notebooks)} notebook(s) passed in {minutes:.1f} min.")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
