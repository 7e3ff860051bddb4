"""Scaled dot-product and multi-head attention (lesson 05): a query looks at a set of keys, turns their match
scores into weights that sum to one, and returns the weighted average of the values.

Lesson 04's additive score lives with the translation models (course_lib.translation.additive_attention).
Masks (padding, causal) are built in one place, here, for every model of the course.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.checks import integer

# Mask convention, used by every function below and by PyTorch's scaled_dot_product_attention:
# a boolean tensor, True where a query MAY look at a key, broadcastable to (batch, heads, queries, keys).


def causal_mask(size: int, device: torch.device | str | None = None, queries: int | None = None) -> torch.Tensor:
    """(size, size) bool, True on and below the diagonal: position i may look at positions 0..i only.

    `queries` < size keeps the last rows only: the newest positions of a sequence whose earlier keys are cached.
    """
    queries = size if queries is None else queries
    if not 1 <= queries <= size:
        raise ValueError(f"causal_mask needs 1 <= queries <= size, got queries={queries}, size={size}")
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()[size - queries:]


def key_mask(real: torch.Tensor) -> torch.Tensor:
    """(batch, keys) bool, True at real tokens -> (batch, 1, 1, keys), which broadcasts over heads and queries."""
    if real.dim() != 2 or real.dtype != torch.bool:
        raise ValueError(f"expected a bool mask of shape (batch, length), got {real.dtype} {tuple(real.shape)}")
    return real[:, None, None, :]


def padding_mask(tokens: torch.Tensor, pad_id: int) -> torch.Tensor:
    """(batch, 1, 1, keys) bool, True at real tokens: nobody looks at padding. tokens: (batch, keys) ids."""
    if tokens.dim() != 2:
        raise ValueError(f"padding_mask expects token ids of shape (batch, length), got {tuple(tokens.shape)}")
    return key_mask(tokens != pad_id)


def check_mask(mask: torch.Tensor | None) -> None:
    """A mask must be a bool tensor (True = may look). A float 0/1 mask would be read by SDPA as an additive
    bias (adding 0 or 1 to a score blocks nothing), so it is refused rather than guessed at."""
    if mask is None:
        return
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise TypeError(f"mask: expected a bool tensor (True where a query may look at a key), got {got}; "
                        "convert a 0/1 mask with mask.bool() (or mask == 1)")


def combine_masks(*masks: torch.Tensor | None) -> torch.Tensor | None:
    """A query may look at a key only if every mask allows it (None means 'no restriction')."""
    result = None
    for m in masks:
        if m is not None:
            result = m if result is None else result & m
    return result


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None, dropout: float = 0.0
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(d)) v, written out. q: (..., Lq, d), k: (..., Lk, d), v: (..., Lk, dv).

    Returns (output (..., Lq, dv), weights (..., Lq, Lk)); each row of weights sums to one.
    `mask` is bool (True = may look), broadcastable to (..., Lq, Lk).
    """
    check_mask(mask)
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}: need q and k to share "
                         "the last dim and k and v the number of keys")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])   # dividing by sqrt(d) keeps the softmax soft
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    if mask is not None:
        weights = weights.masked_fill(~mask, 0.0)   # a query with nothing to look at gets 0, not NaN (as SDPA)
    if dropout:
        weights = F.dropout(weights, dropout)
    return weights @ v, weights


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
           causal: bool = False, dropout: float = 0.0) -> torch.Tensor:
    """The same function through `F.scaled_dot_product_attention` (fused kernels; flash attention on GPUs).

    `causal=True` without another mask lets the fused kernel skip the masked half instead of reading a mask.
    `mask` is bool (True = may look); a float mask is refused (SDPA would add it to the scores as a bias).
    """
    check_mask(mask)
    if causal and (mask is not None or q.shape[-2] != k.shape[-2]):
        # SDPA's own is_causal aligns the corner top-left; build the mask when queries are the newest keys
        mask, causal = combine_masks(mask, causal_mask(k.shape[-2], q.device, queries=q.shape[-2])), False
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=causal)


class MultiHeadAttention(nn.Module):
    """Several attentions side by side, each on its own d_model / n_heads slice of learned projections.

    Self-attention: `mha(x)`. Cross-attention: `mha(x, memory)` (queries from x, keys and values from memory).
    Training uses the fused path; with `keep_weights = True` (see `record_attention`) it runs the written-out
    path and keeps the weights (batch, heads, queries, keys) in `last_weights` for plotting.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        integer("d_model", d_model, 1)
        integer("n_heads", n_heads, 1)        # before the divisibility check: n_heads=0 is no ZeroDivisionError
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.d_model, self.n_heads, self.head_dim, self.dropout = d_model, n_heads, d_model // n_heads, dropout
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self.keep_weights = False
        self.last_weights: torch.Tensor | None = None

    def _split(self, x: torch.Tensor) -> torch.Tensor:      # (B, L, d_model) -> (B, heads, L, head_dim)
        return x.view(x.shape[0], x.shape[1], self.n_heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                causal: bool = False) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"expected input (batch, length, {self.d_model}), got {tuple(x.shape)}")
        check_mask(mask)
        memory = x if memory is None else memory
        q, k, v = self._split(self.q_proj(x)), self._split(self.k_proj(memory)), self._split(self.v_proj(memory))
        dropout = self.dropout if self.training else 0.0
        if self.keep_weights:
            if causal:
                mask = combine_masks(mask, causal_mask(k.shape[-2], x.device, queries=q.shape[-2]))
            out, self.last_weights = scaled_dot_product_attention(q, k, v, mask, dropout)
        else:
            out = attend(q, k, v, mask, causal, dropout)
        return self.out_proj(out.transpose(1, 2).reshape(x.shape[0], x.shape[1], self.d_model))


def as_torch_attention(mha: MultiHeadAttention) -> nn.MultiheadAttention:
    """PyTorch's `nn.MultiheadAttention` (batch_first) holding copies of our weights: the oracle to compare with.
    Remember that its boolean masks mean the opposite of ours: True = blocked."""
    theirs = nn.MultiheadAttention(mha.d_model, mha.n_heads, dropout=mha.dropout, batch_first=True,
                                   bias=mha.q_proj.bias is not None)
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.cat([mha.q_proj.weight, mha.k_proj.weight, mha.v_proj.weight]))
        theirs.out_proj.weight.copy_(mha.out_proj.weight)
        if mha.q_proj.bias is not None:
            theirs.in_proj_bias.copy_(torch.cat([mha.q_proj.bias, mha.k_proj.bias, mha.v_proj.bias]))
            theirs.out_proj.bias.copy_(mha.out_proj.bias)
    return theirs.to(mha.q_proj.weight.device)


@contextlib.contextmanager
def record_attention(model: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """Inside the block, every MultiHeadAttention of `model` keeps its weights: the yielded dict maps each
    module's name to its latest (batch, heads, queries, keys) weights."""
    record: dict[str, torch.Tensor] = {}
    modules = [(name, m) for name, m in model.named_modules() if isinstance(m, MultiHeadAttention)]
    hooks = [m.register_forward_hook(lambda mod, args, out, name=name: record.__setitem__(name, mod.last_weights))
             for name, m in modules]
    for _, m in modules:
        m.keep_weights = True
    try:
        yield record
    finally:
        for h in hooks:
            h.remove()
        for _, m in modules:
            m.keep_weights, m.last_weights = False, None
