"""Where things live. Every path the course uses is resolved here, never relative to the cwd.

papermill runs a notebook's kernel in the *caller's* directory, JupyterLab in the notebook's folder and
pytest in the repository root; resolving paths from this file makes all three see the same files.

Outside the repository (course_lib installed from a wheel: Colab, a lesson copied alone into a folder) there is
no <repo>/datasets or <repo>/build, so data and build fall back to the user's folders, as XDG (Linux), macOS and
Windows name them: $XDG_DATA_HOME/course_lib/datasets (~/.local/share/...) and $XDG_CACHE_HOME/course_lib/build
(~/.cache/...). COURSE_DATA_DIR and COURSE_BUILD_DIR still win everywhere.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

APP = "course_lib"


def _repo_root() -> Path:
    override = os.environ.get("COURSE_ROOT")
    if override:
        return Path(override).expanduser().resolve()
    # installed editable, the repository is the folder above this package (installed from a wheel, site-packages)
    return Path(__file__).resolve().parents[2]


def _is_repository(root: Path) -> bool:
    return (root / "pyproject.toml").is_file() and (root / "course_lib").is_dir()


ROOT = _repo_root()
IN_REPOSITORY = bool(os.environ.get("COURSE_ROOT")) or _is_repository(ROOT)
NOTEBOOKS = ROOT / "notebooks"


def user_dir(kind: str) -> Path:
    """The user's folder for `kind` ("data" or "cache") of this package, where the platform keeps such things."""
    if kind not in ("data", "cache"):
        raise ValueError(f"kind={kind!r}: expected 'data' or 'cache'")
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local") / APP
        return base / ("Cache" if kind == "cache" else "Data")
    if sys.platform == "darwin":
        return home / "Library" / ("Caches" if kind == "cache" else "Application Support") / APP
    env, default = ("XDG_CACHE_HOME", home / ".cache") if kind == "cache" else ("XDG_DATA_HOME",
                                                                               home / ".local" / "share")
    xdg = os.environ.get(env)
    return (Path(xdg) if xdg and Path(xdg).is_absolute() else default) / APP     # XDG: relative values are ignored


def data_dir() -> Path:
    """Cache for downloaded datasets (`COURSE_DATA_DIR`; default `<repo>/datasets`, outside a repository the
    user's data folder)."""
    default = ROOT / "datasets" if IN_REPOSITORY else user_dir("data") / "datasets"
    return Path(os.environ.get("COURSE_DATA_DIR") or default).expanduser().resolve()


def build_dir() -> Path:
    """Everything generated: executed notebooks, results, reports, checkpoints (`COURSE_BUILD_DIR`; default
    `<repo>/build`, outside a repository the user's cache folder)."""
    default = ROOT / "build" if IN_REPOSITORY else user_dir("cache") / "build"
    return Path(os.environ.get("COURSE_BUILD_DIR") or default).expanduser().resolve()


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
