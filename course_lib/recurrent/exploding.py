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


def effective_lr(run: SGDRun, lr: float, clip: float) -> float:
    """The clipped run's average step multiplier: lr x the mean over its steps of min(1, clip / ||g||), the factor
    by which clipping shortened each step (1 on a step it left alone). An unclipped run at this learning rate
    takes steps of the same average scale, so it is the control for "clipping is just a smaller step"."""
    norms = torch.tensor(run.grad_norms, dtype=torch.float64)
    norms = norms[torch.isfinite(norms)]
    if not len(norms):
        raise ValueError("effective_lr: the run has no finite gradient norm")
    return lr * torch.clamp(clip / norms, max=1.0).mean().item()


class ClippingTest(NamedTuple):
    unclipped: SGDRun            # (a) plain SGD at the given lr
    clipped: SGDRun              # (b) the same, clipped at `threshold`
    smaller_step: SGDRun         # (c) unclipped again, at `small_lr`
    median_norm: float           # the median gradient norm of run (a): what an ordinary step looks like
    threshold: float             # multiple x median_norm: clipping then acts on spikes only
    small_lr: float              # effective_lr of run (b)
    models: tuple                # the three trained models, in the order a, b, c


def clipping_test(make_model: Callable[[], nn.Module], loss_fn: Callable[[nn.Module, Any], torch.Tensor],
                  get_batch: Callable[[int], Any], steps: int, lr: float, multiple: float = 5.0,
                  device: torch.device | str = "cpu") -> ClippingTest:
    """A fair test of gradient clipping: three runs from the same start (`make_model()` must return the same
    weights on every call), on the same batches, for the same number of steps.

    (a) unclipped at `lr`; (b) clipped at `multiple` x the median gradient norm of (a), so that the clip only
    touches steps far above an ordinary one; (c) unclipped at (b)'s effective learning rate (`effective_lr`).
    If (b) beats (a) but (c) does as well as (b), what helped was the shorter average step, not the clip.
    """
    if not multiple > 0:
        raise ValueError(f"multiple={multiple!r}: expected a positive number")
    models = [make_model() for _ in range(3)]
    unclipped = sgd_run(models[0], loss_fn, get_batch, steps, lr, device=device)
    norms = torch.tensor(unclipped.grad_norms, dtype=torch.float64)
    norms = norms[torch.isfinite(norms)]
    if not len(norms):
        raise ValueError("clipping_test: the unclipped run has no finite gradient norm")
    median = norms.median().item()
    threshold = multiple * median
    clipped = sgd_run(models[1], loss_fn, get_batch, steps, lr, clip=threshold, device=device)
    small_lr = effective_lr(clipped, lr, threshold)
    smaller = sgd_run(models[2], loss_fn, get_batch, steps, small_lr, device=device)
    return ClippingTest(unclipped, clipped, smaller, median, threshold, small_lr, tuple(models))
