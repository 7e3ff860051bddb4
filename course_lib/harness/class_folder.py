"""A class's submissions folder, every entry accounted for: what `make grade` grades and why it leaves the rest.

    submissions/<student>/<NN_name>.ipynb             a submission (nbgrader's <student>/<NN_name>/<NN_name>.ipynb too)

A student is a folder whose name uses a safe alphabet (ASCII letters, digits and `._@-`, starting with a letter
or digit): nbgrader treats a student id as a file-name pattern, so a folder named `*` would otherwise make one
submission's grading reach every student's. Anything else gets a row of its own in grades.csv:
  - a folder with another name, a file, a link or a FIFO where a student's folder should be: `not gradable: <why>`;
  - a lesson handed in under a name that is not exactly the lesson's (`01_RNN.ipynb`, `01_rnn (1).ipynb`): that
    lesson's row is `not gradable`, naming what was found and what was expected; next to an exact match, it is a
    note on the graded row;
  - a lesson of the batch that a student did not hand in (an empty folder included): `not submitted`, no score;
  - other files in a student's folder: one `not gradable: not a lesson notebook` row per student.
Operating-system litter (`.DS_Store`, `.ipynb_checkpoints`, `__MACOSX`, `Thumbs.db`) is skipped silently, and so
are lessons this batch does not grade.
"""
from __future__ import annotations

import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")
LITTER = frozenset({".DS_Store", ".ipynb_checkpoints", "__MACOSX", "Thumbs.db", "desktop.ini"})
NOT_SUBMITTED = "not submitted"
NOT_A_LESSON = ""  # the lesson column of a row about files that belong to no lesson


def shown(name: str) -> str:
    """A name as grades.csv and the report show it: as is when safe, else quoted with its escapes."""
    return name if SAFE_NAME.fullmatch(name) else ascii(name)


def _file(name: str) -> str:
    """A file's name as a message quotes it: as is when printable, else with its escapes."""
    return name if name.isprintable() else ascii(name)


def check_student(name: str) -> str:
    """`name` when it is a safe student id (what nbgrader may receive), else a ValueError saying why."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise ValueError(f"student={shown(str(name))}: expected a folder name of ASCII letters, digits and ._@- "
                         f"(at most 100, starting with a letter or digit)")
    return name


def _kind(path: Path) -> str | None:
    """None for a regular file, else what it is ("a symbolic link", "a FIFO", ...). Never follows a link."""
    mode = path.lstat().st_mode
    if stat.S_ISREG(mode):
        return None
    return ("a symbolic link" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode) else
            "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device")


def _near(name: str, lessons: list[str]) -> str | None:
    """The lesson a misnamed file looks like (`01_RNN.ipynb`, `01_rnn (1).ipynb`, `Copy of 01_rnn.ipynb`)."""
    lowered = name.lower()
    for lesson in lessons:
        number = lesson[:2]
        if lesson.lower() in lowered or re.match(rf"{number}(?!\d)", lowered):
            return lesson
    return None


@dataclass
class ClassFolder:
    """What a submissions folder holds for the lessons of a batch."""
    submissions: dict[tuple[str, str], Path] = field(default_factory=dict)  # (student, lesson) -> notebook
    rows: dict[tuple[str, str], str] = field(default_factory=dict)          # (shown student, lesson) -> status
    notes: dict[tuple[str, str], list[str]] = field(default_factory=dict)   # extras next to a submission


def survey(folder: Path, batch: list[str], all_lessons: list[str]) -> ClassFolder:
    """Every entry of `folder` for the lessons `batch` (names like "01_rnn"); `all_lessons` are the course's,
    so that a file of a lesson outside the batch is left alone rather than reported."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: expected a folder of submissions laid out <folder>/<student>/<NN_name>.ipynb")
    found = ClassFolder()
    layout = "expected <folder>/<student>/<NN_name>.ipynb"
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if name in LITTER:
            continue
        kind = _kind(entry)
        if kind != "a folder":
            found.rows[(shown(name), NOT_A_LESSON)] = (f"not gradable: {kind or 'a file'}, not a student's folder "
                                                       f"({layout})")
            continue
        if not SAFE_NAME.fullmatch(name):
            why = (f"not gradable: the folder name {shown(name)} is not a student id (ASCII letters, digits and "
                   f"._@-, starting with a letter or digit, at most 100); rename the folder")
            for lesson in batch:
                found.rows[(shown(name), lesson)] = why
            continue
        _survey_student(entry, batch, all_lessons, found)
    if not found.submissions and not found.rows:
        raise ValueError(f"{folder}: no submissions found; {layout} for one of {', '.join(batch)}")
    return found


def _survey_student(student_dir: Path, batch: list[str], all_lessons: list[str], found: ClassFolder) -> None:
    student = student_dir.name
    exact: dict[str, list[tuple[str, Path]]] = {lesson: [] for lesson in batch}   # lesson -> (shown, path)
    misnamed: dict[str, list[str]] = {lesson: [] for lesson in batch}
    others: list[str] = []
    for entry in sorted(student_dir.iterdir()):
        name = entry.name
        if name in LITTER:
            continue
        lesson = name[:-len(".ipynb")] if name.endswith(".ipynb") else name
        if lesson in all_lessons and (name.endswith(".ipynb") or _kind(entry) == "a folder"):
            if lesson not in batch:
                continue                             # another lesson, graded in another batch
            if name.endswith(".ipynb"):
                exact[lesson].append((name, entry))
                continue
            for inner in sorted(entry.iterdir()):    # nbgrader's layout: <lesson>/<lesson>.ipynb
                if inner.name == f"{lesson}.ipynb":
                    exact[lesson].append((f"{lesson}/{inner.name}", inner))
                elif inner.name not in LITTER:
                    misnamed[lesson].append(f"{lesson}/{inner.name}")
            continue
        near = _near(name, all_lessons)
        if near in batch:
            misnamed[near].append(name)
        elif near is None:
            others.append(name)
    for lesson in batch:
        expected = f"{lesson}.ipynb"
        key = (student, lesson)
        misses = [_file(n) for n in misnamed[lesson]]
        for index, (name, path) in enumerate(exact[lesson]):
            kind = _kind(path)
            if kind is None and key not in found.submissions:
                found.submissions[key] = path
            elif kind is not None and index == 0 and len(exact[lesson]) == 1:
                found.rows[key] = f"not gradable: {kind}, not a notebook file"
            else:
                misses.append(f"{_file(name)} ({kind})" if kind else _file(name))
        if key in found.submissions:
            if misses:
                found.notes[key] = [f"also handed in, not graded: {', '.join(misses)}"]
        elif key in found.rows:
            pass
        elif misses:
            found.rows[key] = f"not gradable: found {', '.join(misses)}; expected exactly {expected} (rename it)"
        else:
            found.rows[key] = NOT_SUBMITTED
    if others:
        found.rows[(student, NOT_A_LESSON)] = (f"not gradable: not a lesson notebook: "
                                               f"{', '.join(_file(n) for n in others)}")
