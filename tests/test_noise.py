"""No noise: the checks tests/test_notebooks.py applies to every executed smoke lesson, each shown to catch what
it is for, and the fixes at their sources (progress bars, figures, claims, sacrebleu, entry points)."""
import re
import subprocess
import sys

import nbformat
import pytest

from course_lib.core import paths
from course_lib.harness import noise


def _nb(*outputs_per_cell, widgets=None):
    nb = nbformat.v4.new_notebook()
    for outputs in outputs_per_cell:
        cell = nbformat.v4.new_code_cell("x")
        cell.outputs = [nbformat.from_dict(o) for o in outputs]
        nb.cells.append(cell)
    if widgets is not None:
        nb.metadata["widgets"] = {noise.WIDGET_STATE: {"state": {m: {} for m in widgets}}}
    return nb


def _stream(text, name="stdout"):
    return {"output_type": "stream", "name": name, "text": text}


def _result(plain, kind="execute_result", **data):
    out = {"output_type": kind, "data": {"text/plain": plain, **data}, "metadata": {}}
    if kind == "execute_result":
        out["execution_count"] = 1
    return out


def test_a_clean_notebook_has_no_findings():
    nb = _nb([_stream("[claim] works: PASS\n")], [_result("<Figure>", "display_data", **{"image/png": "AAAA"})],
             [_result("3")])
    assert noise.notebook_noise(nb) == []


def test_each_kind_of_noise_is_found_with_its_cell():
    widget = {noise.WIDGET_VIEW: {"model_id": "abc", "version_major": 2, "version_minor": 0}}
    nb = _nb([_stream("[claim] x: PASS\n"), _result("True")],
             [_stream("It looks like you forgot to detokenize your test data\n", "stderr")],
             [_result("train:   0%|", "display_data", **widget)],
             [_result("<Figure>", "display_data", **{"image/png": "AAAA"}),
              _result("<Figure size 700x360 with 1 Axes>", **{"image/png": "AAAA"})])
    found = noise.notebook_noise(nb)
    assert found[0] == "code cell 1: a bare True echoed (the cell's last expression)"
    assert found[1].startswith("code cell 2: stderr 'It looks like you forgot to detokenize")
    assert found[2].startswith("code cell 3: a widget without saved state")
    assert found[3:] == ["code cell 4: a Figure echoed as the cell's value: drawn twice",
                         "code cell 4: the same figure drawn twice"]
    assert len(noise.notebook_noise(_nb([_result("x", "display_data", **widget)], widgets=["abc"]))) == 0


def test_terminal_noise_and_its_allow_list():
    text = ("[heavy] slot 0: pytest\n\n[IPKernelApp] WARNING | Kernel is running over TCP without encryption.\n"
            "<frozen runpy>:128: RuntimeWarning: 'course_lib.core.data' found in sys.modules\n")
    found = noise.terminal_noise(text)
    assert len(found) == (2 if sys.platform != "win32" else 1) and "RuntimeWarning" in found[-1]
    for pattern, reason in noise.ALLOWED_STDERR + noise.ALLOWED_TERMINAL:
        assert reason.strip(), f"{pattern.pattern}: every allowed line says why"


def test_progress_bars_are_text_on_stdout_and_off_for_the_runner(monkeypatch, capsys):
    from course_lib.core import progress

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    assert progress.progress_enabled()
    bar = progress.progress(range(3), desc="train")
    assert type(bar).__module__ == "tqdm.std"                     # never tqdm.notebook's widget
    list(bar)
    out = capsys.readouterr()
    assert "train" in out.out and out.err == ""
    monkeypatch.setenv(progress.PROGRESS_ENV, "off")
    assert not progress.progress_enabled() and progress.progress(range(3)).disable


def test_the_runner_starts_quiet_kernels():
    import asyncio

    from course_lib.harness import kernel

    km = kernel.papermill_options()["kernel_manager_class"]()
    assert km.transport == ("tcp" if sys.platform == "win32" else "ipc")
    with pytest.raises(RuntimeError, match="No kernel is running"):      # an interrupt still reaches the kernel
        asyncio.run(km._async_interrupt_kernel())
    km.shutting_down = True                                              # but not the one before a shutdown
    assert asyncio.run(km._async_interrupt_kernel()) is None


def test_a_plot_that_is_shown_returns_nothing_to_echo():
    import matplotlib.pyplot as plt

    from course_lib.core import plots

    assert plots.lines({"a": ([1, 2], [3, 4])}, "x", "y") is None
    fig = plots.lines({"a": ([1, 2], [3, 4])}, "x", "y", show=False)
    assert fig is not None
    plt.close("all")


def test_a_claim_check_returns_nothing_to_echo(tmp_path):
    from course_lib.harness.claims import Claims

    assert Claims("01_x", "smoke", results_dir=tmp_path).check("c", True, required_at="always") is None


def test_sacrebleu_is_told_the_text_is_tokenized_on_purpose(capfd):
    from course_lib.core.metrics import corpus_bleu

    words = [["le", "chat", "dort", "."]] * 120                 # 100+ lines ending in " .": sacrebleu's trigger
    assert corpus_bleu(words, words) == pytest.approx(100.0)
    assert "detokenize" not in capfd.readouterr().err


def _entry_points():
    make = (paths.ROOT / "Makefile").read_text(encoding="utf-8")
    return sorted(set(re.findall(r"-m (course_lib[\w.]*)", make)))


def test_the_makefiles_entry_points_start_without_a_runpy_warning():
    """`python -m course_lib.core.data` warned: runpy imports the package first, and course_lib.core's __init__
    had imported .data, so the module ran after being imported. The same check as runpy's, for every `-m` entry
    point of the Makefile, in one interpreter (torch is imported once)."""
    modules = _entry_points()
    assert "course_lib.data" in modules and "course_lib.core.data" not in modules
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    for m in [m for m in sys.modules if m == 'course_lib' or m.startswith('course_lib.')]:\n"
        "        del sys.modules[m]\n"
        "    importlib.import_module(name.rpartition('.')[0])\n"
        "    if name in sys.modules:\n"
        "        print(name)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=paths.ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == [], f"imported by their package before running: {proc.stdout.split()}"
