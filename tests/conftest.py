import os

import matplotlib
import pytest

matplotlib.use("Agg")  # plain pytest only; notebooks keep the inline backend
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture
def tmp_build(tmp_path, monkeypatch):
    """A private build/ so tests never touch the real one."""
    monkeypatch.setenv("COURSE_BUILD_DIR", str(tmp_path / "build"))
    return tmp_path / "build"
