"""One training loop for every lesson.

    trainer = Trainer(model, loss_fn, get_batch, TrainConfig(steps=2000, lr=1e-3), device=device,
                      eval_fn=lambda m: {"val_loss": estimate_loss(m, ...)})
    history = trainer.fit()

* `get_batch(step)` returns the batch for that step. Making the data a function of the step (each step seeds
  its own generator) is what lets an interrupted run resume and land on exactly the same numbers.
* `loss_fn(model, batch)` returns a scalar loss, or `(loss, {"acc": ...})`.
* Progress bar (honours `TQDM_DISABLE`), gradient clipping, warmup + cosine/linear decay, periodic evaluation,
  and safetensors checkpoints (no pickle) that hold the model, the optimizer, the RNG state and the history.
* Everything else hooks in through callbacks (minGPT's pattern), so the loop stays small:

      trainer.add_callback("on_eval", LiveLossPlot("char-RNN"))       # course_lib.core.plots: a live plot
      trainer.add_callback("on_step_start", rollouts.collect_if_due)  # PPO: a fresh rollout per iteration

  Events: "on_step_start" (trainer), "on_step_end" (trainer, loss), "on_eval" (trainer, metrics),
  "on_fit_end" (trainer).
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from .checkpoints import load_tensors, save_tensors
from .checks import integer
from .presets import Presets
from .progress import progress_enabled, tqdm
from .runtime import autocast, refresh_threads


@dataclass
class TrainConfig(Presets):
    steps: int = 1000
    lr: float = 1e-3
    min_lr: float | None = None        # floor of the decay; default lr / 10
    warmup: int = 0                    # linear warmup steps
    schedule: str = "cosine"           # "cosine", "linear" or "constant" after warmup
    weight_decay: float = 0.0          # AdamW; applied to matrices only, never to biases or norms
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = 1.0      # max global gradient norm; None turns clipping off
    eval_every: int = 0                # 0: evaluate only at the end
    log_every: int = 10                # how often the loss is recorded into the history
    checkpoint_every: int = 0          # 0: no periodic checkpoints
    amp: bool = True                   # bf16 autocast on CUDA (no-op elsewhere)
    cpu_amp: bool = False              # also on CPUs with native bf16 (worth it from ~20 M parameters up)
    keep_best: str | None = None       # an eval metric (lower is better): when training ends, go back to the
                                       # weights of its best evaluation (early stopping; nanoGPT keeps its
                                       # best checkpoint the same way). Held in memory, not in checkpoints.
    max_seconds: float | None = None   # a wall-clock budget: stop once training has run this long (`steps`
                                       # still caps it); the decay then follows the fraction of time used.
                                       # The course's own lessons budget in steps (a claim must not depend on
                                       # the machine's speed); this is for learners' own experiments
    min_steps: int = 1                 # with max_seconds: train at least this many steps, however slow the
                                       # machine (the decay follows the steps until then)

    def __post_init__(self):
        if self.schedule not in ("cosine", "linear", "constant"):
            raise ValueError(f"schedule={self.schedule!r}: expected 'cosine', 'linear' or 'constant'")
        if self.steps < 0 or self.warmup < 0:
            raise ValueError("steps and warmup must be >= 0")
        for name in ("eval_every", "log_every", "checkpoint_every"):     # 0: off (log_every 0 logs every step)
            integer(name, getattr(self, name), 0)
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"max_seconds={self.max_seconds}: expected a positive number of seconds, or None")
        if self.grad_clip is not None and (isinstance(self.grad_clip, bool) or not isinstance(self.grad_clip, (int, float))
                                           or not math.isfinite(self.grad_clip) or not self.grad_clip > 0):
            # a negative norm flips every gradient (training climbs: loss 5.6 -> 21.2 in a probe); 0 meant off
            raise ValueError(f"grad_clip={self.grad_clip!r}: expected a finite number > 0 (the largest gradient "
                             f"norm), or None for no clipping")
        if not 0 <= self.min_steps <= max(self.steps, 1):
            raise ValueError(f"min_steps={self.min_steps}: expected 0 <= min_steps <= steps={self.steps}")
        self.betas = tuple(self.betas)


def lr_at(step: int, cfg: TrainConfig, elapsed: float | None = None) -> float:
    """Learning rate for optimisation step `step` (0-based): linear warmup, then decay to `min_lr`.

    With a time budget (`cfg.max_seconds`) and the training time so far (`elapsed`), the decay runs on the
    clock instead of the step count, so it ends when the time does.
    """
    min_lr = cfg.lr / 10 if cfg.min_lr is None else cfg.min_lr
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.max_seconds and elapsed is not None:
        progress = elapsed / cfg.max_seconds
        if step < cfg.min_steps:                # a slow machine: the guaranteed steps decay on the step count
            progress = min(progress, (step - cfg.warmup) / max(1, cfg.min_steps - cfg.warmup))
    else:
        progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    progress = min(max(progress, 0.0), 1.0)
    if cfg.schedule == "linear":
        return cfg.lr + (min_lr - cfg.lr) * progress
    return min_lr + 0.5 * (cfg.lr - min_lr) * (1 + math.cos(math.pi * progress))


@dataclass
class History:
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)   # each has "step"
    seconds: float = 0.0
    restored: dict[str, float] = field(default_factory=dict)      # keep_best: the evaluation gone back to

    def eval_series(self, key: str) -> tuple[list[int], list[float]]:
        pts = [(e["step"], e[key]) for e in self.evals if key in e]
        return [s for s, _ in pts], [v for _, v in pts]

    def last_eval(self, key: str) -> float:
        _, values = self.eval_series(key)
        if not values:
            raise KeyError(f"no evaluation recorded {key!r}")
        return values[-1]

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> "History":
        return cls(**json.loads(text))


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DistributedDataParallel/DataParallel wrapper (or the model itself), so checkpoints
    have the same keys however the model was trained."""
    return getattr(model, "module", model)


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


EVENTS = ("on_step_start", "on_step_end", "on_eval", "on_fit_end")


class Trainer:
    def __init__(self, model: torch.nn.Module, loss_fn: Callable, get_batch: Callable[[int], Any],
                 cfg: TrainConfig, *, device: torch.device | str = "cpu", eval_fn: Callable | None = None,
                 name: str = "train", checkpoint_path: str | Path | None = None,
                 progress: bool | None = None):
        self.model = model.to(device)
        self.loss_fn, self.get_batch, self.eval_fn = loss_fn, get_batch, eval_fn
        self.cfg, self.device, self.name = cfg, torch.device(device), name
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.optimizer = make_optimizer(self.model, cfg)
        self.step = 0
        self.history = History()
        self.progress = progress_enabled() if progress is None else progress
        self.callbacks: dict[str, list[Callable]] = {event: [] for event in EVENTS}
        self._fit_start: float | None = None   # perf_counter() when the current fit() began
        self._best: tuple[float, dict, dict[str, torch.Tensor]] | None = None  # keep_best: (value, eval, weights)

    # -- callbacks ---------------------------------------------------------------------------------
    def add_callback(self, event: str, fn: Callable) -> "Trainer":
        if event not in self.callbacks:
            raise ValueError(f"event={event!r}: expected one of {', '.join(EVENTS)}")
        if not callable(fn):
            raise TypeError(f"callback for {event!r} must be callable, got {type(fn).__name__}")
        self.callbacks[event].append(fn)
        return self

    def _trigger(self, event: str, *args: Any) -> None:
        for fn in self.callbacks[event]:
            fn(self, *args)

    # -- one step ----------------------------------------------------------------------------------
    def _compute_loss(self, batch) -> tuple[torch.Tensor, dict]:
        with autocast(self.device, self.cfg.amp, cpu=self.cfg.cpu_amp):
            out = self.loss_fn(self.model, batch)
        loss, extra = (out if isinstance(out, tuple) else (out, {}))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{self.name}: loss became {loss.item()} at step {self.step}; "
                                     "lower the learning rate or check the inputs")
        return loss, extra

    def train_step(self) -> float:
        self._trigger("on_step_start")
        self.model.train()
        lr = lr_at(self.step, self.cfg, self.elapsed())
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = to_device(self.get_batch(self.step), self.device)
        loss, _ = self._compute_loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.step += 1
        value = loss.item()
        if self.step % max(1, self.cfg.log_every) == 0 or self.step == 1:
            self.history.steps.append(self.step)
            self.history.losses.append(value)
            self.history.lrs.append(lr)
        self._trigger("on_step_end", value)
        return value

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        if self.eval_fn is None:
            return {}
        was_training = self.model.training
        self.model.eval()
        with autocast(self.device, self.cfg.amp, cpu=self.cfg.cpu_amp):
            metrics = {k: float(v) for k, v in self.eval_fn(self.model).items()}
        self.model.train(was_training)
        record = {"step": self.step, **metrics}
        self.history.evals.append(record)
        key = self.cfg.keep_best
        if key is not None:
            if key not in metrics:
                raise KeyError(f"keep_best={key!r} but the eval function returned only {sorted(metrics)}")
            if self._best is None or metrics[key] < self._best[0]:
                weights = {k: v.detach().clone() for k, v in unwrap(self.model).state_dict().items()}
                self._best = (metrics[key], record, weights)
        self._trigger("on_eval", metrics)
        return metrics

    def restore_best(self) -> dict[str, float]:
        """Load the weights of the best evaluation so far (`cfg.keep_best`); return that evaluation."""
        if self._best is None:
            raise RuntimeError("no evaluation recorded yet: keep_best needs eval_fn and at least one evaluation")
        _, record, weights = self._best
        unwrap(self.model).load_state_dict(weights)
        self.history.restored = dict(record)
        return record

    # -- the loop ----------------------------------------------------------------------------------
    def elapsed(self) -> float:
        """Seconds of training so far, over every fit() call, the running one included."""
        running = 0.0 if self._fit_start is None else time.perf_counter() - self._fit_start
        return self.history.seconds + running

    def out_of_time(self) -> bool:
        """The clock budget is spent (never before `cfg.min_steps` steps: a slow machine still trains)."""
        return (self.cfg.max_seconds is not None and self.step >= self.cfg.min_steps
                and self.elapsed() >= self.cfg.max_seconds)

    def fit(self, until: int | None = None) -> History:
        """Train from the current step up to `until` (default: cfg.steps), or until `cfg.max_seconds` of
        training have passed. Resumable."""
        until = self.cfg.steps if until is None else min(until, self.cfg.steps)
        if self.device.type == "cpu" and self.step < until:
            refresh_threads()           # a job may have started beside us since the lesson began (see set_threads)
        start = self._fit_start = time.perf_counter()
        bar = tqdm(total=until, initial=self.step, desc=self.name, disable=not self.progress,
                   dynamic_ncols=True, leave=False)
        try:
            while self.step < until and not self.out_of_time():
                loss = self.train_step()
                bar.update(1)
                if self.cfg.eval_every and self.step % self.cfg.eval_every == 0 and self.step < self.cfg.steps:
                    metrics = self.evaluate()
                    bar.set_postfix(loss=f"{loss:.3f}", **{k: f"{v:.3f}" for k, v in metrics.items()})
                elif self.step % 10 == 0:
                    bar.set_postfix(loss=f"{loss:.3f}")
                if (self.checkpoint_path and self.cfg.checkpoint_every
                        and self.step % self.cfg.checkpoint_every == 0):
                    self.save(self.checkpoint_path)
            finished = self.step == self.cfg.steps or self.out_of_time()
            if finished and (not self.history.evals or self.history.evals[-1]["step"] != self.step):
                self.evaluate()
            if finished and self.cfg.keep_best is not None:
                self.restore_best()
        finally:
            bar.close()
            self.history.seconds += time.perf_counter() - start
            self._fit_start = None
        if self.checkpoint_path:
            self.save(self.checkpoint_path)
        self._trigger("on_fit_end")
        return self.history

    # -- checkpoints (course_lib.core.checkpoints: safetensors, atomic, verified) ------------------------
    def save(self, path: str | Path) -> Path:
        """Everything needed to resume bit-exactly: weights, optimizer state, RNG, step, history, config."""
        tensors = {f"model.{k}": v for k, v in unwrap(self.model).state_dict().items()}
        opt = self.optimizer.state_dict()
        for idx, state in opt["state"].items():
            for key, value in state.items():
                tensors[f"optim.{idx}.{key}"] = torch.as_tensor(value)
        tensors["rng.torch"] = torch.get_rng_state()
        meta = {
            "step": str(self.step),
            "history": self.history.to_json(),
            "param_groups": json.dumps(opt["param_groups"]),
            "config": json.dumps(self.cfg.to_dict()),
        }
        return save_tensors(path, tensors, meta)

    def load(self, path: str | Path) -> "Trainer":
        """Resume from `save`. A checkpoint written under another TrainConfig is refused: resuming it under this
        one would silently change the run (its schedule, its length)."""
        tensors, meta = load_tensors(path)
        saved = json.loads(meta.get("config", "{}"))
        mine = json.loads(json.dumps(self.cfg.to_dict()))
        changed = sorted(k for k in set(saved) | set(mine) if saved.get(k) != mine.get(k))
        if changed:
            raise ValueError(f"{path} was written under another TrainConfig (differs in {changed}); resume with "
                             "the same config, or start a new run")
        model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        unwrap(self.model).load_state_dict(model_state)
        opt_state: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, idx, key = k.split(".", 2)
                opt_state.setdefault(int(idx), {})[key] = v.to(self.device) if key != "step" else v
        self.optimizer.load_state_dict({"state": opt_state, "param_groups": json.loads(meta["param_groups"])})
        torch.set_rng_state(tensors["rng.torch"])
        self.step = int(meta["step"])
        self.history = History.from_json(meta["history"])
        return self
