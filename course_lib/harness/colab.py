"""The course outside its repository (Colab, a lesson saved alone): where `course_lib` installs from, the cell
every lesson starts with, and each lesson's "Open in Colab" link.

One source: REPOSITORY below. The install cell in each notebook, the README's links and the book's launch
buttons are checked against it (tests/test_outside.py). A fork publishes elsewhere: change REPOSITORY, paste
`python -m course_lib.harness.colab` into the README and the cell into the notebooks (the test says where).

Colab itself cannot be reached from the machines this course is tested on: everything up to it is tested
(the wheel installed alone in a fresh venv, a lesson copied into an empty folder installing course_lib through
this cell and running at smoke), Colab is not.
"""
from __future__ import annotations

import sys

REPOSITORY = "https://github.com/llm-evolution-course/rnn-to-rlhf"   # where the course is published (assumed)
BRANCH = "main"
PIP_TARGET = f"course_lib @ git+{REPOSITORY}@{BRANCH}"
PIP_ENV = "COURSE_LIB_PIP"          # another pip target (a wheel file, a fork): what the test installs from

INSTALL_CELL = f'''\
# Outside the course's repository (Colab, a lesson saved alone) this installs its package first.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("course_lib") is None:
    target = os.environ.get("{PIP_ENV}", "{PIP_TARGET}")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", target])
    importlib.invalidate_caches()'''


def colab_url(lesson: str) -> str:
    """'01_rnn' -> the Colab page that opens notebooks/01_rnn.ipynb from the published repository."""
    path = REPOSITORY.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{path}/blob/{BRANCH}/notebooks/{lesson}.ipynb"


def readme_links(lessons: list[str]) -> str:
    """The README's line of Colab links, one per lesson."""
    return " · ".join(f"[{lesson}]({colab_url(lesson)})" for lesson in lessons)


if __name__ == "__main__":
    from .runner import discover

    print(readme_links([p.stem for p in discover()]))
    sys.exit(0)
