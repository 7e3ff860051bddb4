"""How the runner starts a lesson's kernel: quietly.

Two things a kernel printed into the terminal of `make course` (and into pytest's), neither about the lesson:
  - ipykernel 7 warns on every start that its TCP sockets are unencrypted ("Kernel is running over TCP without
    encryption ..."). The kernel and papermill run on the same machine, so POSIX systems use IPC sockets instead:
    files in Jupyter's runtime folder (mode 0700), which nobody else can open and the warning does not concern.
    Windows has no IPC transport and keeps TCP (and the warning).
  - jupyter_client interrupts (SIGINT) a kernel before asking it to shut down; a kernel that is handling a
    message just then logs "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel." (seen in about one lesson
    run in ten). After a notebook has run there is nothing to interrupt, so the shutdown skips it; a kernel that
    does not answer the shutdown request is still killed after jupyter_client's wait.
"""
from __future__ import annotations

import os
import uuid


def papermill_options() -> dict:
    """Extra keyword arguments for papermill.execute_notebook: the quiet kernel manager."""
    from jupyter_client import AsyncKernelManager
    from traitlets import default

    class QuietKernelManager(AsyncKernelManager):
        @default("transport")
        def _transport_default(self) -> str:
            return "ipc" if os.name == "posix" else "tcp"

        @default("ip")
        def _ip_default(self) -> str:
            if self.transport != "ipc":
                return super()._ip_default()
            # jupyter_client's default is the *relative* path "kernel-ipc" when no connection file is named yet:
            # every kernel started from one folder then shares kernel-ipc-1..5 there, and two runs at once talk
            # to each other's kernels ("Invalid Signature"). A unique path in the private runtime folder instead.
            from jupyter_core.paths import jupyter_runtime_dir

            folder = jupyter_runtime_dir()
            os.makedirs(folder, mode=0o700, exist_ok=True)
            return os.path.join(folder, f"course-{uuid.uuid4().hex[:12]}-ipc")

        async def _async_interrupt_kernel(self) -> None:
            if self.shutting_down:          # jupyter_client's shutdown interrupts first: not needed after a run
                return
            await super()._async_interrupt_kernel()

    return {"kernel_manager_class": QuietKernelManager}
