"""Run budgets of the translation lessons: 03 (seq2seq), 04 (attention) and 05 (Transformer), per profile.

Budgets are optimizer steps, never seconds, so a result means the same on every machine.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.presets import Presets
from ..core.train import TrainConfig
from ..translation.reversal import ReversalTask
from ..translation.seq2seq import Seq2SeqConfig


@dataclass
class Seq2SeqRecipe(Presets):
    """How lessons 03 and 04 train their recurrent translators (and lesson 05 trains lesson 04's model)."""
    steps: int = 1000
    lr: float = 2e-3
    eval_every: int = 250
    warmup: int = 50

    PRESETS = {
        "smoke": dict(steps=40, lr=3e-3, eval_every=20, warmup=0),
        "lesson": dict(),
        "gpu": dict(steps=12000, lr=1e-3, eval_every=1000, warmup=200),
    }

    def train_config(self, **overrides: Any) -> TrainConfig:
        return TrainConfig(**{"steps": self.steps, "lr": self.lr, "eval_every": self.eval_every,
                              "warmup": self.warmup, **overrides})


@dataclass
class ReversalRecipe(ReversalTask, Presets):
    """The reversal experiment of lessons 03 and 04: the task's sizes, the lengths scored, the model, the steps."""
    eval_lengths: tuple[int, ...] = (5, 10, 15, 20, 25, 30)
    embed: int = 32
    hidden: int = 128
    steps: int = 600
    lr: float = 3e-3
    # lesson 03's capacity-or-training sweep: a smaller task (lengths up to sweep_max_len), every pair of sizes x steps
    sweep_hidden: tuple[int, ...] = (32, 128)
    sweep_steps: tuple[int, ...] = (300, 1200)
    sweep_max_len: int = 16

    PRESETS = {
        "smoke": dict(max_len=8, eval_lengths=(4, 8), eval_examples=50, hidden=32, steps=30,
                      sweep_hidden=(16, 32), sweep_steps=(10, 30), sweep_max_len=6),
        "lesson": dict(),
        "gpu": dict(max_len=60, eval_lengths=(10, 20, 30, 40, 50, 60), hidden=256, steps=4000),
    }

    def model_config(self, attention: bool, bidirectional: bool = True) -> Seq2SeqConfig:
        v = self.vocab()
        return Seq2SeqConfig(src_vocab=len(v), tgt_vocab=len(v), embed=self.embed, hidden=self.hidden,
                             attention=attention, bidirectional=bidirectional, pad_id=v.pad_id)

    def train_config(self) -> TrainConfig:
        return TrainConfig(steps=self.steps, lr=self.lr, warmup=20, eval_every=0)


@dataclass
class TransformerRecipe(Presets):
    """Lesson 05's budgets. The Transformer and lesson 04's model each train for `steps` optimizer steps on the
    same batches (the comparison is at equal steps: a step budget holds on any machine, a clock budget would
    give a fast machine a different experiment); `throughput_steps` timed steps per model measure their speed,
    which is reported, never required. `lr` and `warmup` are the Transformer's optimiser settings."""
    steps: int = 1500
    throughput_steps: int = 20
    lr: float = 1e-3
    warmup: int = 100
    evals: int = 4                  # validation-loss points per training run
    beam_sentences: int = 300       # test sentences also translated with beam search
    head_sentences: int = 200       # test sentences whose attention is measured, head by head (forward passes only)

    PRESETS = {
        "smoke": dict(steps=20, throughput_steps=3, lr=2e-3, warmup=4, evals=1, beam_sentences=8),
        "lesson": dict(),
        "gpu": dict(steps=12000, throughput_steps=50, lr=7e-4, warmup=1000, evals=6, beam_sentences=2000),
    }

    def budget(self) -> dict[str, Any]:
        """TrainConfig fields both models share: the steps and the evaluation spacing."""
        return dict(steps=self.steps, eval_every=max(1, self.steps // self.evals))

    def train_config(self) -> TrainConfig:
        """The Transformer's: linear warm-up, then cosine decay over the steps."""
        return TrainConfig(lr=self.lr, warmup=min(self.warmup, self.steps // 5), **self.budget())
