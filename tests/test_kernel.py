"""The runner's kernels talk over IPC sockets: each kernel's socket paths are its own (two runs at once, started
from one folder, once shared kernel-ipc-1..5 and answered each other's messages with 'Invalid Signature')."""
import os

import nbformat
import pytest

from course_lib.harness.kernel import papermill_options

pytestmark = pytest.mark.skipif(os.name != "posix", reason="IPC transport is POSIX-only")


def test_each_kernel_gets_its_own_absolute_socket_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    manager = papermill_options()["kernel_manager_class"]
    a, b = manager(kernel_name="python3"), manager(kernel_name="python3")
    assert a.transport == b.transport == "ipc"
    assert os.path.isabs(a.ip) and os.path.isabs(b.ip) and a.ip != b.ip
    assert not list(tmp_path.iterdir())          # nothing written into the folder the kernel starts from


def test_a_notebook_runs_on_an_ipc_kernel_and_leaves_no_socket_files(tmp_path):
    import papermill as pm

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    pm.execute_notebook(str(src), str(out), kernel_name="python3", cwd=str(tmp_path), progress_bar=False,
                        **papermill_options())
    executed = nbformat.read(out, as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == "42"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.ipynb", "out.ipynb"]
