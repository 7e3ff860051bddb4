"""Synthetic sequence tasks, generated with a seed: data whose difficulty we control exactly.

`delayed_recall`: see a symbol, then T distractors, then a cue; answer with the first symbol. Nothing but
memory solves it, and T says how long the memory must last.

`reversal`: read a sequence, write it backwards. Lessons 03 and 04 use it to measure how much a fixed-size
summary of the input can hold, as a function of the length.
"""
from __future__ import annotations

import torch


def delayed_recall(batch: int, delay: int, n_symbols: int = 8, n_distractors: int = 8,
                   generator: torch.Generator | None = None):
    """Sequences of length delay + 2 over a vocabulary of n_symbols + n_distractors + 1 tokens.

    tokens 0..n_symbols-1 are the symbols to remember, the next n_distractors are noise, the last is the cue.
    Returns (x (batch, delay + 2), y (batch,)). Chance accuracy is 1 / n_symbols.
    """
    if delay < 0:
        raise ValueError("delay must be >= 0")
    symbol = torch.randint(n_symbols, (batch,), generator=generator)
    noise = n_symbols + torch.randint(n_distractors, (batch, delay), generator=generator)
    cue = torch.full((batch, 1), n_symbols + n_distractors)
    x = torch.cat([symbol[:, None], noise, cue], dim=1)
    return x, symbol


def delayed_recall_vocab(n_symbols: int = 8, n_distractors: int = 8) -> int:
    return n_symbols + n_distractors + 1


def reversal(batch: int, length: int, n_symbols: int = 10, first_id: int = 0,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random sequences x (batch, length) of symbols first_id .. first_id + n_symbols - 1, and y = x reversed.

    The first output word depends on the last input word and the last output on the first, so a model that
    squeezes x into one vector must carry every symbol, in order, through that vector; `length` sets how
    much it has to carry.
    """
    if length < 1 or n_symbols < 2:
        raise ValueError(f"need length >= 1 and n_symbols >= 2, got length={length}, n_symbols={n_symbols}")
    x = first_id + torch.randint(n_symbols, (batch, length), generator=generator)
    return x, x.flip(1)
