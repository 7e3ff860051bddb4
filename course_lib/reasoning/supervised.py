"""Supervised training of lesson 11's small GPT on one answer format, with the loss on the completion only.

    run = train_format(split, "scratchpad", tok, recipe, device, seed=0, catch=("val", 0.5))
    run.curve            # [(step, test exact match), ...] greedy decoding, every `eval_every` steps
    run.model            # the trained GPT
    run.caught           # a copy of the weights the first time validation exact match reached 0.5 (or None)

The batches and the completion-only loss are lesson 10's (`row_batches`, `response_nll`): one definition.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..core.runtime import seed_everything
from ..core.train import History, Trainer
from ..gpt.model import GPT
from ..rlhf.loop import response_nll, row_batches, rl_copy
from .addition import PROMPT_LEN, ProblemSplit, encode_examples
from .sampling import greedy_accuracy


@dataclass
class FormatRun:
    fmt: str
    seed: int
    model: GPT
    history: History
    curve: list[tuple[int, float]] = field(default_factory=list)       # (step, test exact match)
    val_curve: list[tuple[int, float]] = field(default_factory=list)   # (step, validation exact match)
    caught: GPT | None = None                                          # the weights first reaching the target
    caught_step: int | None = None

    @property
    def final(self) -> float:
        return self.curve[-1][1]


def train_format(split: ProblemSplit, fmt: str, tok, recipe, device: torch.device, seed: int = 0,
                 catch: float | None = None, name: str | None = None) -> FormatRun:
    """Train a fresh GPT (`recipe.model_config`) on `split.train` written in `fmt` for `recipe.steps` steps.

    Every `recipe.eval_every` steps: greedy exact match on the validation and test problems. With `catch`, a
    frozen-in-time copy of the model is kept the first time validation exact match reaches `catch` (the
    partially trained starting point for RL)."""
    seed_everything(seed)
    model = GPT(recipe.model_config(vocab_size=len(tok))).to(device)
    rows = encode_examples(split.train, fmt, tok).to(device)
    run = FormatRun(fmt, seed, model, History())

    def evaluate(m: GPT) -> dict:
        val = greedy_accuracy(m, split.val, fmt, tok)
        test = greedy_accuracy(m, split.test, fmt, tok)
        return {"val_exact": val, "test_exact": test}

    def on_eval(trainer: Trainer, metrics: dict) -> None:
        run.curve.append((trainer.step, metrics["test_exact"]))
        run.val_curve.append((trainer.step, metrics["val_exact"]))
        if catch is not None and run.caught is None and metrics["val_exact"] >= catch:
            run.caught, run.caught_step = rl_copy(trainer.model), trainer.step

    trainer = Trainer(model, response_nll(PROMPT_LEN), row_batches(rows, recipe.batch, seed), recipe.train_config(),
                      device=device, eval_fn=evaluate, name=name or f"{fmt} (seed {seed})")
    trainer.add_callback("on_eval", on_eval)
    metrics0 = evaluate(model.eval())
    run.curve.append((0, metrics0["test_exact"]))
    run.val_curve.append((0, metrics0["val_exact"]))
    run.history = trainer.fit()
    return run
