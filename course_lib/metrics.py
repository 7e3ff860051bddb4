"""Metrics shared by the lessons: accuracy, perplexity, confidence intervals (and BLEU, lesson 03)."""
from __future__ import annotations

import math

import torch


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of rows whose arg-max equals the target."""
    return (logits.argmax(-1) == targets).float().mean().item()


def perplexity(nats: float) -> float:
    return math.exp(nats)


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval for a proportion (better than the normal one near 0 or 1)."""
    if n <= 0:
        raise ValueError("n must be positive")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half
