"""Language-model data: a corpus as one long tensor of ids, cut into random windows for training and a
fixed set of windows for validation. Shared by the char-RNN (01, 02) and GPT (06) lessons."""
from __future__ import annotations

import math

import torch


def window_batch(data: torch.Tensor, block: int, batch: int, generator: torch.Generator):
    """`batch` random windows of `block` tokens: inputs x and next-token targets y (y = x shifted by one)."""
    if len(data) <= block:
        raise ValueError(f"the corpus has {len(data)} tokens; need more than block={block}")
    starts = torch.randint(len(data) - block, (batch,), generator=generator)
    x = torch.stack([data[s:s + block] for s in starts.tolist()])
    y = torch.stack([data[s + 1:s + 1 + block] for s in starts.tolist()])
    return x, y


def batches_by_step(data: torch.Tensor, block: int, batch: int, seed: int = 0):
    """A `get_batch(step)` for `Trainer`: the batch depends only on (seed, step), so resumed runs match."""
    def get_batch(step: int):
        return window_batch(data, block, batch, torch.Generator().manual_seed(seed * 1_000_003 + step))
    return get_batch


def lm_loss(model, batch):
    """Loss function for models whose forward(idx, targets) returns (logits, loss)."""
    x, y = batch
    return model(x, y)[1]


@torch.no_grad()
def evaluate_lm(model, data: torch.Tensor, block: int, batch: int = 32, batches: int = 10, seed: int = 1234,
                device=None) -> float:
    """Mean next-token cross-entropy (nats per token) over a fixed, seeded set of windows of `data`."""
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    device = device or next(model.parameters()).device
    total = 0.0
    for _ in range(batches):
        x, y = window_batch(data, block, batch, gen)
        out = model(x.to(device), y.to(device))
        total += float(out[1])
    model.train(was_training)
    return total / batches


def bits_per_char(nats_per_token: float, tokens: int, chars: int) -> float:
    """Convert a per-token loss to bits per character, so char and subword models compare fairly."""
    return nats_per_token * tokens / chars / math.log(2)


def uniform_loss(vocab_size: int) -> float:
    """The loss of a model that knows nothing: ln(vocab size)."""
    return math.log(vocab_size)


@torch.no_grad()
def evaluate_lm_full(model, data: torch.Tensor, block: int, batch: int = 64, device=None) -> float:
    """Mean next-token cross-entropy (nats per token) over *all* of `data`, read as consecutive windows of
    `block` tokens: the exact, noise-free version of `evaluate_lm` (every token predicted once)."""
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    x, y = data[:-1], data[1:]
    full = len(x) // block * block
    windows = [(x[:full].view(-1, block), y[:full].view(-1, block))]
    if full < len(x):
        windows.append((x[full:][None], y[full:][None]))   # the shorter last window
    total = 0.0
    for xs, ys in windows:
        for i in range(0, len(xs), batch):
            xb, yb = xs[i:i + batch].to(device), ys[i:i + batch].to(device)
            total += float(model(xb, yb)[1]) * yb.numel()
    model.train(was_training)
    return total / len(y)
