"""BERT (Devlin et al., 2018): a Transformer *encoder* that reads the whole sentence at once, in both directions.

    embeddings = token + position + segment, then LayerNorm
    each layer: x = LayerNorm(x + SelfAttention(x));  x = LayerNorm(x + FFN(x))     (post-norm, as published)
    heads:      MLM (predict hidden words; its output matrix *is* the token embedding matrix, transposed)
                classifier (the [CLS] vector through a tanh "pooler", then a linear layer)

Unlike GPT there is no causal mask: every token sees every other real token, padding excepted. That is why
BERT cannot generate left to right, and why it understands a sentence better than a model that only looks back.
The layout matches Hugging Face's `BertModel`, so `BERT.from_hf(folder)` loads real checkpoints (and the tests
compare both on the same weights).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..transformer.attention import MultiHeadAttention, key_mask
from ..core.parameters import count_parameters
from ..core.checks import integer, real
from ..core.presets import Presets


@dataclass
class BertConfig(Presets):
    vocab_size: int = 30522
    max_len: int = 512             # learned positions: the longest input the model can read
    n_segments: int = 2            # sentence A / sentence B
    d_model: int = 768
    n_layers: int = 12
    n_heads: int = 12
    d_ff: int = 3072
    dropout: float = 0.1
    attn_dropout: float = 0.1
    norm_eps: float = 1e-12
    pad_id: int = 0
    n_classes: int = 2
    pooling: str = "cls"           # sentence vector for the classifier: "cls" (BERT's pooler) or "mean"

    # vocab_size of the small presets is a placeholder: lessons pass the size of their own vocabulary.
    PRESETS = {
        "smoke": dict(vocab_size=8000, max_len=64, d_model=64, n_layers=2, n_heads=2, d_ff=256),
        "lesson": dict(vocab_size=8000, max_len=64, d_model=128, n_layers=4, n_heads=4, d_ff=512),
        "gpu": dict(vocab_size=16000, max_len=128, d_model=256, n_layers=6, n_heads=8, d_ff=1024),
    }

    def __post_init__(self):
        for name in ("vocab_size", "max_len", "n_segments", "d_model", "n_layers", "n_heads", "d_ff", "n_classes"):
            integer(name, getattr(self, name), 1)
        integer("pad_id", self.pad_id, 0)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        for name in ("dropout", "attn_dropout"):
            if not 0.0 <= real(name, getattr(self, name)) < 1.0:
                raise ValueError(f"{name}={getattr(self, name)}: expected a probability in [0, 1)")
        if self.pooling not in ("cls", "mean"):
            raise ValueError(f"pooling={self.pooling!r}: expected 'cls' or 'mean'")

    @classmethod
    def from_hf(cls, config: dict, n_classes: int = 2, pooling: str = "cls") -> "BertConfig":
        """Our config from a Hugging Face BERT `config.json` (as a dict)."""
        if config.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"hidden_act={config['hidden_act']!r}: this BERT uses exact GELU ('gelu') only")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only absolute (learned) position embeddings are supported")
        return cls(vocab_size=config["vocab_size"], max_len=config["max_position_embeddings"],
                   n_segments=config.get("type_vocab_size", 2), d_model=config["hidden_size"],
                   n_layers=config["num_hidden_layers"], n_heads=config["num_attention_heads"],
                   d_ff=config["intermediate_size"], dropout=config.get("hidden_dropout_prob", 0.1),
                   attn_dropout=config.get("attention_probs_dropout_prob", 0.1),
                   norm_eps=config.get("layer_norm_eps", 1e-12), pad_id=config.get("pad_token_id") or 0,
                   n_classes=n_classes, pooling=pooling)


class Embeddings(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.tokens = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.positions = nn.Embedding(cfg.max_len, cfg.d_model)
        self.segments = nn.Embedding(cfg.n_segments, cfg.d_model)
        self.norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, ids: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)
        return self.drop(self.norm(self.tokens(ids) + self.positions(pos) + self.segments(segments)))


class EncoderLayer(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        # separate q/k/v projections (not one fused matrix), as in BERT: real weights load, LoRA can pick q and v
        self.attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.attn_dropout)
        self.attn_norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.ffn_in = nn.Linear(cfg.d_model, cfg.d_ff)
        self.ffn_out = nn.Linear(cfg.d_ff, cfg.d_model)
        self.ffn_norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        # post-norm: normalise *after* adding the residual (the 2018 layout; GPT-2 moved the norm first).
        # No causal mask: every token attends to every real token, left and right.
        x = self.attn_norm(x + self.drop(self.attn(x, mask=keep)))
        return self.ffn_norm(x + self.drop(self.ffn_out(F.gelu(self.ffn_in(x)))))


class BERT(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.cfg = cfg
        self.embeddings = Embeddings(cfg)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.n_layers))
        # MLM head: transform, then scores against every token embedding (weights shared with the input)
        self.mlm_transform = nn.Linear(cfg.d_model, cfg.d_model)
        self.mlm_norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.mlm_bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        # classification head: [CLS] -> tanh pooler -> dropout -> linear
        self.pooler = nn.Linear(cfg.d_model, cfg.d_model)
        self.classifier = nn.Linear(cfg.d_model, cfg.n_classes)
        self.drop = nn.Dropout(cfg.dropout)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        # BERT's initialisation: N(0, 0.02) for every matrix, zero biases, identity LayerNorms
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def num_params(self) -> int:
        return count_parameters(self)

    # -- the encoder ---------------------------------------------------------------------------------
    def forward(self, ids: torch.Tensor, segments: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """ids (B, T) -> hidden states (B, T, d_model). The mask (1 = real token) defaults to ids != pad_id."""
        if ids.dim() != 2:
            raise ValueError(f"ids must be (batch, time), got shape {tuple(ids.shape)}")
        if ids.shape[1] > self.cfg.max_len:
            raise ValueError(f"sequence of {ids.shape[1]} tokens is longer than max_len={self.cfg.max_len}")
        if segments is None:
            segments = torch.zeros_like(ids)
        else:
            self._check_segments(ids, segments)
        if attention_mask is None:
            attention_mask = ids != self.cfg.pad_id
        keep = key_mask(attention_mask.bool())  # (B, 1, 1, T): nobody attends to padding
        x = self.embeddings(ids, segments)
        for layer in self.layers:
            x = layer(x, keep)
        return x

    def _check_segments(self, ids: torch.Tensor, segments: torch.Tensor) -> None:
        n = self.cfg.n_segments
        if not isinstance(segments, torch.Tensor) or segments.shape != ids.shape:
            got = tuple(segments.shape) if isinstance(segments, torch.Tensor) else type(segments).__name__
            raise ValueError(f"segments has shape {got} but ids has {tuple(ids.shape)}: expected one segment id "
                             "per token")
        if segments.is_floating_point() or segments.is_complex() or segments.dtype == torch.bool:
            raise TypeError(f"segments: expected integer segment ids, got {segments.dtype}")
        if segments.numel() and (int(segments.min()) < 0 or int(segments.max()) >= n):
            raise ValueError(f"segments holds ids {int(segments.min())}..{int(segments.max())}: expected 0..{n - 1} "
                             f"(n_segments={n})")

    # -- masked-language-model head ------------------------------------------------------------------
    def mlm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores over the vocabulary for each given hidden state (..., d_model) -> (..., vocab)."""
        h = self.mlm_norm(F.gelu(self.mlm_transform(hidden)))
        return F.linear(h, self.embeddings.tokens.weight, self.mlm_bias)

    def mlm_loss(self, ids: torch.Tensor, labels: torch.Tensor, attention_mask: torch.Tensor | None = None):
        """Cross-entropy on the masked positions only (labels = -100 elsewhere), and their accuracy.

        Scoring only the ~15 % masked positions against the vocabulary saves most of the head's cost.
        """
        if not isinstance(labels, torch.Tensor) or labels.shape != ids.shape:
            got = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
            raise ValueError(f"labels has shape {got} but ids has {tuple(ids.shape)}: expected one label per token")
        picked = labels != -100
        if not bool(picked.any()):
            raise ValueError("labels has no masked position (every label is -100): the MLM loss of nothing is "
                             "undefined; mask at least one token")
        hidden = self(ids, attention_mask=attention_mask)
        logits = self.mlm_logits(hidden[picked])
        targets = labels[picked]
        loss = F.cross_entropy(logits.float(), targets)
        return loss, {"acc": (logits.argmax(-1) == targets).float().mean().item()}

    # -- sentence classification head ----------------------------------------------------------------
    def pooled(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.pooler(hidden[:, 0]))  # the [CLS] position summarises the sentence

    def classify(self, ids: torch.Tensor, segments: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Class logits (B, n_classes) from the sentence vector: the pooled [CLS] state, or the mean of the
        real tokens' states (`pooling="mean"`, how sentence-embedding models such as MiniLM were trained)."""
        if attention_mask is None:
            attention_mask = ids != self.cfg.pad_id
        hidden = self(ids, segments, attention_mask)
        sentence = self.pooled(hidden) if self.cfg.pooling == "cls" else mean_pool(hidden, attention_mask)
        return self.classifier(self.drop(sentence))

    # -- Hugging Face checkpoints ---------------------------------------------------------------------
    @classmethod
    def from_hf(cls, path: str | Path, n_classes: int = 2, pooling: str = "cls") -> "BERT":
        """Load a Hugging Face BERT folder (config.json + model.safetensors), from BertModel, BertForMaskedLM or
        BertForSequenceClassification. Heads the checkpoint does not have keep their fresh initialisation."""
        from safetensors.torch import load_file

        path = Path(path)
        weights = path / "model.safetensors"
        if not (path / "config.json").is_file() or not weights.is_file():
            raise FileNotFoundError(f"{path} must hold config.json and model.safetensors (a Hugging Face BERT folder)")
        cfg = BertConfig.from_hf(json.loads((path / "config.json").read_text(encoding="utf-8")), n_classes, pooling)
        model = cls(cfg)
        state = {}
        for name, tensor in load_file(str(weights)).items():
            ours = hf_to_ours(name)
            if ours is not None:
                state[ours] = tensor
        if "classifier.weight" in state and state["classifier.weight"].shape[0] != n_classes:
            raise ValueError(f"the checkpoint's classifier has {state['classifier.weight'].shape[0]} classes, "
                             f"n_classes={n_classes}")
        missing, unexpected = model.load_state_dict(state, strict=False)
        trunk_missing = [k for k in missing if k.startswith(("embeddings.", "layers."))]
        if trunk_missing or unexpected:
            raise ValueError(f"{weights} does not fit a {cfg.n_layers}-layer BERT: missing {trunk_missing[:5]}, "
                             f"unexpected {unexpected[:5]}")
        return model


# Hugging Face parameter names -> ours. The "bert." prefix (task models) is removed first.
_HF_NAMES = [
    (r"embeddings\.word_embeddings\.", "embeddings.tokens."),
    (r"embeddings\.position_embeddings\.", "embeddings.positions."),
    (r"embeddings\.token_type_embeddings\.", "embeddings.segments."),
    (r"embeddings\.LayerNorm\.", "embeddings.norm."),
    (r"encoder\.layer\.(\d+)\.attention\.self\.query\.", r"layers.\1.attn.q_proj."),
    (r"encoder\.layer\.(\d+)\.attention\.self\.key\.", r"layers.\1.attn.k_proj."),
    (r"encoder\.layer\.(\d+)\.attention\.self\.value\.", r"layers.\1.attn.v_proj."),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"layers.\1.attn.out_proj."),
    (r"encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", r"layers.\1.attn_norm."),
    (r"encoder\.layer\.(\d+)\.intermediate\.dense\.", r"layers.\1.ffn_in."),
    (r"encoder\.layer\.(\d+)\.output\.dense\.", r"layers.\1.ffn_out."),
    (r"encoder\.layer\.(\d+)\.output\.LayerNorm\.", r"layers.\1.ffn_norm."),
    (r"pooler\.dense\.", "pooler."),
    (r"cls\.predictions\.transform\.dense\.", "mlm_transform."),
    (r"cls\.predictions\.transform\.LayerNorm\.", "mlm_norm."),
    (r"cls\.predictions\.bias$", "mlm_bias"),
    (r"classifier\.", "classifier."),
]
_HF_SKIP = re.compile(r"(position_ids$|cls\.predictions\.decoder\.|cls\.seq_relationship\.)")  # tied, buffers, NSP


def hf_to_ours(name: str) -> str | None:
    """Our parameter name for a Hugging Face BERT one; None for names we deliberately skip."""
    name = name.removeprefix("bert.")
    if _HF_SKIP.search(name):
        return None
    for pattern, repl in _HF_NAMES:
        new, n = re.subn(f"^{pattern}", repl, name)
        if n:
            return new
    raise ValueError(f"unknown BERT parameter {name!r} in the checkpoint")


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the real tokens' hidden states (B, T, d) -> (B, d): a sentence vector without a trained head."""
    m = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
