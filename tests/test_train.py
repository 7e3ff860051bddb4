"""The shared training loop: schedules, clipping, and checkpoint/resume that lands on the same numbers."""
import json

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open

from course_lib.core import train as train_module
from course_lib.core.checkpoints import load_weights, save_weights
from course_lib.core.train import Trainer, TrainConfig, lr_at


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(0.2), nn.Linear(16, 3))

    def forward(self, x):
        return self.net(x)


def get_batch(step):
    g = torch.Generator().manual_seed(step)
    x = torch.randn(8, 4, generator=g)
    return x, (x.sum(-1) > 0).long() + (x[:, 0] > 1).long()


def loss_fn(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)


CFG = TrainConfig(steps=40, lr=1e-2, warmup=5, eval_every=10, log_every=1, weight_decay=0.1)


def make_trainer(path=None):
    torch.manual_seed(0)
    return Trainer(Tiny(), loss_fn, get_batch, CFG, progress=False, checkpoint_path=path,
                   eval_fn=lambda m: {"val_loss": loss_fn(m, get_batch(10_000)).item()})


def test_interrupted_run_resumes_to_the_same_loss(tmp_path):
    straight = make_trainer()
    straight.fit()

    first = make_trainer(tmp_path / "ckpt.safetensors")
    first.fit(until=17)                      # "interrupted" mid-run, between evaluations
    assert first.step == 17
    torch.manual_seed(123)                   # a fresh process would have a different RNG state
    resumed = make_trainer().load(tmp_path / "ckpt.safetensors")
    assert resumed.step == 17
    resumed.fit()

    assert resumed.history.losses == pytest.approx(straight.history.losses, abs=0, rel=0)
    assert resumed.history.eval_series("val_loss") == straight.history.eval_series("val_loss")
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


def test_loss_falls_and_history_is_recorded():
    t = make_trainer()
    h = t.fit()
    assert h.losses[-1] < h.losses[0]
    assert [e["step"] for e in h.evals] == [10, 20, 30, 40]
    assert h.seconds > 0


def test_checkpoint_is_safetensors_with_json_metadata(tmp_path):
    t = make_trainer(tmp_path / "c.safetensors")
    t.fit(until=3)
    with safe_open(str(tmp_path / "c.safetensors"), framework="pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert meta["step"] == "3" and json.loads(meta["config"])["lr"] == CFG.lr
    assert "rng.torch" in keys and any(k.startswith("optim.") for k in keys)
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically


def test_lr_schedule_warmup_then_cosine_to_min():
    cfg = TrainConfig(steps=100, lr=1.0, warmup=10, schedule="cosine")
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(100, cfg) == pytest.approx(0.1)
    lrs = [lr_at(s, cfg) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert lr_at(50, TrainConfig(steps=100, lr=0.5, schedule="constant")) == 0.5


def test_bad_config_and_nan_loss_are_clear_errors():
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="exponential")
    t = Trainer(Tiny(), lambda m, b: torch.tensor(float("nan"), requires_grad=True), get_batch,
                TrainConfig(steps=2), progress=False)
    with pytest.raises(FloatingPointError, match="loss became nan"):
        t.fit()


def test_grad_clip_bounds_the_update():
    model = nn.Linear(2, 1, bias=False)
    big = lambda m, b: (m(torch.full((1, 2), 1e6)) ** 2).sum()
    t = Trainer(model, big, lambda s: None, TrainConfig(steps=1, lr=1.0, grad_clip=1e-3), progress=False)
    before = model.weight.detach().clone()
    t.fit()
    # Adam normalises the step, so check the clipped gradient directly
    assert model.weight.grad is None or model.weight.grad.norm() <= 1e-3 + 1e-9
    assert not torch.equal(before, model.weight)


def test_save_and_load_weights_round_trip(tmp_path):
    a, b = Tiny(), Tiny()
    save_weights(a, tmp_path / "w.safetensors", config={"hidden": 16})
    meta = load_weights(b, tmp_path / "w.safetensors")
    assert meta == {"config": {"hidden": 16}}
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert (tmp_path / "w.safetensors").stat().st_mode & 0o777 == 0o644     # readable by the others sharing a build
    assert [f.name for f in tmp_path.iterdir()] == ["w.safetensors"]          # no temporary left beside it


class FakeClock:
    """Stands in for `time` inside course_lib.core.train: the clock moves only when a step says so."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


def clocked_loss(clock, seconds_per_step):
    def loss(model, batch):
        clock.now += seconds_per_step
        return loss_fn(model, batch)
    return loss


def test_a_time_budget_stops_the_run_decays_on_the_clock_and_evaluates_at_the_end(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(train_module, "time", clock)
    cfg = TrainConfig(steps=1000, lr=1e-2, warmup=2, max_seconds=0.3, log_every=1)
    t = Trainer(Tiny(), clocked_loss(clock, 0.01), get_batch, cfg, progress=False,    # 10 ms a step: 30 fit
                eval_fn=lambda m: {"val_loss": loss_fn(m, get_batch(10_000)).item()})
    history = t.fit()
    assert t.step == 30 and history.seconds == pytest.approx(0.3)
    assert history.evals and history.evals[-1]["step"] == t.step        # the final evaluation happened
    assert history.lrs[-1] < 0.5 * cfg.lr                                # most of the decay happened
    assert lr_at(10, cfg, elapsed=0.3) == pytest.approx(cfg.lr / 10)     # time up: the floor
    assert lr_at(10, cfg, elapsed=0.0) == pytest.approx(cfg.lr)
    assert t.elapsed() == history.seconds and t.out_of_time()
    t.fit()                                                               # the budget is spent: nothing more
    assert t.step == len(history.losses) and t.out_of_time()


def test_a_time_budget_still_trains_min_steps_on_a_very_slow_machine(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(train_module, "time", clock)
    cfg = TrainConfig(steps=1000, lr=1e-2, warmup=2, max_seconds=3.0, min_steps=20, log_every=1)
    t = Trainer(Tiny(), clocked_loss(clock, 100.0), get_batch, cfg, progress=False)   # 100 s a step
    history = t.fit()
    assert t.step == 20 and history.losses[-1] < history.losses[0]
    assert history.lrs[10] > history.lrs[19] > cfg.lr / 10 - 1e-12      # decays over the guaranteed steps
    with pytest.raises(ValueError, match="min_steps"):
        TrainConfig(steps=10, min_steps=11)
    with pytest.raises(ValueError, match="max_seconds"):
        TrainConfig(max_seconds=0)


def test_keep_best_goes_back_to_the_best_evaluation():
    # Training pulls w towards 5; the "validation" metric wants w = 2, so it improves, then worsens (overfitting).
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    pull = lambda m, batch: ((m.weight - 5.0) ** 2).sum()
    val = lambda m: {"val_loss": ((m.weight - 2.0) ** 2).item()}
    cfg = TrainConfig(steps=60, lr=0.1, eval_every=5, grad_clip=None, keep_best="val_loss")
    weights_at = {}
    trainer = Trainer(model, pull, lambda step: None, cfg, progress=False,
                      eval_fn=lambda m: (weights_at.__setitem__(trainer.step, m.weight.item()), val(m))[1])
    history = trainer.fit()
    best = min(history.evals, key=lambda e: e["val_loss"])
    assert 0 < best["step"] < 60                                   # the best was mid-run, not the end
    assert history.evals[-1]["val_loss"] > best["val_loss"]        # ... and the run got worse after it
    assert model.weight.item() == weights_at[best["step"]]        # the weights are the best step's, exactly
    assert history.restored == best


def test_keep_best_needs_the_metric():
    trainer = Trainer(nn.Linear(1, 1), lambda m, b: m.weight.sum() ** 2, lambda step: None,
                      TrainConfig(steps=3, eval_every=1, keep_best="val_loss"), progress=False,
                      eval_fn=lambda m: {"accuracy": 1.0})
    with pytest.raises(KeyError, match="keep_best='val_loss'.*accuracy"):
        trainer.fit()


def test_cpu_amp_runs_the_step_in_bf16_where_the_cpu_has_it(monkeypatch):
    from course_lib.core import runtime

    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    seen = []

    def recording_loss(model, batch):
        out = model(batch[0])
        seen.append(out.dtype)
        return F.cross_entropy(out.float(), batch[1])

    for cpu_amp in (False, True):
        torch.manual_seed(0)
        Trainer(Tiny(), recording_loss, get_batch, TrainConfig(steps=2, cpu_amp=cpu_amp), progress=False).fit()
    assert seen == [torch.float32] * 2 + [torch.bfloat16] * 2


def test_callbacks_fire_in_order_with_their_arguments():
    seen = []
    t = Trainer(Tiny(), loss_fn, get_batch, TrainConfig(steps=4, eval_every=2), progress=False,
                eval_fn=lambda m: {"val_loss": 1.0})
    t.add_callback("on_step_start", lambda tr: seen.append(("start", tr.step)))
    t.add_callback("on_step_end", lambda tr, loss: seen.append(("end", tr.step, isinstance(loss, float))))
    t.add_callback("on_eval", lambda tr, metrics: seen.append(("eval", tr.step, metrics["val_loss"])))
    t.add_callback("on_fit_end", lambda tr: seen.append(("fit_end", tr.step)))
    t.fit()
    assert seen == [("start", 0), ("end", 1, True), ("start", 1), ("end", 2, True), ("eval", 2, 1.0),
                    ("start", 2), ("end", 3, True), ("start", 3), ("end", 4, True), ("eval", 4, 1.0),
                    ("fit_end", 4)]
    with pytest.raises(ValueError, match="event='on_batch_end'.*on_step_start"):
        t.add_callback("on_batch_end", print)
    with pytest.raises(TypeError, match="callable"):
        t.add_callback("on_eval", 3)


def test_the_live_plot_is_a_callback_that_draws_nothing_outside_a_notebook():
    from course_lib.core.plots import LiveLossPlot
    plot = LiveLossPlot("tiny")
    assert plot.handle is None
    t = Trainer(Tiny(), loss_fn, get_batch, TrainConfig(steps=2, eval_every=1), progress=False,
                eval_fn=lambda m: {"val_loss": 1.0}).add_callback("on_eval", plot)
    assert len(t.fit().evals) == 2


def test_resuming_under_another_train_config_is_refused(tmp_path):
    path = tmp_path / "state.safetensors"
    make_trainer(path).fit(until=10)
    other = Trainer(Tiny(), loss_fn, get_batch, TrainConfig(steps=80, lr=1e-2), progress=False)
    with pytest.raises(ValueError, match="another TrainConfig.*'steps'"):
        other.load(path)


def test_fit_leaves_the_cores_a_job_started_beside_it_took(two_core_load):
    from course_lib.core import runtime
    runtime.setup("lesson", device="cpu")
    assert torch.get_num_threads() == 2
    two_core_load["busy"] = 2.0
    make_trainer().fit(until=5)
    assert torch.get_num_threads() == 1
