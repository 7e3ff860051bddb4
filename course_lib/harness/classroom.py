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
(`submissions/alice/01_rnn.ipynb`; nbgrader's own `alice/01_rnn/01_rnn.ipynb` works too); every other entry
gets a row of its own (course_lib.harness.class_folder: unsafe folder names, misnamed copies, files that are
not notebooks, lessons not handed in). Grading executes
every submission top to bottom at the `smoke` profile unless told otherwise: the exercises do not depend on
how long the lesson trains, and 30 students x 8 lessons at `lesson` would take days.

Submissions are untrusted code. nbgrader itself runs here, but each submission's kernel runs in a sandbox of
its own (course_lib.harness.sandbox: bubblewrap; no network, no course directory, its own uid and resource
limits), and a wall clock stops the whole notebook; nbgrader's own memory, the output it keeps and the
sandbox's disk use are bounded too. grades.csv says, per submission, "graded", "not graded: <why>" (out of
time, the kernel died, too many files), "not gradable: <why>" (not a notebook, misnamed) or "not submitted",
with the errors its cells raised. Feedback pages run nothing the student wrote (course_lib.harness.feedback).
Grading refuses to run without a sandbox unless told `--unsafe-no-sandbox`.
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..core import paths
from . import class_folder, feedback as pages, runner, sandbox
from .class_folder import NOT_SUBMITTED, check_student
from .sandbox import Limits
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
# What a submission prints is capped (CappedExecute); the feedback's HTML is sanitized, and the hidden tests are
# left out of it when asked (HideHiddenTests, off unless --HideHiddenTests.enabled=True).
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, GetGrades, IgnorePattern, LimitOutput,
                                    SaveAutoGrades)
from course_lib.harness.nbgrader_plugins import CappedExecute, HideHiddenTests
c.Autograde.autograde_preprocessors = [CappedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                       SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
c.GenerateFeedback.preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor, HideHiddenTests]
c.HTMLExporter.sanitize_html = True
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


@dataclass(frozen=True)
class Outcome:
    """How grading one submission went: `status` is "graded", "not graded: <why>" (it ran out of time, its
    kernel died), "not gradable: <why>" (not a notebook, a misnamed file, an unsafe folder name) or "not
    submitted"; `notes` are what went wrong while it ran (the cells that raised, how the kernel ended)."""
    student: str
    lesson: str
    status: str
    notes: tuple[str, ...] = ()

    @property
    def graded(self) -> bool:
        return self.status == "graded"


@dataclass(frozen=True)
class Grading:
    """A batch's marks (one per test cell of each graded submission) and every submission's outcome."""
    marks: list[Mark]
    outcomes: list[Outcome]


MAX_NOTEBOOK_BYTES = 100 * 10**6  # a lesson with its outputs is a few MB; nbgrader reads a submission whole


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


class Stopped(Exception):
    """nbgrader was killed, with everything it started, before it finished; the message says why."""


_LIVE: set[subprocess.Popen] = set()   # the nbgrader processes running now, killed if the grading is interrupted
_LIVE_LOCK = threading.Lock()
_INTERRUPTED = threading.Event()       # set by _kill_live_nbgraders: an nbgrader started after it is killed at once


def _kill_live_nbgraders() -> None:
    with _LIVE_LOCK:
        _INTERRUPTED.set()
        for proc in list(_LIVE):
            try:
                os.killpg(proc.pid, signal.SIGKILL)   # the sandboxed kernel follows: bwrap --die-with-parent
            except ProcessLookupError:
                pass


def _nbgrader(args: list[str], course: Path, env: dict[str, str] | None = None, wall_seconds: float | None = None,
              memory_gb: float | None = None, watch=None) -> subprocess.CompletedProcess:
    """Run one nbgrader command in the course directory (so it reads our nbgrader_config.py).

    With `memory_gb`, nbgrader's own memory is capped: it keeps a kernel's outputs in memory, and a submission
    that prints without end must not exhaust the grader's machine. `watch()`, called every WATCH_SECONDS, returns
    None or why to stop; then, or past `wall_seconds`, nbgrader and everything it started are killed and
    Stopped says why.
    """
    if importlib.util.find_spec("nbgrader") is None:
        raise RuntimeError("nbgrader is not installed: the classroom tools need the instructor extra "
                           "(.venv/bin/pip install -e '.[instructor]'); students do not need it")
    env = dict(env or os.environ)
    # nbgrader runs the `alembic` script from PATH to open its gradebook: put this venv's scripts first,
    # so that it works without an activated venv.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    # A session of its own, so that a kill reaches nbgrader's whole process group.
    proc = subprocess.Popen([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    with _LIVE_LOCK:
        _LIVE.add(proc)
        if _INTERRUPTED.is_set():
            os.killpg(proc.pid, signal.SIGKILL)
    try:
        if memory_gb:
            # Set from outside (preexec_fn is unsafe beside threads); nbgrader takes seconds to start a kernel,
            # long before any output could pile up.
            limit = int(memory_gb * sandbox.GB)
            resource.prlimit(proc.pid, resource.RLIMIT_DATA, (limit, limit))
        began, why = time.monotonic(), None
        while True:
            left = None if wall_seconds is None else wall_seconds - (time.monotonic() - began)
            step = WATCH_SECONDS if left is None else max(0.0, min(WATCH_SECONDS, left))
            try:
                stdout, stderr = proc.communicate(timeout=step if (watch or left is not None) else None)
                break
            except subprocess.TimeoutExpired:
                if left is not None and left <= step:
                    why = f"exceeded the {wall_seconds} s wall-clock limit (stopped)"
                elif watch is not None:
                    why = watch()
                if why:
                    os.killpg(proc.pid, signal.SIGKILL)   # the sandboxed kernel follows: bwrap --die-with-parent
                    proc.communicate()
                    raise Stopped(why) from None
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(proc)
        if proc.poll() is None:                   # interrupted (Ctrl-C, an exception): leave nothing behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


WATCH_SECONDS = 2.0


def disk_use(folders: list[Path], max_bytes: float, max_files: int) -> str | None:
    """None while `folders` hold at most `max_files` files and folders and `max_bytes` bytes, else what they
    exceed (it stops counting there). Links are counted, never followed."""
    files, size, stack = 0, 0, [str(f) for f in folders]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    files += 1
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        else:
                            size += entry.stat(follow_symlinks=False).st_blocks * 512
                    except OSError:
                        continue
                    if files > max_files:
                        return f"made more than {max_files} files (stopped)"
                    if size > max_bytes:
                        return f"wrote more than {max_bytes / sandbox.GB:g} GB (stopped)"
        except OSError:
            continue
    return None


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


def _kernel_settings(profile: str, threads: int) -> dict[str, str]:
    """What the graded notebooks are told: the profile, no progress bars, `threads` torch threads each."""
    return {"COURSE_PROFILE": check_profile(profile), "TQDM_DISABLE": "1", "COURSE_THREADS": str(threads)}


def sandbox_dir(course: Path, student: str, lesson: str) -> Path:
    """Where one submission's kernel ran: its home (the submission's copy), /tmp, log and exit status."""
    return Path(course) / "sandbox" / lesson / student


def kernel_build_dir(course: Path, student: str, lesson: str) -> Path:
    """One submission's COURSE_BUILD_DIR (results, checkpoints): private, so that grading never overwrites
    the lessons' evidence under build/results/, nor one student's files another's."""
    return sandbox_dir(course, student, lesson) / "home" / "build"


def _why_not_gradable(path: Path, folder: Path) -> str | None:
    """None for a notebook nbgrader can grade, else why not."""
    inside = path.relative_to(folder).parts
    if any((folder.joinpath(*inside[:i])).is_symlink() for i in range(1, len(inside) + 1)):
        # a link could make the grader read, and hand to the kernel, any file of this machine
        return "a symbolic link, not a notebook file"
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        return f"{size / 1e6:.0f} MB, more than the {MAX_NOTEBOOK_BYTES / 1e6:.0f} MB a notebook may have"
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # untrusted bytes: bad JSON, not UTF-8, an unknown nbformat version...
        first_line = (str(err).strip().splitlines() or [""])[0][:200]
        return f"not a notebook ({type(err).__name__}: {first_line})"
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as err:
        return f"not a valid notebook ({err.message[:200]})"
    return None


def _cell_errors(notebook: Path) -> tuple[str, ...]:
    """The errors an executed notebook's cells raised, as "<cell>: <Error>: <message>"."""
    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception:
        return ()
    errors = []
    for index, cell in enumerate(nb.cells):
        where = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index}"
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and str(out.get("text", "")).startswith(sandbox.OUTPUT_CAPPED):
                errors.append(f"{where}: {str(out['text']).split(':')[0].strip()}")
            if out.get("output_type") == "error":
                message = (str(out.get("evalue", "")).strip().splitlines() or [""])[0]
                errors.append(f"{where}: {out.get('ename')}: {message[:160]}".rstrip(": "))
    return tuple(errors)


def _autograde_failure(proc: subprocess.CompletedProcess) -> str:
    """The reason an nbgrader autograde gave, in a line."""
    log = (proc.stdout + proc.stderr).splitlines()
    errors = [line.split("]", 1)[-1].strip() for line in log if "| ERROR]" in line]
    useful = [e for e in errors if e and not e.startswith(("There was an error processing", "Please see"))]
    return (useful or errors or [f"nbgrader exited with status {proc.returncode}"])[0][:300]


def _fill_data_cache() -> None:
    """Sandboxed kernels can neither download nor write the data cache: fetch every dataset beforehand."""
    from ..core import data

    for name in data.REGISTRY:
        try:
            files = data.fetch_all(name)
        except Exception as err:
            first_line = (str(err).strip().splitlines() or [""])[0]
            print(f"warning: dataset {name!r} is not in the cache ({first_line}); lessons that need it "
                  f"will fail to load it", file=sys.stderr, flush=True)
            continue
        # The sandbox's uid must read them: the cache is meant to be shared (data.fetch writes 0644), but
        # older downloads were left 0600.
        for path in [*files, *{f.parent for f in files}, paths.data_dir()]:
            readable = 0o555 if path.is_dir() else 0o444
            if path.stat().st_mode & readable != readable:
                path.chmod(path.stat().st_mode | readable)


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
          profile: str = "smoke", timeout: int = 600, jobs: int | None = None, feedback: bool = True,
          limits: Limits | None = None, unsafe_no_sandbox: bool = False, hide_hidden_tests: bool = False,
          keep_sandboxes: bool = False, verify: bool = True) -> Grading:
    """Autograde a folder of submissions -> build/grades.csv, build/grades_by_exercise.csv and (with
    `feedback`) build/feedback/<student>/NN_name.html. Returns the batch's marks and each submission's outcome
    (one for every entry of the folder: course_lib.harness.class_folder).

    A lesson never handed out from this build folder is generated first. Each submission is one nbgrader
    autograde, `jobs` of them at a time (default: the cores, at most 4), each kernel with cores // jobs
    threads (a single submission too, so that it runs as it would in a batch). `timeout` is nbgrader's limit per
    cell; `limits` (sandbox.Limits) bound each submission as a whole. A submission that misbehaves is reported
    in its outcome, never raised: this raises only when the grading itself fails (no sandbox, nbgrader's
    feedback or export). With `hide_hidden_tests` the feedback leaves the hidden tests out; with
    `keep_sandboxes` what each submission wrote stays in build/nbgrader/sandbox/ (removed otherwise). With
    `verify` (sandboxed gradings only) each graded submission's tests run again in a fresh process
    (course_lib.harness.verify): a test cell that passed only in the notebook's own kernel scores 0.

    Each kernel runs in a sandbox (course_lib.harness.sandbox). Where none can be made this refuses, unless
    `unsafe_no_sandbox`: then submissions run as you, with your files, environment and network.
    """
    limits = limits or Limits()
    if not isinstance(limits, Limits):
        raise TypeError(f"limits={limits!r}: expected a course_lib.harness.sandbox.Limits")
    if unsafe_no_sandbox:
        print("WARNING: grading without a sandbox (--unsafe-no-sandbox): every submission runs as you, can read "
              "the hidden tests and other students' work, write the gradebook and your files, and use the "
              "network. Only the wall clock and the memory limit of nbgrader stay.", file=sys.stderr, flush=True)
    else:
        why = sandbox.unavailable_reason()
        if why:
            raise RuntimeError(f"cannot sandbox the submissions: {why}\nGrading executes students' code; without "
                               f"a sandbox it runs as you, with your files, environment and network. Fix the "
                               f"above, or grade with --unsafe-no-sandbox (unsafe_no_sandbox=True) only "
                               f"submissions you trust.")
    build = Path(build or paths.build_dir()).resolve()
    course = course_directory(build, timeout)
    names = [nb.stem for nb in runner.discover(lessons)]
    folder = Path(submissions).absolute()
    survey = class_folder.survey(folder, names, [nb.stem for nb in runner.discover()])

    outcomes: dict[tuple[str, str], Outcome] = {key: Outcome(*key, status) for key, status in survey.rows.items()}
    gradable: dict[tuple[str, str], Path] = {}
    for key, path in survey.submissions.items():
        why = _why_not_gradable(path, folder)
        if why:
            outcomes[key] = Outcome(*key, f"not gradable: {why}", tuple(survey.notes.get(key, ())))
        else:
            gradable[key] = path
    submitted = course / "submitted"
    shutil.rmtree(submitted, ignore_errors=True)  # grade exactly this folder, not an older batch
    for (student, lesson), path in gradable.items():
        target = submitted / check_student(student) / lesson / f"{lesson}.ipynb"
        target.parent.mkdir(parents=True)
        shutil.copyfile(path, target)
    lessons_found = [n for n in names if any(key[1] == n for key in gradable)]
    for lesson in lessons_found:
        if not (course / "release" / lesson / f"{lesson}.ipynb").exists():
            generate_assignments([lesson[:2]], build)

    cores = os.cpu_count() or 1
    threads = max(1, cores // (jobs or min(cores, 4)))
    jobs = max(1, min(jobs or min(cores, 4), len(gradable) or 1))
    settings = _kernel_settings(profile, threads=threads)
    grader_memory_gb = max(2.0, limits.memory_gb)
    jupyter_path = None if unsafe_no_sandbox else sandbox.write_kernelspec(course / "sandbox")
    if not unsafe_no_sandbox and gradable:
        _fill_data_cache()
    uids = None if unsafe_no_sandbox else sandbox.reserve_uids()
    _INTERRUPTED.clear()
    print(f"autograding {len(gradable)} submission(s) at profile {profile!r}, {jobs} at a time, {threads} "
          f"thread(s) each{' WITHOUT a sandbox' if unsafe_no_sandbox else ', each in a sandbox'} ...", flush=True)
    start = time.perf_counter()

    def autograde(numbered: tuple[int, tuple[str, str]]) -> Outcome:
        number, (student, lesson) = numbered
        args = ["autograde", lesson, "--student", check_student(student), "--force",
                f"--CappedExecute.max_output_bytes={int(limits.output_mb * 2**20)}"]
        env, box, watch = dict(os.environ), None, None
        if unsafe_no_sandbox:
            kernel_build_dir(course, student, lesson).mkdir(parents=True, exist_ok=True)
            env.update(settings, COURSE_BUILD_DIR=str(kernel_build_dir(course, student, lesson)),
                       COURSE_RESULTS_DIR=str(kernel_build_dir(course, student, lesson) / "results"))
        else:
            box = sandbox.prepare(sandbox_dir(course, student, lesson), number, limits, settings,
                                  notebook=gradable[(student, lesson)], uids=uids)
            env.update(box.nbgrader_env(jupyter_path))
            args += box.nbgrader_args()
            watch = lambda: disk_use([box.home, box.root / "tmp"], limits.disk_gb * sandbox.GB,  # noqa: E731
                                     limits.files)
        stopped = proc = None
        try:
            proc = _nbgrader(args, course, env, wall_seconds=limits.wall_seconds, memory_gb=grader_memory_gb,
                             watch=watch)
        except Stopped as why:
            stopped = str(why)
        finally:
            ending = box.finish() if box else None
            if not keep_sandboxes:
                sandbox.remove_tree(sandbox_dir(course, student, lesson))
        notes = tuple(survey.notes.get((student, lesson), ())) + ((ending,) if ending else ())
        if stopped:
            return Outcome(student, lesson, f"not graded: {stopped}", notes)
        if proc.returncode != 0:
            return Outcome(student, lesson, f"not graded: {ending or _autograde_failure(proc)}",
                           notes[:-1] + (f"nbgrader: {_autograde_failure(proc)}",) if ending else notes)
        executed = course / "autograded" / student / lesson / f"{lesson}.ipynb"
        return Outcome(student, lesson, "graded", _cell_errors(executed) + notes)

    def timed_autograde(numbered: tuple[int, tuple[str, str]]) -> Outcome:
        began = time.perf_counter()
        outcome = autograde(numbered)
        print(f"  {outcome.lesson} {outcome.student}: {outcome.status} ({time.perf_counter() - began:.0f} s)",
              flush=True)
        return outcome

    batch = sorted(gradable, key=lambda k: (k[1], k[0]))
    try:
        with ThreadPoolExecutor(jobs) as pool:
            try:
                for outcome in pool.map(timed_autograde, enumerate(batch)):
                    outcomes[(outcome.student, outcome.lesson)] = outcome
            except BaseException:                 # Ctrl-C, SIGTERM: no nbgrader, no kernel left behind
                pool.shutdown(wait=False, cancel_futures=True)
                _kill_live_nbgraders()
                raise
        if verify and not unsafe_no_sandbox:
            _verify_batch(course, outcomes, gradable, limits, settings, uids, jobs, keep_sandboxes)
    finally:
        if uids is not None:
            uids.release()
    print(f"autograded{' and verified' if verify and not unsafe_no_sandbox else ''} in "
          f"{time.perf_counter() - start:.0f} s", flush=True)

    for (student, lesson), outcome in outcomes.items():
        if not outcome.graded and lesson:  # no feedback from a notebook that did not run through, nor a stale one
            for stale in (course / "autograded" / student / lesson, course / "feedback" / student / lesson):
                shutil.rmtree(stale, ignore_errors=True)
            if class_folder.SAFE_NAME.fullmatch(student):
                (build / "feedback" / student / f"{lesson}.html").unlink(missing_ok=True)

    problems = []  # failures of the grading itself, raised at the end, after every file is written
    graded_lessons = [n for n in lessons_found if any(o.graded and o.lesson == n for o in outcomes.values())]
    mathjax = pages.mathjax_for(build / "feedback") if feedback and graded_lessons else None
    for lesson in graded_lessons if feedback else []:
        try:
            proc = _nbgrader(["generate_feedback", lesson, "--force", f"--HideHiddenTests.enabled={hide_hidden_tests}"],
                             course, memory_gb=grader_memory_gb)
        except Stopped as why:
            problems.append(RuntimeError(f"nbgrader generate_feedback {lesson}: {why}"))
            continue
        if proc.returncode != 0:
            problems.append(_failed(f"generate_feedback {lesson}", proc))
        for html in sorted((course / "feedback").glob(f"*/{lesson}/{lesson}.html")):
            pages.write_secure(html, html, mathjax)       # nbgrader's copies too: formgrader serves them
        for student in sorted(s for (s, name), o in outcomes.items() if name == lesson and o.graded):
            html = course / "feedback" / student / lesson / f"{lesson}.html"
            if html.exists():
                pages.write_secure(html, build / "feedback" / student / f"{lesson}.html", mathjax)

    # Both tables cover the whole gradebook, like nbgrader's export; the return value is this batch only.
    proc = _nbgrader(["export", "--to", str(build / "grades.csv")], course, memory_gb=grader_memory_gb)
    if proc.returncode != 0:
        problems.append(_failed("export", proc))
    _add_outcomes_to_grades_csv(build / "grades.csv", course, list(outcomes.values()))
    not_graded = {key for key, o in outcomes.items() if not o.graded}
    marks = [m for m in read_marks(course) if (m.student, m.lesson) not in not_graded]
    with open(build / "grades_by_exercise.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "lesson", "test_cell", "score", "max_score"])
        writer.writerows([m.student, m.lesson, m.grade_id, m.score, m.max_score] for m in marks)
    if problems:
        raise RuntimeError("\n\n".join(str(p) for p in problems))
    batch_outcomes = sorted(outcomes.values(), key=lambda o: (o.lesson, o.student))
    return Grading([m for m in marks if (m.student, m.lesson) in gradable], batch_outcomes)


def _verify_batch(course: Path, outcomes: dict, gradable: dict, limits: Limits, settings: dict, uids, jobs: int,
                  keep_sandboxes: bool) -> None:
    """Each graded submission's tests again, in a fresh sandboxed process (course_lib.harness.verify); the
    lesson's own solutions first, as the control: a test cell that fails for them is not checked."""
    from . import verify

    graded = sorted(key for key, o in outcomes.items() if o.graded and key in gradable)

    def check(numbered):
        number, (student, lesson) = numbered
        source = course / "source" / lesson / f"{lesson}.ipynb"
        spec = verify.spec_for(source, None if student is None else gradable[(student, lesson)])
        root = sandbox_dir(course, student or "_solutions", lesson) / "verify"
        box = sandbox.prepare(root, number, limits, settings, uids=uids)
        try:
            return verify.run_in_sandbox(box, spec, limits.wall_seconds)
        finally:
            box.finish()
            if not keep_sandboxes:
                sandbox.remove_tree(root.parent)

    lessons = sorted({lesson for _, lesson in graded})
    with ThreadPoolExecutor(jobs) as pool:
        controls = dict(zip(lessons, pool.map(check, enumerate((None, lesson) for lesson in lessons))))
        verdicts = dict(zip(graded, pool.map(check, enumerate(graded))))
    for lesson, control in controls.items():
        unverifiable = sorted(g for g, why in control.items() if why)
        if unverifiable:
            print(f"  {lesson}: not checked in a fresh process (the lesson's own solutions fail there): "
                  f"{', '.join(unverifiable)}", flush=True)
    for key, verdict in verdicts.items():
        verifiable = {g for g, why in controls[key[1]].items() if why is None}
        notes = verify.apply(_db_url(course), COURSE_ID, key[1], key[0], verdict, verifiable)
        if notes:
            outcomes[key] = Outcome(*key, outcomes[key].status, outcomes[key].notes + tuple(notes))


def _add_outcomes_to_grades_csv(table: Path, course: Path, outcomes: list[Outcome]) -> None:
    """Add `status` and `notes` columns to nbgrader's export for this batch's submissions; one that was not
    graded gets no score (an empty cell, not a 0), and a row even when the gradebook never saw it. A row of
    the export for which the gradebook holds no submission (a lesson released but not handed in, a student of
    an earlier batch) is `not submitted`, with no score: nbgrader writes a 0 that a learning platform would
    import as one."""
    rows: list[dict] = []
    fields = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
              "raw_score", "late_submission_penalty", "score", "max_score"]
    if table.exists():
        with open(table, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows, fields = list(reader), list(reader.fieldnames or fields)
    by_key = {(r["student_id"], r["assignment"]): r for r in rows}
    handed_in = _submissions_in_gradebook(course)
    for key, row in by_key.items():
        if key not in handed_in:
            row.update(raw_score="", late_submission_penalty="", score="", status=NOT_SUBMITTED, notes="")
    for outcome in outcomes:
        row = by_key.get((outcome.student, outcome.lesson))
        if row is None:
            row = {name: "" for name in fields}
            row.update(student_id=outcome.student, assignment=outcome.lesson,
                       max_score=_max_score(course, outcome.lesson))
            rows.append(row)
        row["status"], row["notes"] = outcome.status, "; ".join(outcome.notes)
        if not outcome.graded:
            row.update(raw_score="", late_submission_penalty="", score="")
    rows.sort(key=lambda r: (r["assignment"], r["student_id"]))
    with open(table, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fields + [c for c in ("status", "notes") if c not in fields], restval="")
        writer.writeheader()
        writer.writerows(rows)


def _submissions_in_gradebook(course: Path) -> set[tuple[str, str]]:
    from nbgrader.api import Gradebook

    with Gradebook(_db_url(course), COURSE_ID) as gb:
        return {(sub.student.id, assignment.name) for assignment in gb.assignments for sub in assignment.submissions}


def _max_score(course: Path, lesson: str) -> str:
    if not lesson:
        return ""
    source = course / "source" / lesson / f"{lesson}.ipynb"
    try:
        return str(float(sum(ex.points for ex in find_exercises(source))))  # as nbgrader writes it
    except (OSError, ValueError):
        return ""


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
    default = Limits()
    grader.add_argument("--wall-seconds", type=int, default=default.wall_seconds,
                        help="seconds allowed for a whole notebook, kernel start included")
    grader.add_argument("--cpu-seconds", type=int, default=default.cpu_seconds, help="CPU seconds per process")
    grader.add_argument("--memory-gb", type=float, default=default.memory_gb, help="memory per process")
    grader.add_argument("--max-processes", type=int, default=default.processes,
                        help="processes and threads per submission")
    grader.add_argument("--disk-gb", type=float, default=default.disk_gb, help="disk space per submission")
    grader.add_argument("--max-files", type=int, default=default.files, help="files and folders per submission")
    grader.add_argument("--max-output-mb", type=float, default=default.output_mb,
                        help="output a submission's cells may print in all (the rest is dropped, with a note)")
    grader.add_argument("--feedback-without-hidden-tests", action="store_true",
                        help="leave the hidden tests (and tracebacks quoting them) out of the feedback pages")
    grader.add_argument("--no-verify", action="store_true",
                        help="trust the scores of the notebook's own kernel (no re-run of the tests in a fresh process)")
    grader.add_argument("--keep-sandboxes", action="store_true",
                        help="keep what each submission wrote in build/nbgrader/sandbox/ (removed by default)")
    grader.add_argument("--unsafe-no-sandbox", action="store_true",
                        help="run submissions as you, with your files, environment and network (no sandbox): "
                             "only for notebooks you trust, on a machine that cannot sandbox")
    args = parser.parse_args(argv)

    build = paths.build_dir()
    if args.command == "assignments":
        copies = generate_assignments(args.lessons, build)
        print(f"{len(copies)} student cop{'y' if len(copies) == 1 else 'ies'} in {build / 'release'}:")
        for copy in copies:
            print(" ", copy.name)
        return 0
    try:
        limits = Limits(wall_seconds=args.wall_seconds, cpu_seconds=args.cpu_seconds, memory_gb=args.memory_gb,
                        processes=args.max_processes, disk_gb=args.disk_gb, files=args.max_files,
                        output_mb=args.max_output_mb)
    except ValueError as err:
        parser.error(str(err))
    # make's Ctrl-C is SIGINT (KeyboardInterrupt); a kill is SIGTERM: both end the grading and its nbgraders
    signal.signal(signal.SIGTERM, _interrupt)
    result = grade(args.submissions, args.lessons, build, args.profile, args.timeout, args.jobs,
                   limits=limits, unsafe_no_sandbox=args.unsafe_no_sandbox,
                   hide_hidden_tests=args.feedback_without_hidden_tests, keep_sandboxes=args.keep_sandboxes,
                   verify=not args.no_verify)
    totals: dict[tuple[str, str], tuple[float, float]] = {}
    for m in result.marks:
        score, max_score = totals.get((m.student, m.lesson), (0.0, 0.0))
        totals[(m.student, m.lesson)] = (score + m.score, max_score + m.max_score)
    print(f"{'student':20s} {'lesson':16s} {'score':>9s}  status")
    for o in result.outcomes:
        score, max_score = totals.get((o.student, o.lesson), (None, None))
        shown = f"{score:g} / {max_score:g}" if score is not None else "-"
        print(f"{o.student:20s} {o.lesson or '-':16s} {shown:>9s}  {o.status}")
        for note in o.notes:
            print(f"{'':48s}{note}")
    print(f"\nGrades: {build / 'grades.csv'} (per exercise: {build / 'grades_by_exercise.csv'}); "
          f"feedback: {build / 'feedback'}")
    left_out = [o for o in result.outcomes if not o.graded and o.status != NOT_SUBMITTED]
    if left_out:
        print(f"{len(left_out)} submission(s) not graded: see their status above and in grades.csv",
              file=sys.stderr)
    return 1 if left_out else 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    raise SystemExit(main())
