"""GPT: a decoder-only Transformer trained to predict the next token (GPT-2's architecture, nanoGPT-sized).

    cfg = GPTConfig.preset("baby", vocab_size=65)
    model = GPT(cfg)
    logits = model(idx)                      # (B, T, vocab): a next-token score at every position
    logits, loss = model(idx, targets)       # + mean cross-entropy
    h = model.hidden(idx)                    # (B, T, n_embd): final hidden states, for value/reward heads

Pre-norm blocks (LayerNorm -> attention -> residual, LayerNorm -> MLP -> residual), learned absolute
positions, tanh-GELU and tied input/output embeddings, exactly as GPT-2, so `from_hf` can load a Hugging Face
GPT-2 checkpoint into this class. A `KVCache` lets generation feed one new token per step instead of the
whole text (see course_lib.generate). `load` reads back a checkpoint written by the lesson or the pretraining
script, with its config and tokenizer.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .presets import Presets
from .train import TrainConfig


@dataclass
class GPTConfig(Presets):
    vocab_size: int = 65
    block_size: int = 64        # the longest context the model can see (learned positions stop here)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True           # biases in Linear and LayerNorm (GPT-2: True; nanoGPT's char recipe: False)

    PRESETS = {
        "smoke": dict(n_layer=2, n_head=2, n_embd=32, block_size=32),
        # nanoGPT's CPU "baby" recipe (README): 4 layers, 4 heads, 128 dims, block 64, no dropout, no bias
        "baby": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, bias=False),
        "lesson": dict(n_layer=4, n_head=4, n_embd=128, block_size=128, bias=False),
        # nanoGPT's shakespeare_char GPU recipe (val 1.47 on one A100)
        "gpu": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2, bias=False),
    }

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        if min(self.vocab_size, self.block_size, self.n_layer, self.n_head) < 1:
            raise ValueError("vocab_size, block_size, n_layer and n_head must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout}: expected a probability in [0, 1)")


# How each preset is trained: TrainConfig fields plus `batch`, the sequences per optimisation step.
RECIPES: dict[str, dict[str, Any]] = {
    "smoke": dict(batch=8, steps=60, lr=2e-3, min_lr=2e-4, warmup=10, betas=(0.9, 0.99), weight_decay=0.1,
                  eval_every=30),
    # nanoGPT's baby recipe: batch 12, 2000 iters, lr 1e-3 -> 1e-4 cosine, warmup 100, AdamW beta2 0.99
    "baby": dict(batch=12, steps=2000, lr=1e-3, min_lr=1e-4, warmup=100, betas=(0.9, 0.99), weight_decay=0.1,
                 eval_every=250),
    "lesson": dict(batch=32, steps=1200, lr=2e-3, min_lr=2e-4, warmup=100, betas=(0.9, 0.99), weight_decay=0.1,
                   eval_every=250),
    # nanoGPT's shakespeare_char GPU recipe. The model overfits after ~2000 steps, so, like nanoGPT (which keeps
    # its best checkpoint), training ends on the weights of the best evaluation.
    "gpu": dict(batch=64, steps=5000, lr=1e-3, min_lr=1e-4, warmup=100, betas=(0.9, 0.99), weight_decay=0.1,
                eval_every=250, keep_best="val_loss"),
    "scaling": dict(batch=12, steps=600, lr=2e-3, min_lr=2e-4, warmup=50, betas=(0.9, 0.99), weight_decay=0.1),
}


# The scaling experiment: the baby shape at growing widths, every one trained with recipe "scaling"
# (the same steps and batch: a fixed budget of training tokens).
SCALING_WIDTHS: dict[str, tuple[int, ...]] = {"smoke": (8, 16, 32), "lesson": (16, 32, 64, 128),
                                              "gpu": (16, 32, 64, 128, 256)}


def scaling_configs(profile: str, vocab_size: int) -> list[GPTConfig]:
    if profile not in SCALING_WIDTHS:
        raise ValueError(f"unknown profile {profile!r}: expected one of {', '.join(SCALING_WIDTHS)}")
    base = GPTConfig.preset("smoke" if profile == "smoke" else "baby", vocab_size=vocab_size)
    return [replace(base, n_embd=width) for width in SCALING_WIDTHS[profile]]


def checkpoint_path(profile: str) -> Path:
    """Where lesson 06 saves its char-level GPT (lesson 08's starting policy): `06_gpt_char.safetensors`, or
    `06_gpt_char_smoke.safetensors` for the smoke profile, so a quick CI run never overwrites the real model."""
    from . import paths

    name = "06_gpt_char_smoke.safetensors" if profile == "smoke" else "06_gpt_char.safetensors"
    return paths.checkpoints_dir() / name


def recipe(name: str, **overrides: Any) -> tuple[TrainConfig, int]:
    """(TrainConfig, batch size) for a preset's training run; `overrides` change any field of either."""
    if name not in RECIPES:
        raise ValueError(f"no GPT training recipe {name!r}: expected one of {', '.join(RECIPES)}")
    fields = {**RECIPES[name], **overrides}
    batch = fields.pop("batch")
    return TrainConfig(**fields), batch


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


def _cached_causal_mask(new: int, past: int, device: torch.device) -> torch.Tensor:
    # Query i sits at absolute position past + i and may see keys 0 .. past + i. (SDPA's is_causal aligns
    # the diagonal to the top-left corner, which is only right when nothing is cached.)
    return torch.ones(new, past + new, dtype=torch.bool, device=device).tril(diagonal=past)


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
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=_cached_causal_mask(T, past, x.device), dropout_p=p)
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
        """Logits (B, T, vocab); with `targets` (B, T), returns (logits, mean cross-entropy in nats)."""
        logits = self.lm_head(self.hidden(idx, cache))
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())

    def new_cache(self, batch: int) -> KVCache:
        p = self.wte.weight
        return KVCache(self.cfg, batch, p.device, p.dtype)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count. Non-embedding (the default, as in scaling-law papers) leaves out the position
        table; the token table is still counted once because it doubles as the output layer."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token (forward + backward): 6N for the matmuls plus attention's 12 L T d."""
        T = seq_len or self.cfg.block_size
        return 6 * self.num_params() + 12 * self.cfg.n_layer * T * self.cfg.n_embd


# ---- Hugging Face GPT-2 checkpoints ------------------------------------------------------------------

_HF_TRANSPOSED = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def from_hf(path: str | Path, device: torch.device | str = "cpu") -> GPT:
    """Load a Hugging Face GPT-2-format checkpoint directory (config.json + model.safetensors) into `GPT`.

    HF stores these four projections as `Conv1D` with (in, out) weights, so they are transposed on the way in.
    """
    from safetensors.torch import load_file

    path = Path(path)
    config_file, weights_file = path / "config.json", path / "model.safetensors"
    for f in (config_file, weights_file):
        if not f.exists():
            raise FileNotFoundError(f"{path} is not a GPT-2 checkpoint directory: {f.name} is missing")
    hf = json.loads(config_file.read_text(encoding="utf-8"))
    if hf.get("model_type") != "gpt2":
        raise ValueError(f"{config_file} describes a {hf.get('model_type')!r} model, expected 'gpt2'")
    # what this class implements; a checkpoint that needs anything else is refused, not loaded wrongly
    implemented = {"activation_function": ("gelu_new",), "layer_norm_epsilon": (1e-5,), "scale_attn_weights": (True,),
                   "scale_attn_by_inverse_layer_idx": (False,), "n_inner": (None, 4 * hf["n_embd"])}
    for key, allowed in implemented.items():
        value = hf.get(key, allowed[0])
        if value not in allowed:
            raise ValueError(f"{key}={value!r} is not supported by course_lib.gpt (it implements {allowed[0]!r})")
    cfg = GPTConfig(vocab_size=hf["vocab_size"], block_size=hf["n_positions"], n_layer=hf["n_layer"],
                    n_head=hf["n_head"], n_embd=hf["n_embd"], dropout=0.0, bias=True)
    state = {}
    for key, value in load_file(str(weights_file)).items():
        key = key.removeprefix("transformer.")
        if key.endswith((".attn.bias", ".attn.masked_bias")) or key == "lm_head.weight":
            continue  # old causal-mask buffers; the head is tied to wte
        state[key] = value.t() if key.endswith(_HF_TRANSPOSED) else value
    model = GPT(cfg)
    state["lm_head.weight"] = state["wte.weight"]
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


# ---- our own checkpoints -----------------------------------------------------------------------------

class Loaded(NamedTuple):
    model: GPT
    tokenizer: Any      # CharTokenizer or ByteBPE, rebuilt from the checkpoint
    meta: dict


def save(model: GPT, path: str | Path, tokenizer=None, **metadata: Any) -> Path:
    """Write weights + config (+ tokenizer) as one safetensors file that `load` reads back."""
    from .train import save_weights

    extra = {"tokenizer": tokenizer.to_json()} if tokenizer is not None else {}
    return save_weights(model, path, config=model.cfg.to_dict(), **extra, **metadata)


def load(path: str | Path, device: torch.device | str = "cpu") -> Loaded:
    """Rebuild a GPT from a checkpoint written by `save` (the lesson) or `python -m course_lib.pretrain`.

        model, tok, meta = load(checkpoint_path("lesson"), device)   # lesson 06's char model

    The model comes back in eval mode; `meta` holds everything else that was saved (e.g. val_loss).
    """
    from safetensors import safe_open

    from .train import load_weights

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no GPT checkpoint at {path}: run lesson 06 (or course_lib.pretrain) first")
    with safe_open(str(path), framework="pt") as f:
        meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
    if "config" not in meta:
        raise ValueError(f"{path} has no 'config' metadata: it was not written by course_lib.gpt.save")
    model = GPT(GPTConfig(**meta.pop("config")))
    load_weights(model, path)
    tokenizer = _tokenizer_from_json(meta.pop("tokenizer")) if "tokenizer" in meta else None
    return Loaded(model.to(device).eval(), tokenizer, meta)


def _tokenizer_from_json(data: dict):
    from .tokenizers import CharTokenizer, ByteBPE

    if data.get("kind") == "char":
        specials = data["specials"]
        return CharTokenizer(data["itos"][len(specials):], specials=specials)
    if data.get("kind") == ByteBPE.kind:
        return ByteBPE.from_json(data)
    raise ValueError(f"unknown tokenizer kind {data.get('kind')!r} in checkpoint")
