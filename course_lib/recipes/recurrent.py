"""Run budgets of lessons 01 (RNN) and 02 (LSTM), one preset per profile."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..core.presets import Presets
from ..core.train import Trainer, TrainConfig
from ..recurrent.recall import Arm, full_lengths, make_recall_model, recall_accuracy
from ..recurrent.synthetic import delayed_recall


@dataclass
class Recipe(Presets):
    """How long and on what batches an experiment trains; `train_config()` hands it to the Trainer."""
    steps: int = 1500
    batch: int = 32
    block: int = 100            # characters per training window (language models)
    lr: float = 3e-3
    warmup: int = 50
    eval_every: int = 250

    def train_config(self, **overrides):
        return TrainConfig(**{"steps": self.steps, "lr": self.lr, "warmup": self.warmup,
                              "eval_every": self.eval_every, **overrides})


class CharLMRecipe(Recipe):
    PRESETS = {
        "smoke": dict(steps=40, batch=16, block=32, eval_every=20, warmup=5),
        "lesson": dict(steps=1500, batch=32, block=100, eval_every=250),
        "gpu": dict(steps=5000, batch=64, block=200, eval_every=500),
    }


class NamesRecipe(Recipe):
    PRESETS = {
        "smoke": dict(steps=60, batch=32, eval_every=30, warmup=5),
        "lesson": dict(steps=2500, batch=64, eval_every=500),
        "gpu": dict(steps=5000, batch=128, eval_every=500),
    }


@dataclass
class DelayRecipe(Presets):
    """The long-delay memory experiment: delays to try, seeds to average over, one budget for every model.

    Several seeds, because a plain RNN now and then stores a bit or two in a saturated unit and beats
    chance by luck: a single run can tell a story the average does not. `arm_delay` and `arm_seeds`: the
    initialisation race (LSTM forget bias 0 / +1 / `forget_bias`, RNN default / identity), at one delay.
    """
    delays: list[int] = field(default_factory=lambda: [5, 20, 50, 100])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    arm_delay: int = 50
    arm_seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    rnn_hidden: int = 128       # RNN(128) and LSTM(64) have about the same number of parameters
    lstm_hidden: int = 64
    forget_bias: float = 5.0    # start the LSTM remembering (see the notebook)
    steps: int = 1000
    batch: int = 64
    lr: float = 3e-3
    eval_size: int = 1000

    PRESETS = {
        "smoke": dict(delays=[5, 15], seeds=[0], arm_delay=15, arm_seeds=[0, 1], rnn_hidden=32, lstm_hidden=16,
                      steps=30, batch=32, eval_size=200),
        "lesson": dict(),
        "gpu": dict(delays=[5, 20, 50, 100, 150, 200], seeds=[0, 1, 2, 3, 4], steps=3000),
    }

    def train_config(self) -> TrainConfig:
        """A constant learning rate: every delay and seed gets the same optimiser."""
        return TrainConfig(steps=self.steps, lr=self.lr, schedule="constant")


@dataclass
class ExplodingRecipe(Presets):
    """Lesson 01's exploding-gradient experiment (`recurrent.exploding.clipping_test`): a char-RNN whose recurrent
    matrix is `gain` x orthogonal, trained by plain SGD for the same `steps` three ways: unclipped at `lr`;
    clipped at `clip_multiple` x the unclipped run's median gradient norm (so the clip acts on spikes only);
    unclipped at the clipped run's effective learning rate.

    With gain 2 every direction of W_hh is stretched two-fold per step, and the first gradient is ~50x an
    ordinary one. lr 2 is large but trainable for ordinary steps (lr 4 wrecks even ordinary steps, so no clip
    that spares them can save it). Measured at these settings, seeds 0/1/2: validation loss unclipped 3.15 /
    3.08 / 3.91, clipped 2.24 / 2.31 / 2.22, unclipped at the effective lr 2.94 / 2.87 / 5.50; the clip acted on
    step 0 only. (Adam would hide much of the effect: its steps are about `lr` long whatever the gradient's size.)
    """
    hidden: int = 128
    embed: int = 16
    gain: float = 2.0
    lr: float = 2.0
    clip_multiple: float = 10.0
    steps: int = 300
    block: int = 50
    batch: int = 32

    PRESETS = {
        "smoke": dict(steps=60),
        "lesson": dict(),
        "gpu": dict(steps=1000),
    }


def train_recall(arm: Arm, delay: int, run_seed: int, recipe, device="cpu", hidden: int | None = None):
    """Train `arm` on delayed recall at `delay` with `recipe` (a DelayRecipe: steps, batch, lr, eval_size).

    Returns (model, accuracy on recipe.eval_size held-out sequences). `hidden` defaults to the recipe's size for
    the cell (recipe.rnn_hidden or recipe.lstm_hidden: about the same number of parameters).
    """
    torch.manual_seed(run_seed)
    hidden = hidden or (recipe.lstm_hidden if arm.cell == "lstm" else recipe.rnn_hidden)
    model = make_recall_model(arm, hidden)

    def loss_fn(m, batch):
        x, y = batch
        return F.cross_entropy(m(x, full_lengths(x)), y)

    def get_batch(step):
        return delayed_recall(recipe.batch, delay, generator=torch.Generator().manual_seed(run_seed * 100_003 + step))

    Trainer(model, loss_fn, get_batch, recipe.train_config(), device=device,
            name=f"{arm.label} T={delay}").fit()
    return model, recall_accuracy(model, delay, recipe.eval_size, device=device)
