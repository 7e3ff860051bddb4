"""torch without surprises: constraints.txt pins no CUDA runtime, and `make setup TORCH_BUILD=cpu`'s own pip command
resolves (offline, `pip install --dry-run --report`) to a plan without nvidia-*, cuda-* or triton packages."""
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CUDA_RUNTIME = re.compile(r"^(nvidia-|cuda-|triton$)", re.IGNORECASE)


def cuda_packages(report: dict) -> list[str]:
    """The CUDA runtime packages in a `pip install --report` plan."""
    return sorted(i["metadata"]["name"] for i in report["install"] if CUDA_RUNTIME.match(i["metadata"]["name"]))


def test_constraints_pin_no_cuda_runtime():
    pins = [line.split("==")[0] for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line]
    assert "torch" in pins and not [p for p in pins if CUDA_RUNTIME.match(p)]


def test_the_check_sees_a_cuda_plan():
    """The control: a plan like PyPI's default Linux x86_64 torch is caught."""
    plan = {"install": [{"metadata": {"name": n}} for n in ("torch", "nvidia-cublas", "triton", "filelock")]}
    assert cuda_packages(plan) == ["nvidia-cublas", "triton"]


def _setup_pip_command(cpu_index: str) -> str:
    """The torch line of `make setup TORCH_BUILD=cpu`, as make would run it (make -n, in a copy without a venv)."""
    out = subprocess.run(["make", "-n", "-B", "setup", "TORCH_BUILD=cpu", f"TORCH_CPU_INDEX={cpu_index}",
                          "PYTHON=" + sys.executable], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if 'install --quiet "torch==' in line)
    assert 'PIP_EXTRA_INDEX_URL="' + cpu_index in line and '"torch==2.13.0+cpu"' in line
    return line


def _local_wheel() -> Path | None:
    """This machine's CPU torch wheel, from pip's find-links (its offline wheels)."""
    config = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    folders = os.environ.get("PIP_FIND_LINKS", "").split() + re.findall(r"find-links='([^']+)'", config)
    for folder in folders:
        for wheel in Path(folder.removeprefix("file://")).glob("torch-2.13.0+cpu-*.whl"):
            return wheel
    return None


def test_torch_build_cpu_installs_no_cuda_runtime(tmp_path):
    wheel = _local_wheel()
    if wheel is None:
        pytest.skip("no torch 2.13.0+cpu wheel on pip's find-links: this test resolves offline")
    # A stand-in for PyTorch's CPU index (TORCH_CPU_INDEX points make setup at a mirror the same way)
    (tmp_path / "simple" / "torch").mkdir(parents=True)
    (tmp_path / "simple" / "torch" / "index.html").write_text(f'<a href="{wheel.as_uri()}">{wheel.name}</a>')
    line = _setup_pip_command((tmp_path / "simple").as_uri())
    report = tmp_path / "plan.json"
    line = line.replace(".venv/bin/pip install --quiet",
                        f"{shlex.quote(sys.executable)} -m pip install --dry-run --ignore-installed "
                        f"--report {report} --quiet", 1)
    proc = subprocess.run(["bash", "-c", line], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    plan = json.loads(report.read_text())
    names = {i["metadata"]["name"].lower(): i for i in plan["install"]}
    assert names["torch"]["metadata"]["version"] == "2.13.0+cpu"
    assert cuda_packages(plan) == [], cuda_packages(plan)
