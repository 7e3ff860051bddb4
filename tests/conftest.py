import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")  # plain pytest only; notebooks keep the inline backend
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture
def tmp_build(tmp_path, monkeypatch):
    """A private build/ so tests never touch the real one."""
    monkeypatch.setenv("COURSE_BUILD_DIR", str(tmp_path / "build"))
    return tmp_path / "build"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Unit tests use tiny tensors: extra threads only add synchronisation (costly on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def two_core_load(monkeypatch):
    """A 2-core machine whose other jobs keep `load["busy"]` cores busy (set it in the test); thread count restored."""
    from course_lib.core import runtime
    load = {"busy": 0.0}
    before = torch.get_num_threads()
    monkeypatch.delenv("COURSE_THREADS", raising=False)
    monkeypatch.setattr(runtime, "_auto_threads", None)
    monkeypatch.setattr(runtime, "usable_cores", lambda: 2)
    monkeypatch.setattr(runtime, "cores_busy_elsewhere", lambda window=0.2: load["busy"])
    yield load
    torch.set_num_threads(before)


def _sigint_by_default():
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def ctrl_c_as_at_a_terminal():
    """A `preexec_fn` for a child a test sends Ctrl-C to: SIGINT handled as by default. A test suite started in the
    background by a shell (`cmd &`) inherits SIGINT *ignored*, and Python then never raises KeyboardInterrupt: the
    Ctrl-C under test would do nothing and the test would hang for reasons of its own launch."""
    return _sigint_by_default


@pytest.fixture(scope="session")
def course(tmp_path_factory):
    """Every lesson released and graded once per session (tests/graded_course.py): the classroom tests and the
    lessons' smoke checks read the same gradings."""
    import importlib.util

    from graded_course import Course

    if importlib.util.find_spec("nbgrader") is None:
        pytest.fail("the classroom tests need nbgrader, from the instructor extra: pip install -e '.[instructor]'")
    return Course(tmp_path_factory.mktemp("classroom"))
