"""Lesson 09's run budgets, one preset per profile, counted in steps and examples (never in seconds: a claim must
not depend on how fast the machine is).

    sft = SFTRecipe.preset(profile)        # part A: instruction-tuning lesson 06's char GPT
    chat = ChatRecipe.preset(profile)      # part B: SmolLM2-135M-Instruct in our own code
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.presets import Presets


@dataclass
class SFTRecipe(Presets):
    # the starting model: lesson 06's char GPT if its checkpoint exists and is good enough, else one trained here
    use_lesson06: bool = True
    max_val_loss: float = 2.0          # a lesson 06 checkpoint worse than this (e.g. from a smoke run) is not used
    fallback_layers: int = 4           # the fallback GPT: lesson 06's lesson shape (128-character context)
    fallback_width: int = 128
    fallback_steps: int = 600
    fallback_batch: int = 32
    fallback_lr: float = 2e-3
    # supervised fine-tuning, loss on the answer tokens only
    # From lesson 06's checkpoint, exact match on the seen tasks (new lines): 1200 steps 0.77; 1500 steps 0.90
    # and 0.92 (two seeds), but 0.825 in a run on another thread count: too close to the claim's 0.8; 2500 steps
    # 0.971 and 0.975 (seeds 0 and 1, 2026-12-05). The budget sits where the claim holds with room to spare.
    steps: int = 2500
    batch: int = 16
    lr: float = 1.5e-3
    warmup: int = 50
    # evaluation
    eval_per_task: int = 40            # held-out lines per task and split
    shots: int = 1                     # worked examples in the untuned model's few-shot prompt (128 characters
                                       # of context leave room for one)

    PRESETS = {
        "smoke": dict(use_lesson06=False, fallback_layers=2, fallback_width=32, fallback_steps=30, fallback_batch=8,
                      steps=40, batch=16, lr=3e-3, warmup=5, eval_per_task=4),
        "lesson": dict(),
        "gpu": dict(fallback_steps=2000, fallback_batch=64, steps=3000, batch=32, eval_per_task=100),
    }


@dataclass
class ChatRecipe(Presets):
    real_model: bool = True            # False: a tiny random Llama stands in for generation (the real file is
                                       # still read, dequantized and checked against transformers)
    full_transformers_loader: bool = True   # the oracle via transformers' own GGUF loader (half a minute on CPU)
    sst2_sentences: int = 200          # SST-2 dev sentences (the first n, a fixed set)
    shots: int = 8                     # worked examples in the few-shot prompt
    orders: int = 3                    # orders of those examples
    batch: int = 16                    # reviews scored at once
    max_new_tokens: int = 40           # per reply in the demonstrations
    probe_new_tokens: int = 32         # per answer in the factual probe

    PRESETS = {
        "smoke": dict(real_model=False, full_transformers_loader=False, sst2_sentences=16, shots=2, orders=2,
                      max_new_tokens=4, probe_new_tokens=4),
        "lesson": dict(),
        "gpu": dict(sst2_sentences=872, orders=5),
    }
