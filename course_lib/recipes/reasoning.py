"""Lesson 11's run budgets, one preset per profile, in steps and samples (never seconds: a claim must not depend on
how fast the machine is).

    fmt = FormatRecipe.preset(profile)       # the small GPT and its supervised training on one answer format
    rl = RLVRRecipe.preset(profile)          # RL with a verifiable reward, the pass@k evaluation, the controls

Sizes measured on one CPU thread (research/feasibility-11-and-08.md, then re-measured in this code): a 3-layer,
64-wide char GPT (149 k parameters) learns 3-digit addition with a scratchpad in 600 steps of 64 problems.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.presets import Presets
from ..core.train import TrainConfig
from ..gpt.model import GPTConfig


@dataclass
class FormatRecipe(Presets):
    """The formats experiment: one GPT shape, one budget, three answer formats, `seeds` seeds each."""
    n_layer: int = 3
    n_head: int = 4
    n_embd: int = 64
    block_size: int = 32
    train_problems: int = 20_000
    val_problems: int = 200
    test_problems: int = 500
    seeds: int = 3                 # seeds of the formats experiment run inside the notebook (seed, seed+1, ...)
    steps: int = 600
    batch: int = 64
    lr: float = 3e-3
    warmup: int = 50
    eval_every: int = 50
    catch: float = 0.5             # the RL start: the scratchpad model the first time validation exact match >= this

    PRESETS = {
        "smoke": dict(n_layer=2, n_embd=32, train_problems=2000, val_problems=50, test_problems=50, seeds=1,
                      steps=60, warmup=10, eval_every=20, catch=0.0),
        "lesson": dict(),
        "gpu": dict(seeds=5, steps=1500, test_problems=2000),
    }

    def model_config(self, **overrides: Any) -> GPTConfig:
        return GPTConfig(**{"n_layer": self.n_layer, "n_head": self.n_head, "n_embd": self.n_embd,
                            "block_size": self.block_size, "dropout": 0.0, **overrides})

    def train_config(self, **overrides: Any) -> TrainConfig:
        return TrainConfig(**{"steps": self.steps, "lr": self.lr, "warmup": self.warmup, "schedule": "cosine",
                              "eval_every": self.eval_every, "log_every": 10, **overrides})


@dataclass
class RLVRRecipe(Presets):
    """RL with a verifiable reward from the partly trained scratchpad model, and how it is measured."""
    iterations: int = 300          # one rollout and one gradient step each
    prompts: int = 16              # prompts per rollout
    k: int = 8                     # samples per prompt (the group)
    lr: float = 3e-4
    beta: float = 0.0              # KL to the start, in reward units per nat (0: none)
    advantage: str = "rloo"        # "rloo" or "grpo" (lesson 10's advantages)
    leash_beta: float = 0.1        # the KL control for the format-only reward
    eval_problems: int = 200       # test problems for pass@k
    eval_samples: int = 64         # samples per problem (pass@k for k <= this)
    eval_every: int = 50           # iterations between pass@1 checks during RL
    curve_samples: int = 4         # samples per problem for those checks
    cool_temperature: float = 0.3  # the control: the supervised model, sharpened by temperature instead of RL

    PRESETS = {
        "smoke": dict(iterations=6, prompts=4, k=4, eval_problems=24, eval_samples=8, eval_every=3, curve_samples=2),
        "lesson": dict(),
        "gpu": dict(iterations=600, prompts=64, eval_problems=500, eval_samples=256),
    }


@dataclass
class GlimpseRecipe(Presets):
    """The real model on CPU: SmolLM2-135M-Instruct asked two-digit sums directly and step by step (greedy)."""
    problems: int = 12
    direct_tokens: int = 16             # room for "54 + 19 = 73" when the model restates the sum
    step_tokens: int = 96

    PRESETS = {
        "smoke": dict(problems=2, direct_tokens=4, step_tokens=8),
        "lesson": dict(),
        "gpu": dict(problems=200, step_tokens=160),
    }
