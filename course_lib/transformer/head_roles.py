"""Do attention heads specialise? Two numbers per head, read off recorded attention weights (lesson 05).

* `offset_profile`: on average, how much of a query's weight lands on the key `d` positions away, for each
  offset d in [-window, window]. A head whose weight sits on one offset (the word before, the word after, the
  word itself) is *positional*: it looks at the same place whatever the words are. A head with no favourite
  offset decides where to look from the words themselves.
* `attention_entropy`: how spread out each query's weights are, as a fraction of the most spread they could be
  (uniform over the real keys, entropy ln n): 0 means one key takes everything, 1 means all keys alike.
* `key_share`: the mean weight a query puts on a chosen set of keys (`<eos>`, `[CLS]`, punctuation...).
* `head_roles`: one row per head, one column per role: previous token, itself, next token, then each key set.

Weights come from `record_attention` as (batch, heads, queries, keys); `real` marks real tokens (not padding).

    with record_attention(model) as w:
        model(src, src_mask, tgt_in)
    profile = offset_profile(w["encoder.0.self_attn"], src_mask, window=3)     # (heads, 7)
    positional = profile.max(dim=1).values                                      # each head's favourite offset
"""
from __future__ import annotations

import torch


def _check(weights: torch.Tensor, query_real: torch.Tensor, key_real: torch.Tensor) -> None:
    if weights.dim() != 4:
        raise ValueError(f"weights: expected (batch, heads, queries, keys), got shape {tuple(weights.shape)}")
    B, _, Q, K = weights.shape
    if query_real.shape != (B, Q) or key_real.shape != (B, K):
        raise ValueError(f"real masks: expected {(B, Q)} and {(B, K)} for weights {tuple(weights.shape)}, "
                         f"got {tuple(query_real.shape)} and {tuple(key_real.shape)}")
    if query_real.dtype != torch.bool or key_real.dtype != torch.bool:
        raise TypeError("real masks must be boolean (True at real tokens)")


def offset_profile(weights: torch.Tensor, real: torch.Tensor, window: int = 3) -> torch.Tensor:
    """(heads, 2 * window + 1): mean weight a real query puts on the key at offset d = key - query, for
    d = -window .. window (column `window` is the token itself). Self-attention only (queries = keys)."""
    if not isinstance(window, int) or window < 0:
        raise ValueError(f"window={window!r}: expected an integer >= 0")
    if weights.dim() == 4 and weights.shape[2] != weights.shape[3]:
        raise ValueError(f"offset_profile needs self-attention (queries = keys), got {tuple(weights.shape)}")
    _check(weights, real, real)
    B, H, L, _ = weights.shape
    w = weights.detach().float() * real[:, None, None, :]          # padding keys carry no weight
    profile = torch.zeros(H, 2 * window + 1)
    n_queries = real.sum().clamp(min=1)
    for col, d in enumerate(range(-window, window + 1)):
        diagonal = w.diagonal(offset=d, dim1=2, dim2=3)            # (B, H, L - |d|): key = query + d
        queries = real[:, max(0, -d):L - max(0, d)]                # the queries those entries belong to
        profile[:, col] = (diagonal * queries[:, None, :]).sum(dim=(0, 2)).cpu() / n_queries
    return profile


def key_share(weights: torch.Tensor, query_real: torch.Tensor, key_selected: torch.Tensor) -> torch.Tensor:
    """(heads,): mean over real queries of the total weight on the keys where `key_selected` (batch, keys) is True."""
    _check(weights, query_real, key_selected)
    share = (weights.detach().float() * key_selected[:, None, None, :]).sum(-1)       # (B, H, Q)
    return ((share * query_real[:, None, :]).sum(dim=(0, 2)) / query_real.sum().clamp(min=1)).cpu()


def head_roles(weights: torch.Tensor, real: torch.Tensor, key_sets: dict[str, torch.Tensor] | None = None
               ) -> tuple[list[str], torch.Tensor]:
    """Self-attention weights -> (role names, (heads, roles) shares): the weight each head puts, on average, on
    the previous token, on itself, on the next token, and on each named set of keys (batch, keys) of `key_sets`."""
    profile = offset_profile(weights, real, window=1)
    columns = [profile[:, 0], profile[:, 1], profile[:, 2]]
    names = ["previous", "itself", "next"]
    for name, selected in (key_sets or {}).items():
        names.append(name)
        columns.append(key_share(weights, real, selected & real))
    return names, torch.stack(columns, dim=1)


def attention_entropy(weights: torch.Tensor, query_real: torch.Tensor, key_real: torch.Tensor) -> torch.Tensor:
    """(heads,): mean over real queries of entropy(weights) / ln(number of real keys); queries that have a
    single real key to look at (no choice to make) are left out. Every real key counts as visible to every
    query, so this is for encoder self-attention and cross-attention, not for causal self-attention."""
    _check(weights, query_real, key_real)
    w = weights.detach().float() * key_real[:, None, None, :]
    entropy = -(w * w.clamp(min=1e-12).log()).sum(-1)              # (B, H, Q)
    n_keys = key_real.sum(-1).float()                               # (B,)
    counted = query_real & (n_keys > 1)[:, None]                    # (B, Q)
    normalised = entropy / n_keys.clamp(min=2).log()[:, None, None]
    return ((normalised * counted[:, None, :]).sum(dim=(0, 2)) / counted.sum().clamp(min=1)).cpu()
