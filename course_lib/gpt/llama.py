"""The modern decoder: a GPT with the upgrades of 2019-2023 (Llama's recipe, also SmolLM2's, Mistral's, Qwen's).

    cfg = LlamaConfig.preset("smollm2-135m")        # or "tiny" for tests and the smoke profile
    model = Llama(cfg)
    logits = model(idx)                             # (B, T, vocab)
    logits = model(idx[:, -1:], cache=cache)        # one new token against a KV cache
    ids = model.generate(prompt_ids, 40, stop_ids={2})

What changed since lesson 06's GPT (same skeleton: embed -> N pre-norm blocks -> norm -> read-out):
* RMSNorm instead of LayerNorm: divide by the root-mean-square of the vector and scale; no mean, no bias.
* Rotary position embeddings (RoPE) instead of a learned position table: each pair of query/key channels is
  rotated by an angle proportional to the position, so the score q·k depends on the *distance* between tokens.
* SwiGLU feed-forward: down(silu(gate(x)) * up(x)), a gated MLP, instead of GELU(fc(x)).
* Grouped-query attention (GQA): fewer key/value heads than query heads; each K/V head serves a group of query
  heads, which shrinks the KV cache (SmolLM2-135M: 9 query heads share 3 K/V heads, a 3x smaller cache).
* No biases anywhere; input and output embeddings tied (one matrix reads tokens in and scores them out).

Module names follow Hugging Face's `LlamaForCausalLM` (q_proj, gate_proj, input_layernorm, ...) without the
"model." prefix, the names most readers meet first; a state dict converts by stripping that prefix.
This file knows nothing about files, tokenizers or training (it imports torch and the course's argument checks):
`course_lib.gpt.gguf_model` fills it with weights.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.checks import integer, real

@dataclass
class LlamaConfig:
    vocab_size: int = 49152
    dim: int = 576                  # width of the residual stream (hidden_size)
    n_layer: int = 30
    n_head: int = 9                 # query heads
    n_kv_head: int = 3              # key/value heads (GQA); = n_head is ordinary multi-head attention
    ffn_dim: int = 1536             # SwiGLU hidden width (intermediate_size)
    block_size: int = 8192          # longest context (RoPE has no table, this is just a guard)
    rope_theta: float = 100000.0    # base of the rotation frequencies
    norm_eps: float = 1e-5
    tie_embeddings: bool = True

    PRESETS: ClassVar[dict[str, dict]] = {
        # SmolLM2-135M(-Instruct): Hugging Face, 2024; the shape in its GGUF metadata
        "smollm2-135m": dict(),
        # a stand-in of the same kind, small enough for tests and the smoke profile
        "tiny": dict(vocab_size=256, dim=64, n_layer=2, n_head=4, n_kv_head=2, ffn_dim=160, block_size=256,
                     rope_theta=10000.0),
    }

    @classmethod
    def preset(cls, name: str, **overrides) -> "LlamaConfig":
        """A named shape (see PRESETS), with any field overridden."""
        if name not in cls.PRESETS:
            raise ValueError(f"LlamaConfig has no preset {name!r}: expected one of {', '.join(cls.PRESETS)}")
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"LlamaConfig has no field(s) {sorted(unknown)}")
        return cls(**{**cls.PRESETS[name], **overrides})

    def __post_init__(self):
        for name in ("vocab_size", "dim", "n_layer", "n_head", "n_kv_head", "ffn_dim", "block_size"):
            integer(name, getattr(self, name), 1)      # before the divisibility checks: no ZeroDivisionError
        real("rope_theta", self.rope_theta, 0.0, above=True)
        real("norm_eps", self.norm_eps, 0.0, above=True)
        if self.dim % self.n_head:
            raise ValueError(f"dim={self.dim} must be divisible by n_head={self.n_head}")
        if self.n_head % self.n_kv_head:
            raise ValueError(f"n_head={self.n_head} must be a multiple of n_kv_head={self.n_kv_head} (GQA groups)")
        if (self.dim // self.n_head) % 2:
            raise ValueError(f"head size {self.dim // self.n_head} must be even: RoPE rotates channel pairs")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_head


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight. Computed in fp32 whatever the input dtype (as Llama does)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


# ---- rotary position embeddings ------------------------------------------------------------------------
# RoPE rotates 2-D pairs of channels of every query and key by angle position * freq_i. Which channels form
# a pair is a convention, and two are in use:
#   * interleaved pairs (the RoPE paper, Meta's original Llama code, llama.cpp and so GGUF files):
#     pairs are (x0, x1), (x2, x3), ... - neighbours.
#   * rotate-half (Hugging Face, and this file): pairs are (x_i, x_{i + d/2}) - the first half of the head
#     against the second, so the rotation is x * cos + rotate_half(x) * sin with rotate_half = (-x2, x1).
# Both are the same rotation applied to a different ordering of the channels. A q_proj/k_proj weight trained
# for one layout works in the other only after its output rows are permuted accordingly; that is exactly what
# `course_lib.gpt.gguf_model.unpermute_rope_rows` does to GGUF's attn_q/attn_k (and what transformers' GGUF
# loader does too). Forget it and the model still runs, but every attention score is wrong.

def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of position * freq_i for rotate-half RoPE: each (T, head_dim), frequencies repeated twice."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=positions.device) / head_dim))
    angles = positions.float()[:, None] * inv_freq[None, :]               # (T, head_dim / 2)
    angles = torch.cat([angles, angles], dim=-1)                          # channel i and i + d/2 share a frequency
    return angles.cos(), angles.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, H, T, hd) queries or keys; cos/sin (T, hd) for their positions."""
    return x * cos.to(x.dtype) + rotate_half(x) * sin.to(x.dtype)


# ---- the KV cache -------------------------------------------------------------------------------------

class KVCache:
    """Keys (already rotated) and values of every layer for the tokens seen so far; `pos` = how many.

    It grows by concatenation, like Hugging Face's DynamicCache: simple, and nothing preallocated for an
    8192-token context nobody uses. With GQA only the n_kv_head heads are stored.
    """

    def __init__(self, n_layer: int):
        self.k: list[torch.Tensor | None] = [None] * n_layer
        self.v: list[torch.Tensor | None] = [None] * n_layer
        self.pos = 0

    def store(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.k[layer] is not None:
            k = torch.cat([self.k[layer], k], dim=2)
            v = torch.cat([self.v[layer], v], dim=2)
        self.k[layer], self.v[layer] = k, v
        return k, v

    def expand(self, batch: int) -> "KVCache":
        """A copy whose batch dimension is `batch` (from a batch-1 cache): one shared prompt prefix, reused by
        many continuations without recomputing it."""
        out = KVCache(len(self.k))
        out.k = [None if t is None else t.expand(batch, *t.shape[1:]) for t in self.k]
        out.v = [None if t is None else t.expand(batch, *t.shape[1:]) for t in self.v]
        out.pos = self.pos
        return out

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.k + self.v if t is not None)


_SDPA_HAS_GQA = tuple(int(p) for p in torch.__version__.split(".")[:2]) >= (2, 5)


class Attention(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = cfg.n_head, cfg.n_kv_head, cfg.head_dim
        self.q_proj = nn.Linear(cfg.dim, cfg.n_head * cfg.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.dim, cfg.n_kv_head * cfg.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.dim, cfg.n_kv_head * cfg.head_dim, bias=False)
        self.o_proj = nn.Linear(cfg.n_head * cfg.head_dim, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None = None,
                layer: int = 0) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)       # (B, H, T, hd)
        k = self.k_proj(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)    # (B, KV, T, hd)
        v = self.v_proj(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        past = 0
        if cache is not None:
            past = cache.pos
            k, v = cache.store(layer, k, v)
        # GQA: K/V head j serves query heads j*g .. j*g + g - 1 (g = n_head / n_kv_head). Written out, that is
        # k.repeat_interleave(g, dim=1) and the same for v; SDPA's enable_gqa (torch >= 2.5) shares them without
        # making the copies.
        groups = self.n_head // self.n_kv_head
        gqa = {}
        if groups > 1 and _SDPA_HAS_GQA:
            gqa = {"enable_gqa": True}
        elif groups > 1:
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        if past == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, **gqa)
        elif T == 1:                      # one new token sees everything cached
            y = F.scaled_dot_product_attention(q, k, v, **gqa)
        else:                             # new query i sits at position past + i and sees keys 0 .. past + i
            mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, **gqa)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim))


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x)): the gate decides, channel by channel, how much of up(x) passes."""

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.up_proj = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.down_proj = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.mlp = SwiGLU(cfg)

    def forward(self, x, cos, sin, cache=None, layer=0):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache, layer)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)

    def hidden(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Final normed hidden states (B, T, dim) for token ids (B, T). With a `cache`, `idx` holds only the
        tokens after the `cache.pos` cached ones, and the cache advances past them."""
        if idx.dim() != 2:
            raise ValueError(f"idx must be (batch, time) token ids, got shape {tuple(idx.shape)}")
        if idx.dtype.is_floating_point or idx.dtype == torch.bool:
            raise TypeError(f"idx must hold integer token ids, got dtype {idx.dtype}")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.cfg.vocab_size):
            raise ValueError(f"idx holds ids from {int(idx.min())} to {int(idx.max())}: expected 0..{self.cfg.vocab_size - 1}")
        T = idx.shape[1]
        start = cache.pos if cache is not None else 0
        if start + T > self.cfg.block_size:
            raise ValueError(f"{start + T} tokens exceed the context of {self.cfg.block_size}")
        cos, sin = rope_cos_sin(torch.arange(start, start + T, device=idx.device), self.cfg.head_dim,
                                self.cfg.rope_theta)
        x = self.embed_tokens(idx)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, cache, i)
        if cache is not None:
            cache.pos += T
        return self.norm(x)

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None, last_only: bool = False) -> torch.Tensor:
        """Logits (B, T, vocab) for token ids (B, T); `last_only` keeps the last position only (B, 1, vocab),
        which saves the big read-out matmul on a long prompt."""
        h = self.hidden(idx, cache)
        return self.lm_head(h[:, -1:] if last_only else h)

    def new_cache(self, batch: int = 1) -> KVCache:       # `batch` for course_lib.generate's interface
        return KVCache(self.cfg.n_layer)

    def num_params(self) -> int:
        """Parameters, the tied embedding counted once."""
        return sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 0.0,
                 stop_ids: set[int] | frozenset[int] = frozenset(), use_cache: bool = True,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Continue `idx` (B, T) by up to `max_new_tokens`; greedy at temperature 0. Stops early once every row
        has produced a token in `stop_ids` (kept in the output; later positions of finished rows repeat it).
        Returns (B, T + n) ids."""
        integer("max_new_tokens", max_new_tokens, 0)
        real("temperature", temperature, 0.0)
        was_training = self.training
        self.eval()
        cache = self.new_cache() if use_cache else None
        done = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
        stops = torch.tensor(sorted(stop_ids), dtype=torch.long, device=idx.device)
        step_input = idx
        for _ in range(max_new_tokens):
            logits = self(step_input if use_cache else idx, cache=cache, last_only=True)[:, -1].float()
            if temperature == 0:
                nxt = logits.argmax(-1)
            else:
                nxt = torch.multinomial(F.softmax(logits / temperature, -1), 1, generator=generator)[:, 0]
            if done.any():                               # a finished row repeats its stop token
                nxt = torch.where(done, idx[:, -1], nxt)
            idx = torch.cat([idx, nxt[:, None]], dim=1)
            step_input = nxt[:, None]
            if len(stops):
                done |= torch.isin(nxt, stops)
                if done.all():
                    break
        self.train(was_training)
        return idx


def rope_interleaved(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """The other RoPE layout, written out for comparison: channels (2i, 2i+1) form pair i (x: (..., T, hd))."""
    hd = x.shape[-1]
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32, device=x.device) / hd))
    angles = positions.float()[:, None] * inv_freq[None, :]          # (T, hd/2)
    cos, sin = angles.cos(), angles.sin()
    even, odd = x[..., 0::2], x[..., 1::2]
    out = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1)
    return out.flatten(-2)


def flops_per_token(cfg: LlamaConfig, seq_len: int = 0) -> float:
    """Forward FLOPs per token: 2 per weight of every matmul (the read-out included) + attention's 4 T d per
    layer at context length seq_len. Training (forward + backward) costs about three times this: the 6 N rule."""
    hd = cfg.head_dim
    per_layer = cfg.dim * hd * (2 * cfg.n_head + 2 * cfg.n_kv_head) + 3 * cfg.dim * cfg.ffn_dim
    matmul_weights = cfg.n_layer * per_layer + cfg.vocab_size * cfg.dim
    return 2 * matmul_weights + 4 * cfg.n_layer * seq_len * cfg.dim


__all__ = ["LlamaConfig", "Llama", "RMSNorm", "Attention", "SwiGLU", "Block", "KVCache", "rope_cos_sin",
           "rotate_half", "apply_rope", "rope_interleaved", "flops_per_token"]

