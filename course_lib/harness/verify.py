"""Score integrity: a graded submission's tests run again in a fresh process, without the notebook's kernel.

nbgrader runs the hidden tests in the kernel that ran the student's cells, after them: a student can rewrite
what the tests will execute (`get_ipython().input_transformers_cleanup.append(lambda l: [])` empties every
later cell; a transformer that strips `assert` lines), or return objects that pass any comparison (a class
whose `__eq__` is always True). Here, per submission, a fresh Python process (in the submission's sandbox)
builds a namespace from:
  - the submission's code cells (test cells aside), of which only top-level imports, functions and classes are
    kept (no statement runs at the top level: the input-transformer line and anything else outside a function
    is gone);
  - then the trusted source notebook's top-level imports, functions and classes (the lesson's own helpers), so
    that a student's `class torch` or redefined helper is replaced by the lesson's;
then executes each test cell of the trusted source, visible and hidden, with plain `exec` (no IPython, so no
input transformers), the student's functions wrapped so that what they return must be plain data: a
torch.Tensor (exactly, not a subclass), a NumPy array or scalar, a number, a string, None, or tuples, lists
and dicts of these. A test cell that passed in the notebook but fails here scores 0 (classroom.grade records
it in the gradebook as a manual score and names it in the notes).

The same check runs first on the lesson's own solutions: a test cell that fails there (it needs the lesson's
state, e.g. a trained model) cannot be checked this way and keeps nbgrader's score.

    python -m course_lib.harness.verify SPEC.json   -> one JSON line on stdout: {test cell: null | "why it failed"}

The process runs the student's functions, so a submission written against this verifier can still forge its
verdict (the README lists what still works); it raises the bar from one generic line to targeted code.
"""
from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

MARK = "@@course-verify@@"   # the verdict line's prefix (the student's prints go to stdout too)


def top_level_definitions(source: str) -> str:
    """Only the imports, function and class definitions at the top level of `source` (IPython magics and
    anything that does not parse leave nothing)."""
    tree = _parse(source)
    if tree is None:
        return ""
    kept = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef,
                                                            ast.AsyncFunctionDef, ast.ClassDef))]
    return ast.unparse(ast.Module(body=kept, type_ignores=[]))


def _parse(source: str) -> ast.Module | None:
    for text in (source, "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))):
        try:
            return ast.parse(text)
        except SyntaxError:
            continue
    return None


def defined_functions(source: str) -> list[str]:
    tree = _parse(source)
    if tree is None:
        return []
    return [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _plain(value, depth: int = 0) -> str | None:
    """None when `value` is plain data, else what it is."""
    import numpy as np
    import torch

    kind = type(value)
    if value is None or kind in (bool, int, float, complex, str, bytes, torch.Tensor, torch.nn.Parameter,
                                 torch.dtype, torch.device, np.ndarray) or isinstance(value, np.generic) and \
            kind.__module__ == "numpy":
        return None
    if depth < 6 and kind in (tuple, list, set, frozenset, torch.Size):
        return next((why for item in value if (why := _plain(item, depth + 1))), None)
    if depth < 6 and kind is dict:
        return next((why for item in [*value.keys(), *value.values()] if (why := _plain(item, depth + 1))), None)
    return f"{kind.__module__}.{kind.__qualname__}"


def _checked(name: str, fn):
    def wrapper(*args, **kwargs):
        result = fn(*args, **kwargs)
        why = _plain(result)
        if why:
            raise TypeError(f"{name} returned a {why}; expected a tensor, an array, a number, a string, or "
                            f"tuples, lists, sets or dicts of them")
        return result
    return wrapper


def run(spec: dict) -> dict[str, str | None]:
    namespace: dict = {"__name__": "__verify__"}
    for source in spec["student_cells"]:          # the student's definitions first ...
        exec(compile(top_level_definitions(source), "<submission>", "exec"), namespace)
    exec(compile(spec["lesson"], "<lesson>", "exec"), namespace)   # ... then the lesson's win (no fake `torch`)
    student_functions = [name for source in spec["solutions"] for name in defined_functions(source)]
    for name in student_functions:
        if callable(namespace.get(name)):
            namespace[name] = _checked(name, namespace[name])
    verdict: dict[str, str | None] = {}
    for grade_id, source in spec["tests"]:
        try:
            exec(compile(source, f"<{grade_id}>", "exec"), namespace)
            verdict[grade_id] = None
        except BaseException as err:  # noqa: BLE001 - a test cell's failure of any kind fails it
            verdict[grade_id] = f"{type(err).__name__}: {str(err).strip()[:160]}"
    return verdict


# ---- the grader's side: specs, the run in a sandbox, the gradebook ----

def spec_for(source_nb: Path, submission: Path | None = None) -> dict:
    """What the verifier needs for `submission` (None: the lesson's own solutions, the control)."""
    import nbformat

    source = nbformat.read(source_nb, as_version=4)
    meta = lambda cell: cell.metadata.get("nbgrader", {})  # noqa: E731
    solution_ids = [meta(c)["grade_id"] for c in source.cells if meta(c).get("solution")]
    tests = [(meta(c)["grade_id"], c.source) for c in source.cells if c.cell_type == "code" and meta(c).get("grade")]
    lesson = "\n".join(top_level_definitions(c.source) for c in source.cells
                       if c.cell_type == "code" and not meta(c).get("solution") and not meta(c).get("grade"))
    nb = source if submission is None else nbformat.read(submission, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and not meta(c).get("grade")]
    return {"lesson": lesson, "tests": tests, "student_cells": [c.source for c in cells],
            "solutions": [c.source for c in cells if meta(c).get("grade_id") in solution_ids]}


def run_in_sandbox(box, spec: dict, timeout: float) -> dict[str, str | None]:
    """The verdict of `spec` run in `box` (a sandbox.prepare'd sandbox): its stdout goes to a file, of which
    only the end is read. A verifier that dies or runs out of time fails every test."""
    import os
    import subprocess

    from . import sandbox

    (box.home / "verify.json").write_text(json.dumps(spec), encoding="utf-8")
    out = box.root / "verify.out"
    with open(out, "wb") as stdout:
        try:
            proc = subprocess.run([sys.executable, "-m", "course_lib.harness.sandbox", "run", "--", sys.executable,
                                   "-m", "course_lib.harness.verify", f"{sandbox.HOME}/verify.json"],
                                  env={**os.environ, sandbox.PLAN_ENV: str(box.plan)}, stdout=stdout,
                                  stderr=subprocess.DEVNULL, timeout=timeout, start_new_session=True)
            why = None if proc.returncode == 0 else f"the verifier exited with status {proc.returncode}"
        except subprocess.TimeoutExpired:
            why = f"the verifier ran past {timeout:g} s"
    with open(out, "rb") as f:
        f.seek(max(0, out.stat().st_size - 2**20))
        lines = [line for line in f.read().decode("utf-8", "replace").splitlines() if line.startswith(MARK)]
    if lines and why is None:
        try:
            return json.loads(lines[-1][len(MARK):])
        except ValueError:
            why = "the verifier's verdict did not parse"
    why = why or "the verifier gave no verdict"
    return {grade_id: why for grade_id, _ in spec["tests"]}


def apply(db_url: str, course_id: str, lesson: str, student: str, verdict: dict, verifiable: set[str]) -> list[str]:
    """Zero, in the gradebook, each verifiable test cell that passed in the notebook but failed here; returns
    notes naming them."""
    from nbgrader.api import Gradebook

    notes = []
    with Gradebook(db_url, course_id) as gb:
        for grade_id, why in verdict.items():
            if why is None or grade_id not in verifiable:
                continue
            grade = gb.find_grade(grade_id, lesson, lesson, student)
            if (grade.auto_score or 0) > 0:
                grade.manual_score = 0.0
                notes.append(f"{grade_id}: passed in the notebook, failed in a fresh process ({why}); scored 0")
        gb.db.commit()
    return notes


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0], encoding="utf-8") as f:
        spec = json.load(f)
    try:
        verdict = run(spec)
    except BaseException as err:  # noqa: BLE001 - the setup failed: every test fails
        why = f"the functions could not be loaded ({type(err).__name__}: {str(err).strip()[:160]})"
        verdict = {grade_id: why for grade_id, _ in spec["tests"]}
    sys.stdout.flush()
    print(MARK + json.dumps(verdict), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
