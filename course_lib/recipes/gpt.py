"""Run budgets of lesson 06 (GPT), which lessons 08-10 reuse: how each GPT trains, per profile.

    recipe = LessonGPTRecipe.preset(profile)     # lesson 06's main model
    cfg = recipe.model_config(vocab_size=65)     # its size (GPTConfig's preset for the profile)
    train_cfg = recipe.train_config()            # its optimiser and steps; recipe.batch sequences a step
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..core import paths
from ..core.presets import Presets
from ..core.train import TrainConfig
from ..gpt.model import GPTConfig


@dataclass
class GPTRecipe(Presets):
    """One GPT training run: the model's size (a GPTConfig size or profile preset), the batch and the optimiser.
    AdamW with beta2 0.99, warm-up then cosine decay to `min_lr`, as nanoGPT trains its character models."""
    size: str = "lesson"           # a GPTConfig.SIZES name, else a GPTConfig preset (profile) name
    batch: int = 32                # sequences per optimisation step
    steps: int = 1200
    lr: float = 2e-3
    min_lr: float = 2e-4
    warmup: int = 100
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.1
    eval_every: int = 250
    keep_best: str | None = None   # "val_loss": end on the best evaluation's weights (nanoGPT's early stopping)

    def model_config(self, **overrides: Any) -> GPTConfig:
        if self.size in GPTConfig.SIZES:
            return GPTConfig.sized(self.size, **overrides)
        return GPTConfig.preset(self.size, **overrides)

    def train_config(self, **overrides: Any) -> TrainConfig:
        fields = dict(steps=self.steps, lr=self.lr, min_lr=self.min_lr, warmup=self.warmup, betas=self.betas,
                      weight_decay=self.weight_decay, eval_every=self.eval_every, keep_best=self.keep_best)
        return TrainConfig(**{**fields, **overrides})


class LessonGPTRecipe(GPTRecipe):
    """Lesson 06's main model (its checkpoint is lessons 08-10's starting point)."""
    PRESETS = {
        "smoke": dict(size="smoke", batch=8, steps=60, lr=2e-3, min_lr=2e-4, warmup=10, eval_every=30),
        "lesson": dict(size="lesson"),
        # nanoGPT's shakespeare_char GPU recipe. The model overfits after ~2000 steps, so, like nanoGPT (which
        # keeps its best checkpoint), training ends on the weights of the best evaluation.
        "gpu": dict(size="gpu", batch=64, steps=5000, lr=1e-3, min_lr=1e-4, keep_best="val_loss"),
    }


class BabyGPTRecipe(GPTRecipe):
    """nanoGPT's CPU "baby" run (its README: 4 layers, 4 heads, 128 dims, block 64, batch 12, 2000 steps, lr 1e-3
    -> 1e-4 after 100 warm-up steps; val 1.88). At smoke, the nano size for a few steps, so every cell runs."""
    PRESETS = {
        "smoke": dict(size="nano", batch=8, steps=60, lr=2e-3, min_lr=2e-4, warmup=10, eval_every=30),
        "lesson": dict(size="baby", batch=12, steps=2000, lr=1e-3, min_lr=1e-4, warmup=100),
        "gpu": dict(size="baby", batch=12, steps=2000, lr=1e-3, min_lr=1e-4, warmup=100),
    }


@dataclass
class ScalingRecipe(GPTRecipe):
    """The scaling experiment: one base shape at growing widths, every one trained for the same steps and batch
    (a fixed budget of training tokens)."""
    widths: tuple[int, ...] = (16, 32, 64, 128)

    PRESETS = {
        "smoke": dict(size="nano", widths=(8, 16, 32), batch=8, steps=60, warmup=10, eval_every=30),
        "lesson": dict(size="baby", widths=(16, 32, 64, 128), batch=12, steps=600, warmup=50, eval_every=0),
        "gpu": dict(size="baby", widths=(16, 32, 64, 128, 256), batch=12, steps=600, warmup=50, eval_every=0),
    }

    def configs(self, vocab_size: int) -> list[GPTConfig]:
        base = self.model_config(vocab_size=vocab_size)
        return [replace(base, n_embd=width) for width in self.widths]


def checkpoint_path(profile: str) -> Path:
    """Where lesson 06 saves its char-level GPT (lessons 08-10's starting point): `06_gpt_char.safetensors`, or
    `06_gpt_char_smoke.safetensors` for the smoke profile, so a quick CI run never overwrites the real model."""
    name = "06_gpt_char_smoke.safetensors" if profile == "smoke" else "06_gpt_char.safetensors"
    return paths.checkpoints_dir() / name
