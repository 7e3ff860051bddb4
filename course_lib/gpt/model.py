"""GPT: a decoder-only Transformer trained to predict the next token (GPT-2's architecture, nanoGPT-sized).

    cfg = GPTConfig.sized("baby", vocab_size=65)
    model = GPT(cfg)
    logits = model(idx)                      # (B, T, vocab): a next-token score at every position
    logits, loss = model(idx, targets)       # + mean cross-entropy
    h = model.hidden(idx)                    # (B, T, n_embd): final hidden states, for value/reward heads

Pre-norm blocks (LayerNorm -> attention -> residual, LayerNorm -> MLP -> residual), learned absolute
positions, tanh-GELU and tied input/output embeddings, exactly as GPT-2, so `from_hf` can load a Hugging Face
GPT-2 checkpoint into this class (course_lib.gpt.hf). A `KVCache` lets generation feed one new token per step
instead of the whole text (course_lib.gpt.generation). This file knows nothing about training runs: their
budgets live in course_lib.recipes.gpt, saving and loading in course_lib.gpt.checkpoint.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.parameters import count_parameters
from ..core.checks import integer, real
from ..core.presets import Presets
from ..transformer.attention import causal_mask


@dataclass
class GPTConfig(Presets):
    vocab_size: int = 65
    block_size: int = 64        # the longest context the model can see (learned positions stop here)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True           # biases in Linear and LayerNorm (GPT-2: True; nanoGPT's char recipe: False)

    # Named sizes (minGPT names its sizes the same way): `GPTConfig.sized("baby", vocab_size=65)`.
    SIZES: ClassVar[dict[str, dict[str, Any]]] = {
        "nano": dict(n_layer=2, n_head=2, n_embd=32, block_size=32),
        # nanoGPT's CPU "baby" recipe (README): 4 layers, 4 heads, 128 dims, block 64, no dropout, no bias
        "baby": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, bias=False),
        # nanoGPT's shakespeare_char GPU recipe (val 1.47 on one A100)
        "shakespeare-char": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2, bias=False),
    }
    # The size of lesson 06's main model at each profile.
    PRESETS = {
        "smoke": SIZES["nano"],
        "lesson": dict(n_layer=4, n_head=4, n_embd=128, block_size=128, bias=False),
        "gpu": SIZES["shakespeare-char"],
    }

    @classmethod
    def sized(cls, name: str, **overrides: Any) -> "GPTConfig":
        if name not in cls.SIZES:
            raise ValueError(f"no GPT size {name!r}: expected one of {', '.join(cls.SIZES)}")
        return cls(**{**cls.SIZES[name], **overrides})

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            integer(name, getattr(self, name), 1)      # before the divisibility check: n_head=0 is no ZeroDivision
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        real("dropout", self.dropout)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout}: expected a probability in [0, 1)")


class KVCache:
    """Keys and values of every layer for the tokens already seen, preallocated to the block size.

    Generation appends one token at a time; attention then costs O(T) per new token instead of re-running the
    whole O(T^2) prefix. `pos` is how many tokens the cache holds (the position of the next token).
    """

    def __init__(self, cfg: GPTConfig, batch: int, device: torch.device | str, dtype: torch.dtype = torch.float32):
        head_dim = cfg.n_embd // cfg.n_head
        shape = (cfg.n_layer, batch, cfg.n_head, cfg.block_size, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.pos = 0

    def store(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write this step's keys/values (B, H, T, hd) at `pos`; return everything cached so far for `layer`."""
        end = self.pos + k.shape[2]
        self.k[layer, :, :, self.pos:end] = k
        self.v[layer, :, :, self.pos:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head, self.dropout = cfg.n_head, cfg.dropout
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)   # q, k, v in one matmul
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        past = 0
        if cache is not None:
            past = cache.pos
            k, v = cache.store(layer, k, v)
        p = self.dropout if self.training else 0.0
        if past == 0:      # training, or the first chunk of a generation: the fused causal path
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        elif T == 1:       # one new token may look at everything cached: no mask at all
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        else:
            # the new queries sit at positions past..past+T-1 (SDPA's is_causal aligns the diagonal top-left,
            # which is only right when nothing is cached)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(past + T, x.device, queries=T),
                                               dropout_p=p)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # GPT-2 uses the tanh approximation of GELU; matching it is what makes from_hf exact.
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, layer)   # pre-norm: the residual path stays an identity
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.h = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight   # weight tying: one matrix reads tokens in and writes them out
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                # GPT-2: shrink the layers that write into the residual stream, so its variance does not grow
                # with depth.
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def hidden(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Final (layer-normed) hidden states (B, T, n_embd) for token ids `idx` (B, T).

        With a `cache`, `idx` holds only the tokens after the `cache.pos` already cached ones, and the cache
        advances past them.
        """
        if idx.dim() != 2:
            raise ValueError(f"idx must be (batch, time) token ids, got shape {tuple(idx.shape)}")
        B, T = idx.shape
        start = cache.pos if cache is not None else 0
        if start + T > self.cfg.block_size:
            raise ValueError(f"{start + T} tokens exceed block_size={self.cfg.block_size}: crop the input to the "
                             f"last {self.cfg.block_size} tokens (positions beyond the block were never learned)")
        pos = torch.arange(start, start + T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for i, block in enumerate(self.h):
            x = block(x, cache, i)
        if cache is not None:
            cache.pos += T
        return self.ln_f(x)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, cache: KVCache | None = None):
        """Logits (B, T, vocab); with `targets` (B, T), returns (logits, mean cross-entropy in nats).

        `targets` must have exactly the shape of `idx` (one next token per position; -100 is ignored)."""
        if targets is not None and (not isinstance(targets, torch.Tensor) or targets.shape != idx.shape):
            got = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
            raise ValueError(f"targets has shape {got} but idx has {tuple(idx.shape)}: expected one target per "
                             "input position, the same (batch, time) shape")
        logits = self.lm_head(self.hidden(idx, cache))
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())

    def new_cache(self, batch: int) -> KVCache:
        p = self.wte.weight
        return KVCache(self.cfg, batch, p.device, p.dtype)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count. `non_embedding` (the default) leaves out the position table only; the token table
        is still counted once because it doubles as the output layer (nanoGPT's convention; Kaplan et al.'s N
        leaves out both tables)."""
        n = count_parameters(self)
        return n - self.wpe.weight.numel() if non_embedding else n

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token (forward + backward): 6N for the matmuls plus attention's 12 L T d."""
        T = seq_len or self.cfg.block_size
        return 6 * self.num_params() + 12 * self.cfg.n_layer * T * self.cfg.n_embd
