"""Additive attention (Bahdanau et al., 2015, lesson 04): the decoder scores every encoder state with a small
feed-forward net, turns the scores into weights that sum to one, and reads the weighted average.
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
        if query.dim() != 2 or keys.dim() != 3 or mask.shape != keys.shape[:2] or len(query) != len(keys):
            raise ValueError(f"expected query (B, q), keys (B, S, k), mask (B, S); got {tuple(query.shape)}, "
                             f"{tuple(keys.shape)}, {tuple(mask.shape)}")
        if not mask.any(dim=-1).all():
            raise ValueError("a row of the mask has no real token: there is nothing to attend to")
        if projected_keys is None:
            projected_keys = self.key_proj(keys)
        scores = self.v(torch.tanh(projected_keys + self.query_proj(query)[:, None, :])).squeeze(-1)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)   # exp(-inf) = 0: padding ignored
        return torch.bmm(weights[:, None, :], keys).squeeze(1), weights
