"""Smooth and sharp metrics (lesson 08; Schaeffer et al. 2023): completing held-out words scored per character,
by log-probability and by exact match of the whole word; any fixed-length answer (`answer_correct`: section 5's
written-out sums) scored position by position. Exact match is a product of per-character
successes, which is why it can look like a sudden jump while the per-character figures climb smoothly.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .induction import IGNORE


def completion_items(text: str, n: int, min_len: int = 7, given: int = 3, context: int = 48,
                     seed: int = 0, max_len: int | None = None) -> list[tuple[str, str]]:
    """`n` (prompt, answer) pairs from words of `min_len` (.. `max_len`) letters in `text`: the prompt is the
    `context` characters before the word plus its first `given` letters; the answer is the rest of the word."""
    found = [m for m in re.finditer(r"(?<![A-Za-z'])[A-Za-z]{%d,}(?![A-Za-z'])" % min_len, text)
             if m.start() >= context and (max_len is None or len(m.group()) <= max_len)]
    if len(found) < n:
        raise ValueError(f"only {len(found)} words of >= {min_len} letters in the text, {n} asked for")
    rng = np.random.default_rng(seed)
    picks = sorted(rng.choice(len(found), size=n, replace=False).tolist())
    return [(text[m.start() - context:m.start() + given], m.group()[given:]) for m in (found[i] for i in picks)]


@dataclass
class Completion:
    char_accuracy: float         # share of answer characters whose greedy next-character guess is right
    logprob: float               # mean log-probability of a whole answer (nats; 0 is certain)
    exact_match: float           # share of answers whose every character is right: greedy completes the word
    predicted_exact: float       # mean over answers of char_accuracy ** (answer length): errors independent
    correct: torch.Tensor        # (n_words, longest answer) bool, False past each answer's end
    lengths: torch.Tensor        # (n_words,)


def exact_from_correct(correct: torch.Tensor, lengths: torch.Tensor) -> float:
    """Exact match from a per-character correctness table: a word counts when all its characters do."""
    inside = torch.arange(correct.shape[1])[None] < lengths[:, None]
    return float((correct | ~inside).all(dim=1).float().mean())


@torch.no_grad()
def word_completion(model, encode, items: Sequence[tuple[str, str]], batch: int = 128) -> Completion:
    """Teacher-forced scoring of each answer after its prompt.

    Greedy decoding writes the whole answer if and only if every teacher-forced argmax is right (a first
    wrong character is where greedy leaves the word), so exact match is read off the same forward pass.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    block = model.cfg.block_size
    rows, lengths, logps = [], [], []
    for i in range(0, len(items), batch):
        chunk = items[i:i + batch]
        seqs = [encode(p + a) for p, a in chunk]
        n_ans = [len(encode(a)) for _, a in chunk]
        width = max(len(s) for s in seqs) - 1
        if width > block:
            raise ValueError(f"prompt + answer is {width + 1} tokens; the model reads at most {block}")
        x = torch.zeros(len(seqs), width, dtype=torch.long)
        y = torch.full((len(seqs), width), IGNORE, dtype=torch.long)
        for r, s in enumerate(seqs):                 # right-padded: a causal model never sees the padding
            x[r, :len(s) - 1] = torch.tensor(s[:-1])
            y[r, :len(s) - 1] = torch.tensor(s[1:])
        logits = model(x.to(device)).float().cpu()
        for r, (s, k) in enumerate(zip(seqs, n_ans)):
            end = len(s) - 1                         # the answer's k characters are the last k targets
            lg, tg = logits[r, end - k:end], y[r, end - k:end]
            rows.append(lg.argmax(-1) == tg)
            lengths.append(k)
            logps.append(float(torch.log_softmax(lg, -1).gather(1, tg[:, None]).sum()))
    model.train(was_training)
    lengths_t = torch.tensor(lengths)
    correct = torch.zeros(len(rows), int(lengths_t.max()), dtype=torch.bool)
    for r, row in enumerate(rows):
        correct[r, :len(row)] = row
    acc = float(torch.cat(rows).float().mean())
    return Completion(char_accuracy=acc, logprob=float(np.mean(logps)),
                      exact_match=exact_from_correct(correct, lengths_t),
                      predicted_exact=float((acc ** lengths_t.double()).mean()), correct=correct, lengths=lengths_t)


@torch.no_grad()
def answer_correct(model, rows: torch.Tensor, prompt_len: int, batch: int = 512) -> torch.Tensor:
    """(N, answer length) bool, teacher-forced: is the model's top guess for each answer token right, given the
    prompt and the answer's earlier tokens? `rows` (N, T) hold prompt + correct answer, all of one length.

    Greedy decoding writes a row's whole answer if and only if its row of this table is all True, so exact
    match (`.all(1).mean()`) and per-token accuracy (`.mean()`) come from one forward pass.
    """
    if rows.dim() != 2 or not 0 < prompt_len < rows.shape[1]:
        raise ValueError(f"rows must be (N, T) with 0 < prompt_len < T, got shape {tuple(rows.shape)} and "
                         f"prompt_len={prompt_len}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(rows), batch):
        chunk = rows[i:i + batch].to(device)
        logits = model(chunk[:, :-1])[:, prompt_len - 1:]          # the guesses for tokens prompt_len .. T-1
        out.append((logits.argmax(-1) == chunk[:, prompt_len:]).cpu())
    model.train(was_training)
    return torch.cat(out)
