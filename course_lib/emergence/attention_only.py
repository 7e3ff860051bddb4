"""An attention-only Transformer: embeddings, causal attention layers, an unembedding, and nothing else.

No MLPs and no LayerNorm: the residual stream is exactly the sum of the token embedding, the position
embedding and every head's output, so each head's contribution can be read, drawn and removed on its own.
This is the minimal model of Elhage et al. (2021) and Olsson et al. (2022), in which induction heads were
first taken apart.

    cfg = AttnOnlyConfig(vocab_size=32, block_size=48, d_model=64, n_layers=2, n_heads=1)
    model = AttnOnlyTransformer(cfg)
    logits = model(idx)                                   # (B, T, vocab)
    logits, loss = model(idx, targets)                    # + mean next-token cross-entropy
    run = model.run(idx)                                  # logits, every head's attention and output
    run.attn[1][:, 0]                                     # layer 1, head 0: (B, T, T), rows sum to 1
    mask = model.head_mask(ablate=[(1, 0)])               # ones, with a zero for layer 1 head 0
    model(idx, head_mask=mask)                            # the same model with that head's output removed

Attention is written out (scores, causal mask, softmax, weighted sum) so that the patterns can be returned;
when nobody asks for them, `F.scaled_dot_product_attention` computes the same numbers on the fused path.
This file imports only torch: it knows nothing about training runs.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class AttnOnlyConfig:
    vocab_size: int = 32
    block_size: int = 48       # longest sequence (learned absolute positions stop here)
    d_model: int = 64          # width of the residual stream
    n_layers: int = 2
    n_heads: int | tuple[int, ...] = 1   # heads per layer (one number for all, or one per layer);
                                          # a layer's heads split d_model between them
    positions: str = "learned"  # "learned": a trained vector per position, added to the token embedding
    layernorm: bool = False    # LayerNorm before each layer and before the unembedding

    def __post_init__(self):
        if not isinstance(self.n_heads, int):
            self.n_heads = tuple(int(h) for h in self.n_heads)
            if len(self.n_heads) != self.n_layers:
                raise ValueError(f"n_heads={self.n_heads} must give one count per layer ({self.n_layers})")
        if min(self.vocab_size, self.block_size, self.d_model, self.n_layers, *self.heads) < 1:
            raise ValueError("vocab_size, block_size, d_model, n_layers and n_heads must all be >= 1")
        for h in self.heads:
            if self.d_model % h:
                raise ValueError(f"d_model={self.d_model} must be divisible by every layer's head count {h}")
        if self.positions != "learned":
            raise ValueError(f"positions={self.positions!r}: only 'learned' is implemented")

    @property
    def heads(self) -> tuple[int, ...]:
        """Heads of each layer."""
        return (self.n_heads,) * self.n_layers if isinstance(self.n_heads, int) else self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)


class Run(NamedTuple):
    logits: torch.Tensor              # (B, T, vocab)
    attn: list[torch.Tensor]          # per layer: (B, heads, T, T) attention weights (row t: where t looks)
    head_out: list[torch.Tensor]      # per layer: (B, heads, T, d_model) what each head adds to the stream
    resid: list[torch.Tensor]         # the residual stream before layer 0, after layer 0, ..., after the last


class AttentionLayer(nn.Module):
    """Causal multi-head attention whose output is the sum of its heads' outputs (no bias anywhere)."""

    def __init__(self, cfg: AttnOnlyConfig, n_heads: int):
        super().__init__()
        self.n_heads, self.d_head = n_heads, cfg.d_model // n_heads
        self.W_Q = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.W_K = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.W_V = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.W_O = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        B, T, _ = t.shape
        return t.view(B, T, self.n_heads, self.d_head).transpose(1, 2)         # (B, H, T, d_head)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, need_weights: bool = False):
        """x (B, T, d). mask: (H,) or (B, H) multipliers of each head's output (0 = ablated).

        Returns (output (B, T, d), weights (B, H, T, T) or None, per-head outputs (B, H, T, d) or None).
        """
        B, T, C = x.shape
        q, k, v = self._split(self.W_Q(x)), self._split(self.W_K(x)), self._split(self.W_V(x))
        if need_weights:
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_head)                    # (B, H, T, T)
            future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(diagonal=1)
            weights = scores.masked_fill(future, float("-inf")).softmax(dim=-1)
            z = weights @ v                                                               # (B, H, T, d_head)
        else:
            weights = None
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        if mask is not None:
            m = mask.to(z.dtype)
            z = z * (m.view(1, -1, 1, 1) if m.dim() == 1 else m.view(B, -1, 1, 1))
        if not need_weights:
            return self.W_O(z.transpose(1, 2).reshape(B, T, C)), None, None
        # head h writes z_h @ W_O[:, h-th block]^T; the layer's output is the sum over heads
        w_o = self.W_O.weight.view(C, self.n_heads, self.d_head)                         # (d, H, d_head)
        per_head = torch.einsum("bhtk,dhk->bhtd", z, w_o)                                 # (B, H, T, d)
        return per_head.sum(dim=1), weights, per_head


class AttnOnlyTransformer(nn.Module):
    def __init__(self, cfg: AttnOnlyConfig):
        super().__init__()
        self.cfg = cfg
        self.W_E = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.W_P = nn.Embedding(cfg.block_size, cfg.d_model)
        self.layers = nn.ModuleList(AttentionLayer(cfg, h) for h in cfg.heads)
        norm = (lambda: nn.LayerNorm(cfg.d_model)) if cfg.layernorm else nn.Identity
        self.ln = nn.ModuleList(norm() for _ in range(cfg.n_layers))
        self.ln_f = norm()
        self.W_U = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)   # not tied: reading out is its own job
        for name, p in self.named_parameters():
            if not name.startswith("ln"):
                nn.init.normal_(p, mean=0.0, std=0.02)
        for layer in self.layers:   # GPT-2's rule: shrink what writes into the stream, by depth
            nn.init.normal_(layer.W_O.weight, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layers))

    def head_mask(self, ablate: list[tuple[int, int]] = (), device=None) -> torch.Tensor:
        """A (n_layers, most heads in a layer) mask of ones with zeros at the (layer, head) pairs in `ablate`."""
        heads = self.cfg.heads
        mask = torch.ones(len(heads), max(heads), device=device or self.W_E.weight.device)
        for layer, head in ablate:
            if not (0 <= layer < len(heads) and 0 <= head < heads[layer]):
                raise IndexError(f"no head ({layer}, {head}): the model has heads {heads} per layer")
            mask[layer, head] = 0.0
        return mask

    def _check(self, idx: torch.Tensor, head_mask: torch.Tensor | None) -> None:
        if idx.dim() != 2:
            raise ValueError(f"idx must be (batch, time) token ids, got shape {tuple(idx.shape)}")
        if idx.shape[1] > self.cfg.block_size:
            raise ValueError(f"{idx.shape[1]} tokens exceed block_size={self.cfg.block_size}")
        want = (self.cfg.n_layers, max(self.cfg.heads))
        if head_mask is not None and tuple(head_mask.shape[-2:]) != want:
            raise ValueError(f"head_mask must have shape {want} (or (batch, *{want})), got {tuple(head_mask.shape)}")

    def _mask(self, head_mask: torch.Tensor | None, i: int) -> torch.Tensor | None:
        if head_mask is None:
            return None
        h = self.cfg.heads[i]
        return head_mask[i, :h] if head_mask.dim() == 2 else head_mask[:, i, :h]

    def run(self, idx: torch.Tensor, head_mask: torch.Tensor | None = None) -> Run:
        """Everything inside one forward pass: logits, attention patterns, each head's output, the stream."""
        self._check(idx, head_mask)
        T = idx.shape[1]
        x = self.W_E(idx) + self.W_P(torch.arange(T, device=idx.device))
        attn, outs, resid = [], [], [x]
        for i, layer in enumerate(self.layers):
            out, weights, per_head = layer(self.ln[i](x), self._mask(head_mask, i), need_weights=True)
            x = x + out
            attn.append(weights)
            outs.append(per_head)
            resid.append(x)
        return Run(self.W_U(self.ln_f(x)), attn, outs, resid)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                head_mask: torch.Tensor | None = None):
        """Logits (B, T, vocab); with `targets`, (logits, mean cross-entropy). `head_mask`: (n_layers,
        n_heads) or (B, n_layers, n_heads) multipliers of the heads' outputs (0 removes a head)."""
        self._check(idx, head_mask)
        T = idx.shape[1]
        x = self.W_E(idx) + self.W_P(torch.arange(T, device=idx.device))
        for i, layer in enumerate(self.layers):
            x = x + layer(self.ln[i](x), self._mask(head_mask, i))[0]
        logits = self.W_U(self.ln_f(x))
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
