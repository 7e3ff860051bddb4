"""Exploding gradients, and the cure everyone uses: clip the gradient's global norm (lesson 01).

Backpropagation through time multiplies the gradient by W_hh^T diag(1 - h^2) once per step. Lesson 01's
vanishing gradient is what happens when that product shrinks vectors; when W_hh is large enough that it
stretches them, the same product grows geometrically and, now and then, one batch produces a gradient
thousands of times larger than usual. Plain SGD then takes a step thousands of times too long.

* `set_recurrent_gain`: overwrite a recurrent matrix with `gain` times a random orthogonal matrix, so every
  singular value is exactly `gain` (gain > 1 stretches every direction: the exploding side).
* `clip_grad_norm`: global-norm clipping written out; the same arithmetic as `torch.nn.utils.clip_grad_norm_`.
* `sgd_run`: plain SGD, optionally clipped, recording the loss and the gradient norm (before clipping) per step.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import torch
import torch.nn as nn


@torch.no_grad()
def set_recurrent_gain(weight: torch.Tensor, gain: float, generator: torch.Generator | None = None) -> None:
    """In place: `weight` (a square matrix) becomes `gain` x a random orthogonal matrix."""
    if weight.dim() != 2 or weight.shape[0] != weight.shape[1]:
        raise ValueError(f"weight: expected a square matrix, got shape {tuple(weight.shape)}")
    if not (isinstance(gain, (int, float)) and math.isfinite(gain) and gain > 0):
        raise ValueError(f"gain={gain!r}: expected a positive number")
    a = torch.randn(weight.shape, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r))          # a uniformly random orthogonal matrix (Mezzadri's fix)
    weight.copy_((gain * q).to(weight.dtype))


@torch.no_grad()
def clip_grad_norm(parameters: Iterable[torch.Tensor], max_norm: float) -> float:
    """Scale every gradient by min(1, max_norm / ||g||), where ||g|| is the norm of all gradients taken together
    as one vector. The direction is kept, only the length is capped. Returns ||g|| before clipping."""
    if not max_norm > 0:
        raise ValueError(f"max_norm={max_norm!r}: expected a positive number")
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])).item()
    scale = max_norm / (total + 1e-6)              # the 1e-6 as in PyTorch, so the two agree exactly
    if scale < 1:
        for g in grads:
            g.mul_(scale)
    return total


class SGDRun(NamedTuple):
    losses: list[float]         # the training loss at each step
    grad_norms: list[float]     # the global gradient norm at each step, before any clipping


def sgd_run(model: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor], get_batch: Callable[[int], Any],
            steps: int, lr: float, clip: float | None = None, device: torch.device | str = "cpu") -> SGDRun:
    """Plain SGD (no momentum, no adaptive step sizes, so a huge gradient means a huge step) for `steps` steps.

    `clip`: cap the global gradient norm at this value before each step; None: no clipping. A run whose loss
    turns non-finite keeps going (its weights are NaN from then on), so every run records `steps` entries.
    """
    if steps < 0 or not lr > 0:
        raise ValueError(f"need steps >= 0 and lr > 0, got steps={steps}, lr={lr}")
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    losses, norms = [], []
    for step in range(steps):
        batch = get_batch(step)
        batch = tuple(t.to(device) for t in batch) if isinstance(batch, (tuple, list)) else batch.to(device)
        loss = loss_fn(model, batch)
        for p in params:
            p.grad = None
        loss.backward()
        norm = clip_grad_norm(params, clip) if clip is not None else clip_grad_norm(params, math.inf)
        with torch.no_grad():
            for p in params:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-lr)
        losses.append(loss.item())
        norms.append(norm)
    return SGDRun(losses, norms)
