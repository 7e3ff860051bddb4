"""The reversal task (lessons 03 and 04): read a sequence of symbols, write it backwards.

The first symbol read is the last one written, so a model that squeezes the input into one fixed vector must
carry every symbol across the whole sequence. Lengths vary, so the task measures how much one vector can hold.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..recurrent.synthetic import reversal
from ..text.tokenizers import SPECIALS, Vocab
from .decoding import greedy
from .pipeline import collate


@dataclass
class ReversalTask:
    n_symbols: int = 10
    min_len: int = 1                 # training lengths are drawn uniformly from [min_len, max_len]
    max_len: int = 30
    batch_size: int = 64
    eval_examples: int = 200         # sequences per evaluated length

    def vocab(self) -> Vocab:
        return Vocab([f"s{i}" for i in range(self.n_symbols)], specials=SPECIALS)


def reversal_batch(task: ReversalTask, batch: int, length: int, generator: torch.Generator):
    """Model-ready batch of the reversal task (sources end with <eos>, as in translation)."""
    v = task.vocab()
    x, y = reversal(batch, length, task.n_symbols, first_id=len(SPECIALS), generator=generator)
    return collate([row + [v.eos_id] for row in x.tolist()], y.tolist(), v.pad_id, v.bos_id, v.eos_id)


def reversal_batches_by_step(task: ReversalTask, seed: int = 0):
    """A `get_batch(step)` for Trainer: a length drawn from [min_len, max_len], then a batch of that length."""
    def get_batch(step: int):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
        length = int(torch.randint(task.min_len, task.max_len + 1, (1,), generator=gen))
        return reversal_batch(task, task.batch_size, length, gen)
    return get_batch


def accuracy_by_position(outputs: list[list[int]], targets: list[list[int]]) -> list[float]:
    """Token accuracy at each output position: the fraction of sequences whose i-th output equals the i-th
    target symbol (an output too short to reach position i counts as wrong there). All targets share a length."""
    if not targets or len(outputs) != len(targets):
        raise ValueError(f"need one output per target and at least one target, got {len(outputs)} and {len(targets)}")
    length = len(targets[0])
    if any(len(t) != length for t in targets):
        raise ValueError("every target must have the same length")
    hits = [0] * length
    for out, tgt in zip(outputs, targets):
        for i, (o, t) in enumerate(zip(out, tgt)):
            hits[i] += o == t
    return [h / len(targets) for h in hits]


@torch.no_grad()
def reversal_outputs(model: nn.Module, task: ReversalTask, length: int, device: torch.device | str,
                     seed: int = 12345, teacher_forced: bool = False) -> tuple[list[list[int]], list[list[int]]]:
    """The model's outputs for `task.eval_examples` fresh sequences of `length` symbols, and their targets.

    Greedy decoding by default (each step is fed the model's own previous output, as when translating).
    `teacher_forced`: each step is fed the *true* previous symbol and we read its most likely next one, so
    a mistake at one position cannot cause the next: what is left is what the model knows at each position.
    """
    was_training = model.training
    model.eval()
    v = task.vocab()
    batch = reversal_batch(task, task.eval_examples, length, torch.Generator().manual_seed(seed + length))
    src, src_mask = batch["src"].to(device), batch["src_mask"].to(device)
    if teacher_forced:
        logits = model(src, src_mask, batch["tgt_in"].to(device))
        logits = logits[0] if isinstance(logits, tuple) else logits
        out = logits[:, :length].argmax(-1).tolist()
    else:
        out = greedy(model, src, src_mask, v.bos_id, v.eos_id, length + 1)
    model.train(was_training)
    return out, [row[:length] for row in batch["tgt_out"].tolist()]


def reversal_accuracy(model: nn.Module, task: ReversalTask, length: int, device: torch.device | str,
                      seed: int = 12345) -> float:
    """Exact match: the fraction of fresh sequences reversed without a single wrong (or missing) symbol."""
    out, targets = reversal_outputs(model, task, length, device, seed)
    return sum(o == t for o, t in zip(out, targets)) / len(targets)


def reversal_accuracy_by_position(model: nn.Module, task: ReversalTask, length: int, device: torch.device | str,
                                  seed: int = 12345, teacher_forced: bool = False) -> list[float]:
    """Token accuracy at each output position 1..length on the same sequences `reversal_accuracy` scores
    (greedy, or `teacher_forced`: see `reversal_outputs`). Output position i is input position length + 1 - i:
    the first output is the last symbol read."""
    return accuracy_by_position(*reversal_outputs(model, task, length, device, seed, teacher_forced))
