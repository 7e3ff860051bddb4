"""In-context learning (lesson 08): does a language model use its context, and can a model learn a task from
examples in the prompt alone?

* `per_position_loss`, `icl_score`: loss against position in the window, and late minus early (Olsson et al.).
* `repeat_losses`: a random string, then the same string again: is the second copy cheaper?
* `few_shot_batch`: (item, label) pairs whose item -> label mapping is drawn fresh for every sequence, as in
  Chan et al. (2022): no weight can store the mapping, so only reading the context helps.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .induction import IGNORE


@torch.no_grad()
def per_position_loss(model, data: torch.Tensor, block: int, windows: int = 256, batch: int = 64,
                      seed: int = 0) -> torch.Tensor:
    """Mean next-token loss at each position 0 .. block-1 of `windows` random windows of `data`: (block,).

    Position t predicts token t + 1 having seen t + 1 tokens; the later positions have more context to use.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    starts = torch.randint(len(data) - block - 1, (windows,), generator=gen)
    total = torch.zeros(block)
    for i in range(0, windows, batch):
        s = starts[i:i + batch]
        x = torch.stack([data[j:j + block] for j in s.tolist()]).to(device)
        y = torch.stack([data[j + 1:j + block + 1] for j in s.tolist()]).to(device)
        logits = model(x)
        total += F.cross_entropy(logits.transpose(1, 2).float(), y, reduction="none").sum(0).cpu()
    model.train(was_training)
    return total / windows


def icl_score(loss_by_position: torch.Tensor | Sequence[float], early: int | None = None, late: int | None = None,
              band: int = 2) -> float:
    """Olsson et al.'s in-context learning score: the loss late in the context minus the loss early in it.

    They compare the 500th and the 50th token of a 512-token window; by default we keep those proportions for
    the window we have (for 128: positions 125 and 12), each averaged over +-`band` neighbours.
    Negative: the model predicts better when it has read more.
    """
    loss = torch.as_tensor(loss_by_position, dtype=torch.float64)
    T = len(loss)
    early = round(T * 50 / 512) if early is None else early
    late = min(round(T * 500 / 512), T - 1 - band) if late is None else late
    pick = lambda c: loss[max(0, c - band):c + band + 1].mean()
    return float(pick(late) - pick(early))


@torch.no_grad()
def repeat_losses(model, tokens: torch.Tensor) -> tuple[float, float]:
    """(loss on the first copy, loss on the second) of sequences made of a string twice, (B, 2n).

    The first token of each copy is left out of both means: nothing predicts it.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    tokens = tokens.to(device)
    n = tokens.shape[1] // 2
    logits = model(tokens[:, :-1])
    ce = F.cross_entropy(logits.transpose(1, 2).float(), tokens[:, 1:], reduction="none")   # target j + 1
    model.train(was_training)
    return float(ce[:, :n - 1].mean()), float(ce[:, n:].mean())


class FewShotBatch(NamedTuple):
    x: torch.Tensor        # (B, 2K - 1): item, label, item, label, ..., item
    y: torch.Tensor        # (B, 2K - 1): the label after each item, IGNORE elsewhere
    items: torch.Tensor    # (B, K)
    labels: torch.Tensor   # (B, K) label ids 0 .. n_labels - 1
    seen: torch.Tensor     # (B, K) bool: the item already appeared earlier in its sequence


def few_shot_batch(batch: int, n_pairs: int = 8, n_items: int = 32, n_labels: int = 4, n_way: int = 4,
                   bursty: bool = True, generator: torch.Generator | None = None) -> FewShotBatch:
    """Sequences of `n_pairs` (item, label) pairs; token ids: items 0 .. n_items-1, labels n_items + label.

    Every sequence draws its own mapping item -> label, so the label of an item is knowable only from an
    earlier pair of the same sequence. `bursty` (Chan et al.'s "bursty" data): the items come from `n_way`
    classes of this sequence, so each item recurs in its sequence; the classes get distinct labels when
    `n_way <= n_labels`, otherwise each class its own random label (8 classes, 2 labels: 8 bindings to hold,
    each worth one bit). Not bursty: every item is uniform over all `n_items` (a repeat is rare) and labels are
    independent draws.
    """
    if bursty and not 1 <= n_way <= n_items:
        raise ValueError(f"bursty sequences need 1 <= n_way <= n_items ({n_items}), got n_way={n_way}")
    items = torch.empty(batch, n_pairs, dtype=torch.long)
    labels = torch.empty(batch, n_pairs, dtype=torch.long)
    for b in range(batch):
        mapping = torch.randint(n_labels, (n_items,), generator=generator)     # a fresh mapping per sequence
        if bursty:
            classes = torch.randperm(n_items, generator=generator)[:n_way]
            if n_way <= n_labels:                                           # distinct labels
                mapping[classes] = torch.randperm(n_labels, generator=generator)[:n_way]
            items[b] = classes[torch.randint(n_way, (n_pairs,), generator=generator)]
        else:
            items[b] = torch.randint(n_items, (n_pairs,), generator=generator)
        labels[b] = mapping[items[b]]
    seen = (items[:, :, None] == items[:, None, :]).tril(diagonal=-1).any(dim=-1)
    seq = torch.stack([items, labels + n_items], dim=2).flatten(1)                  # (B, 2K)
    y = torch.full((batch, 2 * n_pairs - 1), IGNORE, dtype=torch.long)
    y[:, 0::2] = seq[:, 1::2]                                                       # item -> its label
    return FewShotBatch(seq[:, :-1], y, items, labels, seen)


def few_shot_batches(batch: int, seed: int = 0, **task):
    """`get_batch(step)` for the Trainer: (x, y) from `few_shot_batch`, seeded by (seed, step)."""
    def get_batch(step: int):
        b = few_shot_batch(batch, generator=torch.Generator().manual_seed(seed * 1_000_003 + step), **task)
        return b.x, b.y
    return get_batch


@torch.no_grad()
def few_shot_accuracy(model, batch: FewShotBatch, n_items: int, n_labels: int) -> dict[str, torch.Tensor | float]:
    """Accuracy at each pair k = 0 .. K-1 (after k examples), choosing among the label tokens only.

    Returns "by_k" (K,), "seen" (items shown before), "unseen" and "lookup": the accuracy of the rule
    "copy the label if the item was shown, else guess", by position (what reading the context is worth);
    "majority_seen": on items shown before, the accuracy of the rule "say the label shown most often so far in
    this sequence" (ties: the lowest label id), which reads the context but binds no label to any item.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    logits = model(batch.x.to(device))[:, 0::2, n_items:n_items + n_labels].float().cpu()     # (B, K, labels)
    model.train(was_training)
    correct = (logits.argmax(-1) == batch.labels).float()
    seen = batch.seen
    counts = F.one_hot(batch.labels, n_labels).cumsum(1) - F.one_hot(batch.labels, n_labels)   # labels before k
    majority = (counts.argmax(-1) == batch.labels)
    return {"by_k": correct.mean(0),
            "majority_seen": float(majority[seen].float().mean()) if seen.any() else float("nan"),
            "seen": float(correct[seen].mean()) if seen.any() else float("nan"),
            "unseen": float(correct[~seen].mean()) if (~seen).any() else float("nan"),
            "lookup": (seen.float() + (~seen).float() / n_labels).mean(0)}
