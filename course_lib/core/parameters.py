"""Counting a model's parameters: the one helper every lesson, model and LoRA use."""
from __future__ import annotations

import torch.nn as nn


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Numbers in `model`'s parameters (each shared tensor once, e.g. tied embeddings); with `trainable_only`,
    only those that will receive gradients (requires_grad)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"count_parameters takes an nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
