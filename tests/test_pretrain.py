"""course_lib.harness.pretrain: DDP under torchrun (gloo, 2 CPU processes), single process, and resume."""
import os
import shutil
import subprocess
import sys

import pytest
import torch

from course_lib import gpt

from course_lib.harness import pretrain

TINY = ["--preset", "smoke", "--steps", "6", "--eval-batches", "1"]


def weights(path):
    return gpt.load(path).model.state_dict()


def assert_same_weights(a, b, atol):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0, msg=k)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """Two processes, batch 2 each."""
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if torchrun is None:
        pytest.skip("torchrun is not installed next to this Python")
    out = tmp_path_factory.mktemp("ddp") / "gpt.safetensors"
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "course_lib.harness.pretrain",
                           *TINY, "--batch", "2", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return out, proc.stdout


def test_two_process_run_finishes_in_sync_and_only_rank0_writes(ddp_run):
    out, stdout = ddp_run
    meta = gpt.load(out).meta
    assert meta["world_size"] == 2 and meta["step"] == 6
    assert meta["replica_max_diff"] == 0.0            # both ranks hold identical weights
    assert stdout.count("wrote ") == 1                 # one process reported writing
    assert sorted(p.name for p in out.parent.iterdir()) == ["gpt.safetensors", "gpt.state.safetensors"]


def test_two_processes_train_like_one_process_with_the_whole_batch(ddp_run, tmp_path):
    out, _ = ddp_run
    single = tmp_path / "single.safetensors"
    summary = pretrain.main([*TINY, "--batch", "4", "--out", str(single)])
    assert summary["world_size"] == 1 and summary["tokens_per_step"] == gpt.load(out).meta["tokens_per_step"]
    assert_same_weights(weights(out), weights(single), atol=1e-5)


def test_resume_lands_on_the_uninterrupted_weights(tmp_path):
    straight, resumed = tmp_path / "straight.safetensors", tmp_path / "resumed.safetensors"
    pretrain.main([*TINY, "--batch", "3", "--out", str(straight)])
    half = pretrain.main([*TINY, "--batch", "3", "--out", str(resumed), "--until", "3"])
    assert half["step"] == 3
    full = pretrain.main([*TINY, "--batch", "3", "--out", str(resumed), "--resume"])
    assert full["step"] == 6
    assert_same_weights(weights(straight), weights(resumed), atol=1e-6)


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(SystemExit):
        pretrain.main([*TINY, "--batch", "0", "--out", str(tmp_path / "x.safetensors")])
    with pytest.raises(FileNotFoundError):
        pretrain.main([*TINY, "--resume", "--out", str(tmp_path / "none.safetensors")])
