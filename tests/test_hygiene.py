"""Hygiene, in seconds: ruff and codespell on the sources, and the pins that give a fresh machine the tested versions.

ruff and codespell are configured in pyproject.toml ([tool.ruff], [tool.codespell]) and installed by the dev extra.
"""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from course_lib.core import paths

ROOT = paths.ROOT
BIN = Path(sys.executable).parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _tool(name: str) -> str:
    exe = BIN / name
    if not exe.exists():
        pytest.fail(f"{name} is not installed in {BIN}: it is in the dev extra, run `make setup`")
    return str(exe)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_ruff_finds_nothing_in_course_lib_and_the_notebook_sources():
    proc = _run(_tool("ruff"), "check", "--no-cache", "--output-format", "concise", "course_lib", "notebooks")
    assert proc.returncode == 0, f"ruff findings (fix them, or `ruff check --fix`):\n{proc.stdout}{proc.stderr}"


def test_ruff_configuration_catches_what_it_must(tmp_path):
    """The configured rule set still has pyflakes and the syntax errors: an unused import and an undefined
    name are found, with the project's own settings."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\n\ndef f():\n    return undefined_name\n")
    proc = _run(_tool("ruff"), "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"),
                "--output-format", "concise", str(bad))
    assert proc.returncode == 1 and "F401" in proc.stdout and "F821" in proc.stdout, proc.stdout
    lint = PYPROJECT["tool"]["ruff"]
    assert lint["line-length"] == 120 and {"F", "E9"} <= set(lint["lint"]["select"])


def test_codespell_finds_nothing_in_sources_readme_and_data_cards():
    targets = ["course_lib", "tests", "Makefile", "pyproject.toml", "README.md", "docs", "datasets/README.md",
               *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))]
    proc = _run(_tool("codespell"), *targets)
    assert proc.returncode == 0, f"codespell findings (a real word? add it to [tool.codespell]):\n{proc.stdout}"


def test_codespell_configuration_catches_a_typo(tmp_path):
    bad = tmp_path / "bad.md"
    typo = "rec" + "ieved"                          # spelled out here, this file itself would be a finding
    bad.write_text(f"The {typo} tokens.\n")
    proc = _run(_tool("codespell"), "--toml", str(ROOT / "pyproject.toml"), str(bad))
    assert proc.returncode != 0 and typo in proc.stdout, proc.stdout + proc.stderr


def _pins(text: str) -> dict[str, str]:
    return {re.sub(r"[-_.]+", "-", m.group(1)).lower(): m.group(2)
            for m in re.finditer(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", text, re.M)}


def test_constraints_pin_the_tested_torch_and_make_setup_uses_them():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    pins = _pins((ROOT / "constraints.txt").read_text(encoding="utf-8"))
    torch_pin = re.search(r"^TORCH := torch==([\d.]+)$", makefile, re.M).group(1)
    assert pins["torch"] == torch_pin                      # no local tag: the CPU and the CUDA wheels both match
    for name in ("transformers", "tokenizers", "numpy", "papermill", "ruff", "codespell", "pytest"):
        assert name in pins, f"constraints.txt does not pin {name}: regenerate it (make constraints)"
    setup = re.search(r"^\$\(STAMP\):.*?(?=^\S)", makefile, re.M | re.S).group(0)
    assert "-c $(CONSTRAINTS)" in setup and "constraints.txt" in makefile
    latest = re.search(r"^test-latest:.*?(?=^\S)", makefile, re.M | re.S).group(0)
    assert "$(LATEST)/bin/pytest" in latest and "$(CONSTRAINTS)" not in latest   # the newest allowed releases


def test_pinned_versions_are_inside_pyprojects_ranges():
    """constraints.txt must satisfy pyproject.toml, or `make setup` cannot resolve."""
    from packaging.requirements import Requirement

    pins = _pins((ROOT / "constraints.txt").read_text(encoding="utf-8"))
    reqs = PYPROJECT["project"]["dependencies"] + [r for extra in PYPROJECT["project"]["optional-dependencies"].values()
                                                   for r in extra]
    for text in reqs:
        req = Requirement(text)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        if name in pins:
            assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} is outside {text}"


def test_transformers_has_an_upper_bound_and_the_license_is_spdx():
    dev = PYPROJECT["project"]["optional-dependencies"]["dev"]
    transformers = next(d for d in dev if d.startswith("transformers"))
    assert "<" in transformers, "an upper bound keeps a new major release of transformers from breaking make setup"
    assert PYPROJECT["project"]["license"] == "MIT"        # PEP 639 string form, no deprecation warning
