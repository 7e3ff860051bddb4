"""Additive attention (Bahdanau et al., 2015, lesson 04): the decoder scores every encoder state with a small
feed-forward net, turns the scores into weights that sum to one, and reads the weighted average.

`UniformAttention` is its ablation: the same module (same parameters) whose weights are 1/S on each of the S real
source tokens, whatever the query. A model trained with it still reaches every encoder state but cannot choose
among them, which separates "access to every state" from "learned alignment" (lesson 04).
"""
from __future__ import annotations

import torch
import torch.nn as nn


class AdditiveAttention(nn.Module):
    """Bahdanau et al. (2015): score(s, h_j) = v^T tanh(W s + U h_j); weights = softmax_j(score);
    context = sum_j weights_j h_j.

    query s: the decoder's state (B, query_dim). keys h: the encoder's outputs (B, S, key_dim), which are also
    the values averaged. mask (B, S) bool, True at real tokens: padding gets weight exactly 0. A small
    feed-forward net scores each pair, so query and keys may have different sizes (the dot product of
    lesson 05 needs equal ones). U h_j is the same at every decoder step: `project_keys` computes it once.
    """

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int):
        super().__init__()
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=False)   # W
        self.key_proj = nn.Linear(key_dim, attn_dim)                    # U (with the bias of the tanh layer)
        self.v = nn.Linear(attn_dim, 1, bias=False)                     # v

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        return self.key_proj(keys)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor,
                projected_keys: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (context (B, key_dim), weights (B, S)); each row of weights sums to one."""
        _check(query, keys, mask)
        if projected_keys is None:
            projected_keys = self.key_proj(keys)
        scores = self.v(torch.tanh(projected_keys + self.query_proj(query)[:, None, :])).squeeze(-1)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)   # exp(-inf) = 0: padding ignored
        return torch.bmm(weights[:, None, :], keys).squeeze(1), weights


def _check(query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> None:
    if query.dim() != 2 or keys.dim() != 3 or mask.shape != keys.shape[:2] or len(query) != len(keys):
        raise ValueError(f"expected query (B, q), keys (B, S, k), mask (B, S); got {tuple(query.shape)}, "
                         f"{tuple(keys.shape)}, {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be bool (True at real tokens), got {mask.dtype}")
    if not mask.any(dim=-1).all():
        raise ValueError("a row of the mask has no real token: there is nothing to attend to")


class UniformAttention(AdditiveAttention):
    """The ablation of lesson 04: weights 1/S on each of a sentence's S real tokens (0 on padding), whatever the
    query, so the context is the plain mean of the encoder's outputs. It keeps AdditiveAttention's parameters,
    so a model built with it has the same size, but they play no part (their gradient is None): the model can
    reach every encoder state, it just cannot choose among them. The context does not change from one decoder
    step to the next, so a decoder may compute it once per sentence."""

    def project_keys(self, keys: torch.Tensor) -> None:
        return None                         # nothing to precompute: the scorer is not used

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor,
                projected_keys: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        _check(query, keys, mask)
        weights = mask.to(keys.dtype) / mask.sum(dim=-1, keepdim=True).to(keys.dtype)
        return torch.bmm(weights[:, None, :], keys).squeeze(1), weights
