"""`make bench-grading`: how long grading a class takes on this machine, measured, into build/bench_grading.json.

    python -m course_lib.harness.grading_bench                  # lesson 01 at 1, 6 and 30 students, then one
                                                                # submission of every lesson: ~30-40 min, 2 cores
    python -m course_lib.harness.grading_bench --students 1 6 --no-all-lessons   # shorter

Each class is made of honest students: every one submits the instructor's solved notebook (what
tests/test_classroom.py calls `all_solved`), so every submission must earn full marks, and the run says so if
one does not (a benchmark that graded nothing would be fast). Grading is `classroom.grade` exactly as `make grade`
runs it: sandboxed, the fresh-process re-check of the tests (verify), feedback pages, at the `smoke` profile.

The estimate for a class of S students x every lesson scales the measured lessons: the seconds per submission of
lesson 01 at the largest class measured (the batch's steady state, with the cores shared as in a real grading)
times each lesson's own cost relative to lesson 01's, from one submission of every lesson, each lesson graded on its own.
A benchmark, never a test: it reports, it asserts nothing about time.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
import torch

from ..core import paths
from ..core.runtime import describe
from . import classroom, runner


def _solved_notebook(build: Path, lesson: str) -> nbformat.NotebookNode:
    """The instructor notebook as it was released (solutions in place): an honest, complete submission."""
    classroom.generate_assignments([lesson[:2]], build)
    return nbformat.read(build / "nbgrader" / "source" / lesson / f"{lesson}.ipynb", as_version=4)


def _class_folder(root: Path, students: int, notebooks: dict[str, nbformat.NotebookNode]) -> Path:
    folder = root / f"class_{students}_{'_'.join(n[:2] for n in notebooks)}"
    shutil.rmtree(folder, ignore_errors=True)
    for i in range(students):
        for lesson, nb in notebooks.items():
            (folder / f"student{i:03d}").mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, folder / f"student{i:03d}" / f"{lesson}.ipynb")
    return folder


def _grade(folder: Path, lessons: list[str], build: Path) -> dict:
    """Grade `folder` as `make grade` does (the lessons handed out beforehand, as `make assignments` does); seconds,
    and whether every submission got full marks."""
    classroom.generate_assignments([n[:2] for n in lessons], build)
    start = time.perf_counter()
    result = classroom.grade(folder, [n[:2] for n in lessons], build, profile="smoke")
    seconds = time.perf_counter() - start
    submissions = [o for o in result.outcomes if o.lesson in lessons]
    full = {}
    for m in result.marks:
        got, most = full.get((m.student, m.lesson), (0.0, 0.0))
        full[(m.student, m.lesson)] = (got + m.score, most + m.max_score)
    short = sorted(f"{s}/{n}: {got:g}/{most:g}" for (s, n), (got, most) in full.items() if got < most)
    not_graded = sorted(f"{o.student}/{o.lesson}: {o.status}" for o in submissions if not o.graded)
    return {"submissions": len(submissions), "seconds": round(seconds, 1),
            "seconds_per_submission": round(seconds / max(1, len(submissions)), 1),
            "all_full_marks": not short and not not_graded, "problems": (not_graded + short)[:10]}


def run(students: list[int], all_lessons: bool, class_size: int, lesson: str = "01") -> dict:
    root = Path(tempfile.mkdtemp(prefix="grading-bench-"))
    try:
        first = runner.discover(lesson)[0].stem
        out: dict = {"machine": describe(torch.device("cpu")), "cpu": platform.processor() or platform.machine(),
                     "cores": os.cpu_count(), "load_average_at_start": list(os.getloadavg()),
                     "profile": "smoke", "lesson": first, "classes": []}
        solved = {first: _solved_notebook(root / "build", first)}
        for n in students:
            build = root / f"build_{n}"                           # a fresh gradebook for each class
            folder = _class_folder(root, n, solved)
            row = {"students": n, **_grade(folder, [first], build)}
            out["classes"].append(row)
            print(f"lesson {first}, {n:3d} student(s): {row['seconds']:7.1f} s, "
                  f"{row['seconds_per_submission']:5.1f} s per submission, all full marks: {row['all_full_marks']}",
                  flush=True)
        if all_lessons:
            lessons = [nb.stem for nb in runner.discover()]
            notebooks = {n: _solved_notebook(root / "build", n) for n in lessons}
            folder = _class_folder(root, 1, notebooks)
            # one lesson at a time, so that each lesson's seconds are its own
            per_lesson = {n: _grade(folder, [n], root / f"build_all_{n}") for n in lessons}
            out["one_submission_of_each_lesson"] = per_lesson
            for n, row in per_lesson.items():
                print(f"  {n:16s} one submission: {row['seconds']:6.1f} s, full marks: {row['all_full_marks']}",
                      flush=True)
            steady = out["classes"][-1]["seconds_per_submission"]
            base = per_lesson[first]["seconds"]
            estimate = sum(class_size * steady * row["seconds"] / base for row in per_lesson.values())
            out["estimate"] = {"students": class_size, "lessons": len(lessons), "seconds": round(estimate),
                               "hours": round(estimate / 3600, 2),
                               "how": f"lesson {first}'s seconds per submission at {out['classes'][-1]['students']} "
                                      f"students x {class_size} students x each lesson's one-submission seconds "
                                      f"relative to lesson {first}'s"}
            print(f"estimate for {class_size} students x {len(lessons)} lessons: {estimate / 3600:.1f} h", flush=True)
        out["load_average_at_end"] = list(os.getloadavg())
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure how long grading a class takes (sandboxed, at smoke).")
    parser.add_argument("--students", type=int, nargs="+", default=[1, 6, 30], help="class sizes for lesson 01")
    parser.add_argument("--no-all-lessons", dest="all_lessons", action="store_false",
                        help="skip one submission of every lesson (and the estimate for a whole course)")
    parser.add_argument("--class-size", type=int, default=100, help="students in the whole-course estimate")
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.students) or args.class_size < 1:
        parser.error("--students and --class-size: expected positive whole numbers")
    out = run(sorted(args.students), args.all_lessons, args.class_size)
    target = paths.build_dir() / "bench_grading.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"-> {target}")
    return 0 if all(c["all_full_marks"] for c in out["classes"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
