"""Classroom: student copies and autograding with nbgrader (the `instructor` extra; students never need it).

    python -m course_lib.harness.classroom assignments [--lessons "01 02"]
    python -m course_lib.harness.classroom grade submissions/ [--lessons "01"] [--profile smoke]

Each lesson notebook is one nbgrader assignment named after it (`01_rnn`). Its exercises sit at the end: a
solution cell (`### BEGIN SOLUTION` ... `### END SOLUTION`), then locked test cells with points whose hidden
part (`### BEGIN HIDDEN TESTS` ... `### END HIDDEN TESTS`) only the grader sees.

Everything lands under build/ (`paths.build_dir()`):
    nbgrader/                        nbgrader's course directory: nbgrader_config.py, gradebook.db, source/,
                                     release/, submitted/ (a mirror of the last graded folder), autograded/, feedback/
    release/NN_name.ipynb            the student copies to hand out
    grades.csv                       one row per student and lesson (nbgrader's export)
    grades_by_exercise.csv           one row per student, lesson and test cell
    feedback/<student>/NN_name.html  what to send back to each student

A submissions folder holds one folder per student with the notebooks named as handed out
(`submissions/alice/01_rnn.ipynb`; nbgrader's own `alice/01_rnn/01_rnn.ipynb` works too). Grading executes
every submission top to bottom, unsandboxed, in this Python, at the `smoke` profile unless told otherwise:
the exercises do not depend on how long the lesson trains, and 30 students x 8 lessons at `lesson` would take days.
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..core import paths
from . import runner
from ..core.runtime import PROFILES, check_profile

COURSE_ID = "course"
NBGRADER_CONFIG = """\
# Written by course_lib.harness.classroom; edits are overwritten.
c = get_config()
c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.root = {root!r}
# Submissions are graded in parallel processes: wait for the gradebook's lock instead of failing after 5 s.
c.CourseDirectory.db_url = {db_url!r}
# Seconds per cell; nbgrader's default (30) is shorter than some lesson cells.
c.Execute.timeout = {timeout}
# nbgrader fails the whole submission when a kernel is slow to start (default 60 s) or its output arrives
# late (default 4 s): both happen on a busy machine, so allow more.
c.Execute.startup_timeout = 300
c.Execute.iopub_timeout = 60
"""


@dataclass(frozen=True)
class Exercise:
    """One exercise: the cells a student completes and the test cells that grade them."""
    number: int
    solution_ids: tuple[str, ...]
    test_ids: tuple[str, ...]
    points: float


@dataclass(frozen=True)
class Mark:
    """The score of one test cell of one student's lesson."""
    student: str
    lesson: str
    grade_id: str
    score: float
    max_score: float


def find_exercises(notebook: Path | nbformat.NotebookNode) -> list[Exercise]:
    """The nbgrader exercises of a notebook, in order; a ValueError says what is malformed.

    A run of solution cells followed by a run of test cells is one exercise.
    """
    nb = nbformat.read(notebook, as_version=4) if isinstance(notebook, Path) else notebook
    name = notebook.name if isinstance(notebook, Path) else "notebook"
    groups: list[tuple[list[str], list[str], float]] = []
    seen: set[str] = set()
    for index, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader")
        if not meta or not (meta.get("solution") or meta.get("grade") or meta.get("task")):
            continue
        grade_id = meta.get("grade_id")
        where = f"{name}, cell {index} ({grade_id or 'no grade_id'})"
        if not grade_id:
            raise ValueError(f"{where}: an nbgrader cell needs a grade_id")
        if grade_id in seen:
            raise ValueError(f"{where}: grade_id {grade_id!r} is used twice; nbgrader needs unique ids")
        seen.add(grade_id)
        if cell.cell_type != "code" or meta.get("task") or (meta.get("solution") and meta.get("grade")):
            raise ValueError(f"{where}: expected an autograded exercise (a code solution cell, then locked "
                             f"code test cells with points); manually graded cells are not supported")
        if meta.get("solution"):
            if "### BEGIN SOLUTION" not in cell.source or "### END SOLUTION" not in cell.source:
                raise ValueError(f"{where}: a solution cell needs ### BEGIN SOLUTION / ### END SOLUTION markers")
            if not groups or groups[-1][1]:
                groups.append(([], [], 0.0))
            groups[-1][0].append(grade_id)
        else:
            if not meta.get("locked") or not meta.get("points"):
                raise ValueError(f"{where}: a test cell must be locked and carry points > 0")
            if not groups:
                raise ValueError(f"{where}: a test cell comes before any solution cell")
            sol, tests, points = groups[-1]
            groups[-1] = (sol, tests + [grade_id], points + float(meta["points"]))
    if not groups:
        raise ValueError(f"{name} has no nbgrader exercises: add 2-4 solution cells (### BEGIN SOLUTION) "
                         f"each followed by a test cell with points and ### BEGIN HIDDEN TESTS")
    if not groups[-1][1]:
        raise ValueError(f"{name}: the last exercise ({groups[-1][0][0]}) has no test cell after it")
    return [Exercise(i, tuple(sol), tuple(tests), points) for i, (sol, tests, points) in enumerate(groups, 1)]


def _db_url(course: Path) -> str:
    return f"sqlite:///{course / 'gradebook.db'}?timeout=120"


def course_directory(build: Path | None = None, timeout: int = 600) -> Path:
    """nbgrader's course directory under build/, with its config (re)written."""
    course = Path(build or paths.build_dir()).resolve() / "nbgrader"
    course.mkdir(parents=True, exist_ok=True)
    config = NBGRADER_CONFIG.format(course_id=COURSE_ID, root=str(course), db_url=_db_url(course),
                                    timeout=int(timeout))
    (course / "nbgrader_config.py").write_text(config, encoding="utf-8")
    return course


def _nbgrader(args: list[str], course: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run one nbgrader command in the course directory (so it reads our nbgrader_config.py)."""
    if importlib.util.find_spec("nbgrader") is None:
        raise RuntimeError("nbgrader is not installed: the classroom tools need the instructor extra "
                           "(.venv/bin/pip install -e '.[instructor]'); students do not need it")
    env = dict(env or os.environ)
    # nbgrader runs the `alembic` script from PATH to open its gradebook: put this venv's scripts first,
    # so that it works without an activated venv.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True)


def _failed(step: str, proc: subprocess.CompletedProcess) -> RuntimeError:
    log = proc.stdout + proc.stderr
    first_error = log.find("| ERROR]")  # the traceback comes first; the end only says "see above"
    excerpt = log[first_error:first_error + 6000] if first_error >= 0 else log[-4000:]
    return RuntimeError(f"nbgrader {step} failed (exit {proc.returncode}); its log from the first error:\n{excerpt}")


def generate_assignments(lessons: str | list[str] | None = None, build: Path | None = None) -> list[Path]:
    """Student copies of the lessons (default: all) -> build/release/NN_name.ipynb; returns their paths.

    One nbgrader generate_assignment per lesson: solutions become `raise NotImplementedError()`, hidden tests
    go, and the gradebook records each test cell's checksum and points for grading later.
    """
    build = Path(build or paths.build_dir()).resolve()
    course = course_directory(build)
    copies = []
    for nb in runner.discover(lessons):
        find_exercises(nb)  # refuse a lesson without well-formed exercises before nbgrader sees it
        source = course / "source" / nb.stem / nb.name
        source.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(nb, source)
        proc = _nbgrader(["generate_assignment", nb.stem, "--force"], course)
        if proc.returncode != 0:
            raise _failed(f"generate_assignment {nb.stem}", proc)
        copy = build / "release" / nb.name
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(course / "release" / nb.stem / nb.name, copy)
        copies.append(copy)
    return copies


def collect_submissions(folder: Path, lesson_names: list[str]) -> dict[tuple[str, str], Path]:
    """{(student, lesson): notebook} from `folder/<student>/<lesson>.ipynb` or `folder/<student>/<lesson>/<lesson>.ipynb`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: expected a folder of submissions laid out <folder>/<student>/<NN_name>.ipynb")
    found = {}
    for student_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for lesson in lesson_names:
            for candidate in (student_dir / f"{lesson}.ipynb", student_dir / lesson / f"{lesson}.ipynb"):
                if candidate.is_file():
                    found[(student_dir.name, lesson)] = candidate
                    break
    if not found:
        raise ValueError(f"{folder}: no submissions found; expected <folder>/<student>/<NN_name>.ipynb "
                         f"for one of {', '.join(lesson_names)}")
    return found


def _kernel_env(course: Path, profile: str, threads: int) -> dict[str, str]:
    """The graded notebooks' environment: the profile, no progress bars, `threads` torch threads each, and a
    private build folder so that grading never overwrites the lessons' evidence under build/results/."""
    return {**os.environ, "COURSE_PROFILE": check_profile(profile), "TQDM_DISABLE": "1",
            "COURSE_THREADS": str(threads), "COURSE_BUILD_DIR": str(course / "kernel_build")}


def read_marks(course: Path) -> list[Mark]:
    """Every test cell's score in the gradebook (all lessons and students graded from this build folder)."""
    from nbgrader.api import Gradebook

    marks = []
    with Gradebook(_db_url(course), COURSE_ID) as gb:
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                for notebook in submission.notebooks:
                    marks += [Mark(submission.student.id, assignment.name, g.name, float(g.score), float(g.max_score))
                              for g in notebook.grades]
    return sorted(marks, key=lambda m: (m.student, m.lesson, m.grade_id))


def grade(submissions: Path, lessons: str | list[str] | None = None, build: Path | None = None,
          profile: str = "smoke", timeout: int = 600, jobs: int | None = None, feedback: bool = True) -> list[Mark]:
    """Autograde a folder of submissions -> build/grades.csv, build/grades_by_exercise.csv and (with
    `feedback`) build/feedback/<student>/NN_name.html. Returns the batch's marks, one per test cell.

    A lesson never handed out from this build folder is generated first. Each submission is one nbgrader
    autograde, `jobs` of them at a time (default: the cores, at most 4), each kernel with its share of the
    cores' threads: the course's small models gain nothing from a second thread, so side by side beats
    nbgrader's one after the other. Raises after writing the files if a submission could not be graded.
    """
    build = Path(build or paths.build_dir()).resolve()
    course = course_directory(build, timeout)
    names = [nb.stem for nb in runner.discover(lessons)]
    found = collect_submissions(Path(submissions), names)
    submitted = course / "submitted"
    shutil.rmtree(submitted, ignore_errors=True)  # grade exactly this folder, not an older batch
    for (student, lesson), path in found.items():
        target = submitted / student / lesson / f"{lesson}.ipynb"
        target.parent.mkdir(parents=True)
        shutil.copyfile(path, target)
    lessons_found = [n for n in names if any(key[1] == n for key in found)]
    for lesson in lessons_found:
        if not (course / "release" / lesson / f"{lesson}.ipynb").exists():
            generate_assignments([lesson[:2]], build)

    cores = os.cpu_count() or 1
    jobs = max(1, min(jobs or min(cores, 4), len(found)))
    env = _kernel_env(course, profile, threads=max(1, cores // jobs))
    print(f"autograding {len(found)} submission(s) at profile {profile!r}, {jobs} at a time ...", flush=True)
    start = time.perf_counter()

    def autograde(key: tuple[str, str]) -> tuple[tuple[str, str], subprocess.CompletedProcess]:
        student, lesson = key
        return key, _nbgrader(["autograde", lesson, "--student", student, "--force"], course, env)

    problems = []  # reported at the end: one bad notebook must not stop the others being graded
    with ThreadPoolExecutor(jobs) as pool:
        for (student, lesson), proc in pool.map(autograde, sorted(found, key=lambda k: (k[1], k[0]))):
            if proc.returncode != 0:
                problems.append(_failed(f"autograde {lesson} for {student}", proc))
    print(f"autograded in {time.perf_counter() - start:.0f} s", flush=True)

    for lesson in lessons_found if feedback else []:
        proc = _nbgrader(["generate_feedback", lesson, "--force"], course)
        if proc.returncode != 0:
            problems.append(_failed(f"generate_feedback {lesson}", proc))
        for student in sorted(s for s, name in found if name == lesson):
            html = course / "feedback" / student / lesson / f"{lesson}.html"
            if html.exists():
                (build / "feedback" / student).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(html, build / "feedback" / student / f"{lesson}.html")

    # Both tables cover the whole gradebook, like nbgrader's export; the return value is this batch only.
    proc = _nbgrader(["export", "--to", str(build / "grades.csv")], course)
    if proc.returncode != 0:
        problems.append(_failed("export", proc))
    marks = read_marks(course)
    with open(build / "grades_by_exercise.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "lesson", "test_cell", "score", "max_score"])
        writer.writerows([m.student, m.lesson, m.grade_id, m.score, m.max_score] for m in marks)
    if problems:
        raise RuntimeError("\n\n".join(str(p) for p in problems))
    return [m for m in marks if (m.student, m.lesson) in found]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Student copies and autograding with nbgrader.")
    sub = parser.add_subparsers(dest="command", required=True)
    assign = sub.add_parser("assignments", help="student copies of the lessons -> build/release/")
    assign.add_argument("--lessons", default=os.environ.get("LESSONS", ""), help='e.g. "01 02" (default: all)')
    grader = sub.add_parser("grade", help="autograde a folder of submissions -> build/grades.csv, build/feedback/")
    grader.add_argument("submissions", type=Path, help="a folder laid out <student>/<NN_name>.ipynb")
    grader.add_argument("--lessons", default=os.environ.get("LESSONS", ""), help='e.g. "01 02" (default: all)')
    grader.add_argument("--profile", default="smoke", choices=PROFILES, help="profile the submissions run at")
    grader.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell")
    grader.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: cores, <= 4)")
    args = parser.parse_args(argv)

    build = paths.build_dir()
    if args.command == "assignments":
        copies = generate_assignments(args.lessons, build)
        print(f"{len(copies)} student cop{'y' if len(copies) == 1 else 'ies'} in {build / 'release'}:")
        for copy in copies:
            print(" ", copy.name)
        return 0
    marks = grade(args.submissions, args.lessons, build, args.profile, args.timeout, args.jobs)
    totals: dict[tuple[str, str], tuple[float, float]] = {}
    for m in marks:
        score, max_score = totals.get((m.student, m.lesson), (0.0, 0.0))
        totals[(m.student, m.lesson)] = (score + m.score, max_score + m.max_score)
    print(f"{'student':20s} {'lesson':16s} score")
    for (student, lesson), (score, max_score) in sorted(totals.items()):
        print(f"{student:20s} {lesson:16s} {score:g} / {max_score:g}")
    print(f"\nGrades: {build / 'grades.csv'} (per exercise: {build / 'grades_by_exercise.csv'}); "
          f"feedback: {build / 'feedback'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
