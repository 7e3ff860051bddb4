"""Execute the lesson notebooks in order with papermill, then render and report.

    python -m course_lib.harness.runner --profile lesson --lessons "01 02"

For each notebook: check its parameters (papermill only *warns* about unknown names, we refuse them), run it
with `COURSE_PROFILE` set, save the executed copy under build/executed/, render it to HTML under build/html/.
A failing notebook is reported (which notebook, which cell, which executed copy to open) and the run goes on
with the next lessons, so one lesson never hides the others' results; the exit status is non-zero at the end,
with a summary of what failed. Then build/report.md and build/html/index.html hold the evidence table
(course_lib.harness.report).

Resuming: a lesson whose results are current is skipped. Current means its executed copy and results exist, its
last run passed, and it ran at the same profile, seed, torch and code (a fingerprint of the notebook and
course_lib's sources, kept in the results file's "run"). So after Ctrl-C (one line says what finished, what
stopped and what to type) the same `make course` goes on where it stopped; `--fresh` (FRESH=1) runs everything.
A lesson runs into build/.partial/<pid>/ (its executed copy and its results, COURSE_RESULTS_DIR there) and is
moved into place when it ends: an interrupted run never replaces the previous one's files.
`--profile gpu` on a machine without a GPU is refused unless `--force` (FORCE=1).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
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
            progress: bool = True, timeout: int = 1800, results_dir: Path | None = None) -> Path:
    """Run one notebook with papermill; return the executed copy. Raises papermill's error on failure.
    Its claims are recorded in `results_dir` (default build/results/; see claims.py: only the runner records)."""
    import papermill as pm

    from ..core.progress import PROGRESS_ENV
    from .kernel import papermill_options

    from .claims import RESULTS_ENV

    check_profile(profile)
    params = {"profile": profile, **(parameters or {})}
    check_parameters(nb, params)
    out_dir = out_dir or paths.build_dir() / "executed"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / nb.name
    os.environ["COURSE_PROFILE"] = profile  # the parameters cell reads it too (nbval, JupyterLab)
    os.environ.setdefault(PROGRESS_ENV, "off")  # saved copies keep no progress bars (core/progress.py)
    before = os.environ.get(RESULTS_ENV)
    os.environ[RESULTS_ENV] = str(results_dir or paths.results_dir())      # the kernel inherits it
    try:
        pm.execute_notebook(str(nb), str(out), parameters=params, kernel_name="python3", cwd=str(nb.parent),
                            progress_bar=progress, execution_timeout=timeout, log_output=False,
                            **papermill_options())
    finally:
        if before is None:
            os.environ.pop(RESULTS_ENV, None)
        else:
            os.environ[RESULTS_ENV] = before
    return out


def code_fingerprint(nb: Path) -> str:
    """sha256 of the notebook and every course_lib source file: a lesson's results are current only for this."""
    digest = hashlib.sha256(nb.read_bytes())
    package = Path(__file__).resolve().parents[1]
    for source in sorted(package.rglob("*.py")):
        digest.update(str(source.relative_to(package)).encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:16]


def effective_seed(nb: Path, seed: int | None) -> int:
    """`seed`, else the default of the notebook's `seed` parameter (0 when it declares none)."""
    if seed is not None:
        return seed
    import papermill as pm

    default = pm.inspect_notebook(str(nb)).get("seed", {}).get("default", "0")
    try:
        return int(default)
    except ValueError:
        return 0


def run_key(nb: Path, profile: str, seed: int | None) -> dict:
    import torch

    return {"profile": profile, "seed": effective_seed(nb, seed), "torch": torch.__version__,
            "code": code_fingerprint(nb)}


def is_current(nb: Path, key: dict, executed_dir: Path, results_dir: Path) -> bool:
    """Did the last run of `nb` pass, with the same run key, and leave both its files?"""
    results = results_dir / f"{nb.stem}.json"
    if not (results.exists() and (executed_dir / nb.name).exists()):
        return False
    try:
        data = json.loads(results.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return data.get("run") == {**key, "passed": True}


def promote(nb: Path, stage: Path, executed_dir: Path, results_dir: Path, key: dict, passed: bool) -> None:
    """Move a finished lesson's executed copy and results from `stage` into place (each a rename: readers see the
    old file or the new one, never half of one), the run key written into the results."""
    results = stage / "results" / f"{nb.stem}.json"
    if results.exists():
        data = json.loads(results.read_text(encoding="utf-8"))
        data["run"] = {**key, "passed": passed}
        if data.get("seed") is None:                   # a notebook whose Claims were not told the seed
            data["seed"] = key["seed"]
        results.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    for src, dst_dir in ((stage / "executed" / nb.name, executed_dir), (results, results_dir)):
        dst_dir.mkdir(parents=True, exist_ok=True)
        if src.exists():
            os.replace(src, dst_dir / src.name)
        else:
            (dst_dir / src.name).unlink(missing_ok=True)        # no stale file may pass for this run's


def gpu_refusal(profile: str, force: bool) -> str | None:
    """Why `profile` should not run here (None: go ahead): `gpu` sizes the models for a GPU."""
    import torch

    if profile != "gpu" or force or torch.cuda.is_available() or torch.backends.mps.is_available():
        return None
    build = "a CPU-only build" if "+cpu" in torch.__version__ or torch.version.cuda is None else "a CUDA build"
    return (f"PROFILE=gpu sizes every model for a GPU, and torch {torch.__version__} ({build}) sees none here "
            "(no CUDA, no MPS): each lesson would train for hours on the CPU. Use PROFILE=lesson (or smoke), "
            "or FORCE=1 (--force) to run it anyway.")


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:                 # another run's stage is still in it, or it is gone
        pass


def _stop_children(grace: float = 10) -> None:
    """Terminate this process's children (an interrupted lesson's kernel), so none outlives the run and prints
    "Parent appears to have exited" into the terminal after our last line."""
    try:
        import psutil
    except ImportError:             # ipython brings psutil; without it the kernel stops itself a moment later
        return
    children = psutil.Process().children(recursive=True)
    for child in children:
        try:
            child.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(children, timeout=grace)
    for child in alive:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


def continue_command(profile: str, lessons: str, seed: int | None) -> str:
    parts = ["make course", f"PROFILE={profile}"]
    if lessons.strip():
        parts.append(f'LESSONS="{lessons.strip()}"')
    if seed is not None:
        parts.append(f"SEED={seed}")
    return " ".join(parts)


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
    parser.add_argument("--fresh", action="store_true", help="run every lesson, even those whose results are current")
    parser.add_argument("--force", action="store_true", help="run --profile gpu on a machine without a GPU")
    args = parser.parse_args(argv)
    if args.profile not in PROFILES:        # argparse checks `choices` only for values given on the command line
        parser.error(f"PROFILE={args.profile!r}: expected one of {', '.join(PROFILES)}")
    refusal = gpu_refusal(args.profile, args.force)
    if refusal:
        print(refusal, file=sys.stderr)
        return 2

    notebooks = discover(args.lessons)
    if not notebooks:
        print("no notebooks found under", paths.NOTEBOOKS)
        return 1
    build = paths.build_dir()
    executed_dir, html_dir, results_dir = build / "executed", build / "html", paths.results_dir()
    stage = build / ".partial" / str(os.getpid())    # its own: two runs sharing a build folder never meet here
    print(f"Running {len(notebooks)} notebook(s) at profile '{args.profile}' -> {executed_dir}")
    total_start = time.perf_counter()
    failed: list[tuple[str, str]] = []
    finished: list[str] = []
    current = None
    try:
        for i, nb in enumerate(notebooks, 1):
            key = run_key(nb, args.profile, args.seed)
            if not args.fresh and is_current(nb, key, executed_dir, results_dir):
                print(f"[{i}/{len(notebooks)}] {nb.name}: results current (profile {args.profile}, seed "
                      f"{key['seed']}, same code), skipped (FRESH=1 reruns it)")
                finished.append(nb.stem)
                continue
            print(f"\n[{i}/{len(notebooks)}] {nb.name} ...", flush=True)
            current = nb
            shutil.rmtree(stage, ignore_errors=True)
            out = stage / "executed" / nb.name
            start = time.perf_counter()
            try:
                execute(nb, args.profile, stage / "executed", results_dir=stage / "results",
                        parameters=None if args.seed is None else {"seed": args.seed})
            except Exception as err:  # papermill raises PapermillExecutionError with the cell's details
                promote(nb, stage, executed_dir, results_dir, key, passed=False)   # the failure is this run's
                current = None
                why = _describe_failure(err)
                failed.append((nb.name, why))
                out = executed_dir / nb.name
                print(f"\nFAILED: {nb.name} at profile '{args.profile}': {why}", file=sys.stderr)
                if out.exists():
                    print(f"Open the executed copy to see the traceback: {out}", file=sys.stderr)
                    if not args.no_html:
                        print(f"(rendered: {render_html(out, html_dir)})", file=sys.stderr)
                print("Going on with the next lessons.", file=sys.stderr, flush=True)
                continue
            promote(nb, stage, executed_dir, results_dir, key, passed=True)
            current = None
            finished.append(nb.stem)
            print(f"[{i}/{len(notebooks)}] {nb.name} done in {time.perf_counter() - start:.0f} s", flush=True)
            if not args.no_html:
                render_html(executed_dir / nb.name, html_dir)
    except KeyboardInterrupt:
        _stop_children()                              # the lesson's kernel, left running by papermill
        shutil.rmtree(stage, ignore_errors=True)      # the half-run lesson: its previous files stay in place
        _remove_if_empty(stage.parent)
        done = f"finished: {' '.join(n[:2] for n in finished) or 'none'}"
        stopped = f"stopped: {current.stem}" if current is not None else "stopped between lessons"
        print(f"\nInterrupted ({done}; {stopped}, its previous results kept). To continue: "
              f"{continue_command(args.profile, args.lessons, args.seed)}", file=sys.stderr, flush=True)
        return 130
    shutil.rmtree(stage, ignore_errors=True)
    _remove_if_empty(stage.parent)

    from .report import load_results, write_report

    seed = 0 if args.seed is None else args.seed                       # every lesson's own default is 0
    others = sorted(r["notebook"][:2] for r in load_results(results_dir)
                    if r["profile"] != args.profile or r.get("seed") != seed)
    report = write_report(profile=args.profile, seed=seed)
    minutes = (time.perf_counter() - total_start) / 60
    print(f"\nEvidence table: {report}  (HTML: {html_dir / 'index.html'})")
    if others:
        print(f"Left out of it: the results of lessons {' '.join(others)}, from another profile or seed.")
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
