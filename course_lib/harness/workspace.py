"""The learner's workspace: a copy of each lesson to work in, without the solutions or the hidden tests.

    python -m course_lib.harness.workspace [--solutions] [--dir workspace]      (make lab does this first)

`notebooks/NN_name.ipynb` are the teacher's versions: every exercise solved, hidden tests included, and tracked by
git (JupyterLab would save outputs into them). A learner works in `workspace/` instead (ignored by git), one
notebook per lesson, made here the way nbgrader makes a student copy (see classroom.py for the markers), without
needing nbgrader:

    ### BEGIN SOLUTION ... ### END SOLUTION          -> `# YOUR CODE HERE` + `raise NotImplementedError()`
                                                        (in a Markdown cell: `YOUR ANSWER HERE`)
    ### BEGIN HIDDEN TESTS ... ### END HIDDEN TESTS  -> removed
    a solution cell without markers                  -> its whole source replaced the same way
    outputs, execution counts                        -> cleared

A learner's work is never overwritten. `workspace/.lessons.json` remembers what was written: a copy still
byte-identical to what was written follows a changed lesson; an edited copy stays, and a changed lesson is
offered beside it as `NN_name.updated.ipynb`. New lessons are added; nothing is deleted.

`--solutions` fills `workspace-solutions/` the same way with the full lessons (outputs cleared): the answers on
purpose, still never the tracked files.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..core import paths

MANIFEST = ".lessons.json"
LESSON_NAME = re.compile(r"^\d\d_[a-z0-9_]+\.ipynb$")
SOLUTION = re.compile(r"^([ \t]*)### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*### END SOLUTION[^\n]*(\n|$)", re.M | re.S)
HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[^\n]*\n.*?^[ \t]*### END HIDDEN TESTS[^\n]*(\n|$)", re.M | re.S)
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
ANSWER_STUB = "YOUR ANSWER HERE"


def _stub(cell_type: str, indent: str = "") -> str:
    stub = CODE_STUB if cell_type == "code" else ANSWER_STUB
    return "".join(f"{indent}{line}\n" for line in stub.splitlines())


def student_cell_source(source: str, cell_type: str, solution_cell: bool = False) -> str:
    """One cell's source as a learner gets it (see the module's table)."""
    out = SOLUTION.sub(lambda m: _stub(cell_type, m.group(1)), source)
    out = HIDDEN.sub("", out)
    if solution_cell and out == source:          # nbgrader: a solution cell without markers is all solution
        out = _stub(cell_type)
    left = [m for m in MARKERS if m in out]
    if left:
        raise ValueError(f"unbalanced nbgrader markers {left} in a {cell_type} cell starting {source[:80]!r}: "
                         "expected BEGIN/END pairs on lines of their own")
    return out.rstrip("\n") if out != source else out


def clear_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def student_version(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of `nb` without solutions, hidden tests or outputs."""
    nb = clear_outputs(nbformat.from_dict(json.loads(json.dumps(nb))))
    for cell in nb.cells:
        solution = bool(cell.metadata.get("nbgrader", {}).get("solution"))
        cell.source = student_cell_source(cell.source, cell.cell_type, solution)
    return nb


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Sync:
    added: list[str]
    updated: list[str]        # unedited copies that followed a changed lesson
    offered: list[str]        # NN_name.updated.ipynb written beside an edited copy
    kept: list[str]           # edited copies left alone (lesson unchanged)


def sync(target: Path, lessons: list[Path], solutions: bool = False) -> Sync:
    """Bring `target` up to date with `lessons` without overwriting a learner's edits (see the module)."""
    target.mkdir(parents=True, exist_ok=True)
    manifest_path = target / MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    result = Sync([], [], [], [])
    for lesson in lessons:
        if not LESSON_NAME.match(lesson.name):
            raise ValueError(f"{lesson}: expected a lesson notebook named NN_name.ipynb")
        nb = nbformat.read(lesson, as_version=4)
        text = nbformat.writes(clear_outputs(nb) if solutions else student_version(nb)) + "\n"
        lesson_sha = _sha(text)
        copy = target / lesson.name
        offer = copy.with_name(copy.stem + ".updated.ipynb")
        known = manifest.get(lesson.name, {})
        if not copy.exists():
            copy.write_text(text, encoding="utf-8")
            result.added.append(copy.name)
        elif known.get("written") == _sha(copy.read_text(encoding="utf-8")):
            if known.get("lesson") == lesson_sha:
                continue
            copy.write_text(text, encoding="utf-8")
            result.updated.append(copy.name)
        else:                                            # the learner's copy: never overwritten
            if known.get("lesson") != lesson_sha and not (offer.exists() and
                                                          offer.read_text(encoding="utf-8") == text):
                offer.write_text(text, encoding="utf-8")
                result.offered.append(offer.name)
            else:
                result.kept.append(copy.name)
            continue                                     # the manifest keeps the version the learner started from
        manifest[lesson.name] = {"written": lesson_sha, "lesson": lesson_sha}
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return result


def default_dir(solutions: bool = False) -> Path:
    return paths.ROOT / ("workspace-solutions" if solutions else "workspace")


def lab_command(root: Path, flags: list[str] | None = None, is_root: bool | None = None) -> list[str]:
    """JupyterLab from this venv serving `root` only (one file per lesson); --allow-root only when run as root."""
    import os
    import sys

    is_root = os.geteuid() == 0 if is_root is None else is_root
    cmd = [str(Path(sys.executable).parent / "jupyter"), "lab", f"--ServerApp.root_dir={root}"]
    return cmd + (["--allow-root"] if is_root and "--allow-root" not in (flags or []) else []) + list(flags or [])


LAB_URL = re.compile(r"(https?://\S+/lab\S*\?token=\w+)")


def run_lab(root: Path, profile: str, flags: list[str]) -> int:
    """Start JupyterLab on `root` with COURSE_PROFILE=`profile`, passing its log through and printing the URL to
    open on a line of its own once the server says it. Ctrl-C is JupyterLab's (it asks before shutting down)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "COURSE_PROFILE": profile,
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    proc = subprocess.Popen(lab_command(root, flags), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    shown = False
    while True:
        try:
            for line in proc.stdout:
                sys.stdout.write(line)
                url = LAB_URL.search(line)
                if url and not shown:
                    shown = True
                    print(f"\n>>> Open {url.group(1)}   (profile {profile}, folder {root})\n", flush=True)
            return proc.wait()
        except KeyboardInterrupt:       # JupyterLab got it too and decides; keep showing what it says
            if proc.poll() is not None:
                return proc.returncode


def main(argv: list[str] | None = None) -> int:
    from ..core.runtime import check_profile
    from .runner import discover

    parser = argparse.ArgumentParser(description="Make or update the learner's workspace; --lab opens it.")
    parser.add_argument("--solutions", action="store_true", help="the full lessons, answers included")
    parser.add_argument("--dir", type=Path, help="default: workspace/ (workspace-solutions/ with --solutions)")
    parser.add_argument("--lab", action="store_true", help="then start JupyterLab on it")
    parser.add_argument("--profile", default="lesson", help="COURSE_PROFILE for the lab's kernels")
    parser.add_argument("lab_flags", nargs=argparse.REMAINDER, help="after --: flags for jupyter lab")
    args = parser.parse_args(argv)
    try:
        check_profile(args.profile)
    except ValueError as err:
        parser.error(f"PROFILE: {err}")
    target = (args.dir or default_dir(args.solutions)).resolve()
    done = sync(target, discover(), solutions=args.solutions)
    what = "the lessons WITH their solutions" if args.solutions else "your copies of the lessons (no solutions)"
    print(f"workspace: {target} holds {what}")
    for name in done.added:
        print(f"  new: {name}")
    for name in done.updated:
        print(f"  updated (you had not edited it): {name}")
    for name in done.offered:
        print(f"  {name}: the lesson changed since your copy; the new version is beside yours, yours is untouched")
    if not args.lab:
        return 0
    flags = [f for f in args.lab_flags if f != "--"]
    print(f"JupyterLab at profile '{args.profile}' (COURSE_PROFILE); stop it with Ctrl-C", flush=True)
    return run_lab(target, args.profile, flags)


if __name__ == "__main__":
    raise SystemExit(main())
