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


@torch.no_grad()
def reversal_accuracy(model: nn.Module, task: ReversalTask, length: int, device: torch.device | str,
                      seed: int = 12345) -> float:
    """Exact match: the fraction of fresh sequences reversed without a single wrong (or missing) symbol."""
    was_training = model.training
    model.eval()
    v = task.vocab()
    batch = reversal_batch(task, task.eval_examples, length, torch.Generator().manual_seed(seed + length))
    out = greedy(model, batch["src"].to(device), batch["src_mask"].to(device), v.bos_id, v.eos_id, length + 1)
    model.train(was_training)
    targets = [row[:length] for row in batch["tgt_out"].tolist()]
    return sum(o == t for o, t in zip(out, targets)) / len(targets)
