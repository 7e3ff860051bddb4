"""Where things live. Every path the course uses is resolved here, never relative to the cwd.

papermill runs a notebook's kernel in the *caller's* directory, JupyterLab in the notebook's folder and
pytest in the repository root; resolving paths from this file makes all three see the same files.
"""
from __future__ import annotations

import os
from pathlib import Path


def _repo_root() -> Path:
    override = os.environ.get("COURSE_ROOT")
    if override:
        return Path(override).expanduser().resolve()
    # course_lib is installed editable, so the repository is the folder above this package.
    return Path(__file__).resolve().parents[2]


ROOT = _repo_root()
NOTEBOOKS = ROOT / "notebooks"


def data_dir() -> Path:
    """Cache for downloaded datasets (`COURSE_DATA_DIR`, default `<repo>/datasets`)."""
    return Path(os.environ.get("COURSE_DATA_DIR") or ROOT / "datasets").expanduser().resolve()


def build_dir() -> Path:
    """Everything generated: executed notebooks, results, reports, checkpoints (`COURSE_BUILD_DIR`)."""
    return Path(os.environ.get("COURSE_BUILD_DIR") or ROOT / "build").expanduser().resolve()


def results_dir() -> Path:
    return build_dir() / "results"


def checkpoints_dir() -> Path:
    return build_dir() / "checkpoints"


def copy_if_changed(src: Path, dst: Path) -> Path:
    """Copy `src` to `dst` unless `dst` already holds the same bytes (web assets copied once per build)."""
    import filecmp
    import shutil

    dst = Path(dst)
    if not (dst.exists() and filecmp.cmp(src, dst, shallow=False)):
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    return dst
