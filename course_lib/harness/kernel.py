"""How the runner starts a lesson's kernel: quietly, over the machine's own sockets.

ipykernel 7 warns on every start that its TCP sockets are unencrypted ("Kernel is running over TCP without
encryption ...") into the terminal of `make course`. The kernel and papermill run on the same machine, so POSIX
systems use IPC sockets instead: files in Jupyter's runtime folder (mode 0700), which nobody else can open and
the warning does not concern. Windows has no IPC transport and keeps TCP (and the warning).
"""
from __future__ import annotations

import os
import uuid


def papermill_options() -> dict:
    """Extra keyword arguments for papermill.execute_notebook: an IPC kernel manager on POSIX systems."""
    if os.name != "posix":
        return {}
    from jupyter_client import AsyncKernelManager
    from traitlets import default

    class IPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _transport_default(self) -> str:
            return "ipc"

        @default("ip")
        def _ip_default(self) -> str:
            # jupyter_client's default is the *relative* path "kernel-ipc" when no connection file is named yet:
            # every kernel started from one folder then shares kernel-ipc-1..5 there, and two runs at once talk
            # to each other's kernels ("Invalid Signature"). A unique path in the private runtime folder instead.
            from jupyter_core.paths import jupyter_runtime_dir

            folder = jupyter_runtime_dir()
            os.makedirs(folder, mode=0o700, exist_ok=True)
            return os.path.join(folder, f"course-{uuid.uuid4().hex[:12]}-ipc")

    return {"kernel_manager_class": IPCKernelManager}
