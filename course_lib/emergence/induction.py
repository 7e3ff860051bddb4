"""Induction heads (lesson 08; Olsson et al. 2022): the task that needs them, the scores that find them, and
where in training the loss falls off its cliff.

* `induction_batch`: random tokens with one segment (6-12 tokens by default) copied later in the sequence, both
  copies at random places. Only matching by *content* predicts the copy; a segment of fixed length at a fixed
  offset could be solved by position alone (`fixed_offset=True` builds that trap, for comparison).
* `repeated_tokens`: distinct random tokens, then the same tokens again (Olsson et al.'s standard probe).
* `prefix_matching_score`: attention from a token to the token right *after* its previous occurrence(s).
* `copying_score`: does a head's OV circuit raise the logit of the token it attends to?
* `masked_loss`, `evaluate_induction`, `cliff`, `steepest_rise`: losses on the two copies and where the fall happens.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

IGNORE = -100   # F.cross_entropy's ignore_index: targets that carry no loss


class InductionBatch(NamedTuple):
    x: torch.Tensor        # (B, T) inputs
    y: torch.Tensor        # (B, T) next-token targets
    first: torch.Tensor    # (B, T) bool: targets inside the first copy (after its first token): unpredictable
    repeat: torch.Tensor   # (B, T) bool: the same targets in the second copy: predictable by looking back


def induction_batch(batch: int, seq_len: int = 48, vocab: int = 32, min_len: int = 6, max_len: int = 12,
                    generator: torch.Generator | None = None, fixed_offset: bool = False) -> InductionBatch:
    """Sequences of `seq_len + 1` tokens (x and y are `seq_len` long) holding one segment twice.

    The segment's length is uniform in [min_len, max_len]; both copies sit at random, non-overlapping places
    (back to back is possible). Its tokens are distinct and appear nowhere else, so each token of the second
    copy has exactly one earlier occurrence; every other token is uniform over the rest of the vocabulary.
    With `fixed_offset` (the trap), the segment is the first `max_len` tokens and its copy follows at once.
    """
    n = seq_len + 1
    if not 2 <= min_len <= max_len or 2 * max_len > n or max_len >= vocab:
        raise ValueError(f"need 2 <= min_len <= max_len, 2 * max_len <= seq_len + 1 and max_len < vocab; "
                         f"got min_len={min_len}, max_len={max_len}, seq_len={seq_len}, vocab={vocab}")
    perm = torch.rand(batch, vocab, generator=generator).argsort(dim=1)      # a random permutation per row
    if fixed_offset:
        length = torch.full((batch, 1), max_len)
        p1, p2 = torch.zeros(batch, 1, dtype=torch.long), length.clone()
    else:
        length = torch.randint(min_len, max_len + 1, (batch, 1), generator=generator)
        room = n - 2 * length + 1                                             # start places for a and c
        a, c = (torch.rand(batch, 2, generator=generator) * room).long().sort(dim=1).values.unbind(1)
        p1, p2 = a[:, None], c[:, None] + length                              # p1 + length <= p2
    # the segment is perm[:, :length]; fillers are uniform over the rest, perm[:, length:]
    pick = length + (torch.rand(batch, n, generator=generator) * (vocab - length)).long()
    seq = perm.gather(1, pick.clamp(max=vocab - 1))
    pos = torch.arange(n)[None]
    for start in (p1, p2):
        rel = pos - start
        inside = (rel >= 0) & (rel < length)
        seq = torch.where(inside, perm.gather(1, rel.clamp(0, vocab - 1)), seq)
    # token s is predicted at target index s - 1; the copies' tokens 1 .. length-1 are the comparable ones
    target = torch.arange(seq_len)[None]
    first = (target >= p1) & (target < p1 + length - 1)
    repeat = (target >= p2) & (target < p2 + length - 1)
    return InductionBatch(seq[:, :-1], seq[:, 1:], first, repeat)


def induction_batches(batch: int, seed: int = 0, graded: str = "repeat", **task):
    """A `get_batch(step)` for the Trainer: (x, y) depending only on (seed, step), so runs are repeatable.

    `graded="repeat"`: only the second copy's targets carry loss (the rest is IGNORE); "all": every target.
    """
    if graded not in ("repeat", "all"):
        raise ValueError(f"graded={graded!r}: expected 'repeat' or 'all'")

    def get_batch(step: int):
        b = induction_batch(batch, generator=torch.Generator().manual_seed(seed * 1_000_003 + step), **task)
        return b.x, (b.y.masked_fill(~b.repeat, IGNORE) if graded == "repeat" else b.y)
    return get_batch


def repeated_tokens(batch: int, n: int, vocab: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, 2n): n distinct random tokens, then the same n again."""
    if n > vocab:
        raise ValueError(f"n={n} distinct tokens need a vocabulary of at least n, got {vocab}")
    first = torch.stack([torch.randperm(vocab, generator=generator)[:n] for _ in range(batch)])
    return torch.cat([first, first], dim=1)


def prefix_matching_score(attn: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """How much attention goes to the token right after an earlier occurrence of the current token.

    attn: (B, T, T) or (B, H, T, T), row t = where position t looks; tokens: (B, T), the same positions.
    For each query t whose token occurred before (at i < t), the score of that row is the total weight on
    positions i + 1; the result is the mean over such rows: a scalar, or one score per head (H,).
    A head that always looks at "what came after me last time" scores 1. Uniform causal attention scores
    the mean over those rows of (number of earlier occurrences) / (t + 1): on a string of n distinct tokens
    repeated, that is mean over t = n .. 2n-1 of 1 / (t + 1), about ln(2) / n.
    """
    squeeze = attn.dim() == 3
    if squeeze:
        attn = attn.unsqueeze(1)
    B, H, T, _ = attn.shape
    if tokens.shape != (B, T):
        raise ValueError(f"tokens must be (batch, time) = {(B, T)}, got {tuple(tokens.shape)}")
    same = tokens[:, :, None] == tokens[:, None, :]                                  # (B, t, i)
    earlier = torch.ones(T, T, dtype=torch.bool, device=tokens.device).tril(diagonal=-1)
    match = same & earlier                                                          # i < t, same token
    target = torch.zeros_like(match)
    target[:, :, 1:] = match[:, :, :-1]                                             # position i + 1 <= t
    rows = match.any(dim=-1)                                                        # (B, T)
    if not rows.any():
        raise ValueError("no token repeats an earlier one: the prefix-matching score is undefined")
    weight = (attn * target[:, None].to(attn.dtype)).sum(dim=-1)                    # (B, H, T)
    score = (weight * rows[:, None]).sum(dim=(0, 2)) / rows.sum()
    return score[0] if squeeze else score


def copying_score(model, layer: int, head: int) -> float:
    """Olsson et al.'s copying score of one head: the eigenvalues of its OV circuit read from token to token,
    M = W_E W_V^h W_O^h W_U (vocab x vocab), summarised as sum(Re lambda) / sum(|lambda|), in [-1, 1].

    Positive eigenvalues mean "attending to token a raises the logit of a": copying. A LayerNorm before the
    layer is applied to the token embeddings; the final LayerNorm's centring and gain are kept and its division
    by the norm (a positive number per row) is left out.
    """
    att = model.layers[layer]
    sl = slice(head * att.d_head, (head + 1) * att.d_head)
    with torch.no_grad():
        E = model.W_E.weight
        ln = model.ln[layer] if hasattr(model, "ln") else None
        if isinstance(ln, torch.nn.LayerNorm):
            E = ln(E)
        ov = E @ att.W_V.weight[sl].T @ att.W_O.weight[:, sl].T                 # (vocab, d): what each token writes
        ln_f = getattr(model, "ln_f", None)
        if isinstance(ln_f, torch.nn.LayerNorm):
            ov = (ov - ov.mean(dim=-1, keepdim=True)) * ln_f.weight
        M = ov @ model.W_U.weight.T                                             # (vocab, vocab)
        eig = torch.linalg.eigvals(M.double().cpu())
    return float(eig.real.sum() / eig.abs().sum())


def previous_token_score(attn: torch.Tensor) -> torch.Tensor:
    """Mean attention from each position t >= 1 to position t - 1: (B, H, T, T) -> (H,), (B, T, T) -> scalar."""
    return attn.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, -1))


def masked_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean cross-entropy over the positions where `mask` is True."""
    ce = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    return float(ce[mask].mean())


@torch.no_grad()
def evaluate_induction(model, batch: InductionBatch, head_mask: torch.Tensor | None = None) -> dict[str, float]:
    """Loss on both copies, and each head's prefix-matching score, on a fixed batch.

    Keys: "first_loss", "repeat_loss", and "prefix_L{layer}H{head}" for every head.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x, y = batch.x.to(device), batch.y.to(device)
    run = model.run(x, head_mask=head_mask)
    out = {"first_loss": masked_loss(run.logits, y, batch.first.to(device)),
           "repeat_loss": masked_loss(run.logits, y, batch.repeat.to(device))}
    for layer, attn in enumerate(run.attn):
        for head, score in enumerate(prefix_matching_score(attn, x).tolist()):
            out[f"prefix_L{layer}H{head}"] = score
    model.train(was_training)
    return out


class Cliff(NamedTuple):
    start: int          # the step where the window opens
    end: int            # the step where it closes
    fall: float         # how much of the whole fall happens inside it (0..1)
    width: float        # (end - start) / the run's length


def cliff(steps: Sequence[int], losses: Sequence[float], share: float = 0.7) -> Cliff:
    """The shortest window of evaluations over which the loss falls by `share` of its whole fall (first
    evaluation minus last): a phase change has a narrow one, a slide a wide one."""
    s, l = np.asarray(steps, float), np.asarray(losses, float)
    total = l[0] - l[-1]
    if len(s) < 2 or total <= 0:
        return Cliff(int(s[0]), int(s[-1]), 0.0, 1.0)
    best = (math.inf, 0, len(s) - 1)
    for a in range(len(s)):
        for b in range(a + 1, len(s)):
            if l[a] - l[b] >= share * total:
                if s[b] - s[a] < best[0]:
                    best = (s[b] - s[a], a, b)
                break          # a later b only widens the window
    _, a, b = best
    return Cliff(int(s[a]), int(s[b]), float((l[a] - l[b]) / total), float((s[b] - s[a]) / (s[-1] - s[0])))


def steepest_rise(steps: Sequence[int], values: Sequence[float]) -> tuple[int, int]:
    """The pair of consecutive evaluations (step before, step after) between which `values` rise the most."""
    v = np.diff(np.asarray(values, float))
    i = int(np.argmax(v))
    return int(steps[i]), int(steps[i + 1])
