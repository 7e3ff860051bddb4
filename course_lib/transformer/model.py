"""The Transformer (Vaswani et al., 2017): an encoder-decoder built from attention alone, no recurrence.

    encoder layer:  x = x + SelfAttention(LN(x));                     x = x + FFN(LN(x))
    decoder layer:  y = y + CausalSelfAttention(LN(y));  y = y + CrossAttention(LN(y), memory);  y = y + FFN(LN(y))

(the pre-norm form, our default; `norm_first=False` gives the paper's post-norm `x = LN(x + sublayer(x))`).
Attention cannot tell positions apart, so sinusoidal position codes are added to the token embeddings.
Every position of a sentence is computed at once, which is why it trains faster than a recurrent network.
The layers take PyTorch's `nn.TransformerEncoderLayer` / `nn.TransformerDecoderLayer` semantics (ReLU FFN,
LayerNorm eps 1e-5), so the tests can copy weights across and compare outputs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import MultiHeadAttention, as_torch_attention, key_mask
from ..core.checks import integer, real
from ..core.presets import Presets


@dataclass
class TransformerConfig(Presets):
    src_vocab: int = 1000
    tgt_vocab: int = 1000
    d_model: int = 128
    n_heads: int = 4
    encoder_layers: int = 2
    decoder_layers: int = 2
    d_ff: int = 512              # hidden width of the position-wise feed-forward network
    dropout: float = 0.1
    max_len: int = 128           # longest sequence the position table covers
    norm_first: bool = True      # pre-norm (stable without warmup tricks); False: the 2017 post-norm
    positional: bool = True      # False drops the position codes (the permutation experiment)
    tie_embeddings: bool = True  # the output layer reuses the target embedding matrix
    pad_id: int = 0

    # lesson: untied output layer so the parameter count matches lesson 04's attention GRU (3.4 M on eng-fra);
    # no dropout at smoke/lesson, which train on less than one epoch: nothing to overfit yet.
    PRESETS = {
        "smoke": dict(d_model=32, n_heads=2, encoder_layers=1, decoder_layers=1, d_ff=64, dropout=0.0),
        "lesson": dict(d_model=128, n_heads=4, encoder_layers=2, decoder_layers=2, d_ff=512, dropout=0.0,
                       tie_embeddings=False),
        "gpu": dict(d_model=512, n_heads=8, encoder_layers=6, decoder_layers=6, d_ff=2048, dropout=0.1),
    }

    def __post_init__(self):
        for name in ("src_vocab", "tgt_vocab", "d_model", "n_heads", "d_ff", "max_len"):
            integer(name, getattr(self, name), 1)
        for name in ("encoder_layers", "decoder_layers"):
            integer(name, getattr(self, name), 0)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        if not 0.0 <= real("dropout", self.dropout) < 1.0:
            raise ValueError(f"dropout={self.dropout}: expected a probability in [0, 1)")
        if self.d_model % 2:
            raise ValueError(f"d_model={self.d_model} must be even for sine/cosine position pairs")


def sinusoidal_encoding(max_len: int, d_model: int) -> torch.Tensor:
    """(max_len, d_model): PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(same angle).

    Each pair of columns is a clock running at its own speed, from one turn every 2*pi positions down to one
    every 10000*2*pi; together they give every position a distinct code, and PE[p + k] is a fixed rotation
    of PE[p], so "k steps apart" looks the same everywhere.
    """
    if d_model % 2:
        raise ValueError(f"d_model={d_model} must be even")
    position = torch.arange(max_len, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(max_len, d_model)
    pe[:, 0::2] = torch.sin(position * frequency)
    pe[:, 1::2] = torch.cos(position * frequency)
    return pe


class FeedForward(nn.Module):
    """The same two-layer MLP applied to every position on its own: where each token 'thinks' about what
    attention gathered for it."""

    def __init__(self, d_model: int, d_ff: int, dropout: float):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(F.relu(self.linear1(x))))


class _Residual(nn.Module):
    """One sublayer with its skip connection and LayerNorm, in the pre-norm or post-norm arrangement."""

    def __init__(self, d_model: int, dropout: float, norm_first: bool):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.norm_first = norm_first

    def forward(self, x: torch.Tensor, sublayer) -> torch.Tensor:
        if self.norm_first:   # the skip path stays an untouched identity: gradients reach early layers intact
            return x + self.dropout(sublayer(self.norm(x)))
        return self.norm(x + self.dropout(sublayer(x)))


class EncoderLayer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.1, norm_first: bool = True):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ff = FeedForward(d_model, d_ff, dropout)
        self.attn_block = _Residual(d_model, dropout, norm_first)
        self.ff_block = _Residual(d_model, dropout, norm_first)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.attn_block(x, lambda h: self.self_attn(h, mask=mask))   # every token looks at every token
        return self.ff_block(x, self.ff)


class DecoderLayer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.1, norm_first: bool = True):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ff = FeedForward(d_model, d_ff, dropout)
        self.self_block = _Residual(d_model, dropout, norm_first)
        self.cross_block = _Residual(d_model, dropout, norm_first)
        self.ff_block = _Residual(d_model, dropout, norm_first)

    def forward(self, y: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None = None,
                past: torch.Tensor | None = None) -> torch.Tensor:
        """y (B, T, d): the target so far. When translating word by word, y may hold only the newest positions
        and `past` (B, t, d) this layer's inputs at the earlier ones, which are then not recomputed."""
        if past is None:
            y = self.self_block(y, lambda h: self.self_attn(h, causal=True))   # no peeking at later words
        else:
            context = torch.cat([past, y], dim=1)
            if self.self_block.norm_first:
                context = self.self_block.norm(context)
            y = self.self_block(y, lambda h: self.self_attn(h, context, causal=True))
        y = self.cross_block(y, lambda h: self.cross_attn(h, memory, mask=memory_mask))  # look at the source
        return self.ff_block(y, self.ff)


def as_torch_layer(layer: EncoderLayer | DecoderLayer) -> nn.TransformerEncoderLayer | nn.TransformerDecoderLayer:
    """PyTorch's own layer (batch_first, same norm placement) holding copies of our weights: the oracle."""
    attn, ff = layer.self_attn, layer.ff
    if isinstance(layer, EncoderLayer):
        kind, blocks = nn.TransformerEncoderLayer, [layer.attn_block, layer.ff_block]
    else:
        kind, blocks = nn.TransformerDecoderLayer, [layer.self_block, layer.cross_block, layer.ff_block]
    theirs = kind(attn.d_model, attn.n_heads, ff.linear1.out_features, dropout=ff.dropout.p, batch_first=True,
                  norm_first=blocks[0].norm_first)
    theirs.self_attn = as_torch_attention(attn)
    if isinstance(layer, DecoderLayer):
        theirs.multihead_attn = as_torch_attention(layer.cross_attn)
    theirs.linear1.load_state_dict(ff.linear1.state_dict())
    theirs.linear2.load_state_dict(ff.linear2.state_dict())
    for i, block in enumerate(blocks, 1):           # our per-sublayer norms are PyTorch's norm1, norm2, ...
        getattr(theirs, f"norm{i}").load_state_dict(block.norm.state_dict())
    return theirs.to(attn.q_proj.weight.device)


class Transformer(nn.Module):
    """Encoder-decoder for translation. Token ids in, next-token logits out (teacher forcing).

    Also speaks the decoding protocol of course_lib.translation.decoding (`encode` + `decode_step`), so greedy and beam
    search are the same code as for the recurrent models of lessons 03 and 04.
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.src_embed = nn.Embedding(cfg.src_vocab, d, padding_idx=cfg.pad_id)
        self.tgt_embed = nn.Embedding(cfg.tgt_vocab, d, padding_idx=cfg.pad_id)
        self.register_buffer("pe", sinusoidal_encoding(cfg.max_len, d), persistent=False)
        self.dropout = nn.Dropout(cfg.dropout)
        self.encoder = nn.ModuleList(EncoderLayer(d, cfg.n_heads, cfg.d_ff, cfg.dropout, cfg.norm_first)
                                     for _ in range(cfg.encoder_layers))
        self.decoder = nn.ModuleList(DecoderLayer(d, cfg.n_heads, cfg.d_ff, cfg.dropout, cfg.norm_first)
                                     for _ in range(cfg.decoder_layers))
        # pre-norm leaves the residual stream un-normalised, so one last LayerNorm before it is read out
        self.encoder_norm = nn.LayerNorm(d) if cfg.norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d) if cfg.norm_first else nn.Identity()
        self.head = nn.Linear(d, cfg.tgt_vocab, bias=False)
        for table in (self.src_embed, self.tgt_embed):
            # std d^-1/2: after the sqrt(d) scale below, token vectors and position codes have similar size
            nn.init.normal_(table.weight, std=d ** -0.5)
            with torch.no_grad():
                table.weight[cfg.pad_id].zero_()
        if cfg.tie_embeddings:
            self.head.weight = self.tgt_embed.weight

    def embed(self, tokens: torch.Tensor, table: nn.Embedding, start: int = 0) -> torch.Tensor:
        """Token vectors (scaled by sqrt(d)) plus the codes of positions start, start + 1, ..."""
        if tokens.dim() != 2:
            raise ValueError(f"expected token ids of shape (batch, length), got {tuple(tokens.shape)}")
        if start + tokens.shape[1] > self.cfg.max_len:
            raise ValueError(f"sequence of {start + tokens.shape[1]} tokens is longer than max_len={self.cfg.max_len}")
        x = table(tokens) * math.sqrt(self.cfg.d_model)
        if self.cfg.positional:
            x = x + self.pe[start:start + tokens.shape[1]]
        return self.dropout(x)

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor | None = None) -> torch.Tensor:
        """src (B, S) ids -> memory (B, S, d_model): one vector per source token, in context.

        src_mask (B, S) bool, True at real tokens (course_lib.translation.pipeline's batches carry it); None: every
        token that is not `pad_id`.
        """
        mask = key_mask(src != self.cfg.pad_id if src_mask is None else src_mask)
        x = self.embed(src, self.src_embed)
        for layer in self.encoder:
            x = layer(x, mask)
        return self.encoder_norm(x)

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor | None = None
               ) -> torch.Tensor:
        """tgt_in (B, T) ids starting with <bos> -> logits (B, T, tgt_vocab) for the next token at each place.

        src_mask (B, S) bool says which memory rows are real tokens; None: all of them.
        """
        mask = None if src_mask is None else key_mask(src_mask)
        y = self.embed(tgt_in, self.tgt_embed)
        for layer in self.decoder:
            y = layer(y, memory, mask)
        return self.head(self.decoder_norm(y))

    def forward(self, src: torch.Tensor, src_mask: torch.Tensor | None, tgt_in: torch.Tensor
                ) -> tuple[torch.Tensor, None]:
        """Teacher forcing: (logits (B, T, tgt_vocab), None). Same call as lesson 03/04's `Seq2Seq`, so their
        loss and evaluation code runs unchanged; None stands where they return attention weights (here there
        are layers x heads of them: see `course_lib.transformer.attention.record_attention`)."""
        src_mask = src != self.cfg.pad_id if src_mask is None else src_mask
        return self.decode(tgt_in, self.encode(src, src_mask), src_mask), None

    def decode_step(self, tokens: torch.Tensor, state: list[torch.Tensor] | None, memory: torch.Tensor,
                    src_mask: torch.Tensor | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """course_lib.translation.decoding's protocol: logits (B, V) for the token after `tokens` (B, t).

        Only the newest token goes through the decoder. `state` keeps, for each layer, its inputs at the
        earlier positions (B, t - 1, d), so the newest token can attend to them without recomputing them.
        (Lesson 06 goes one step further and keeps the keys and values themselves.)
        """
        new = tokens if state is None else tokens[:, -1:]
        y = self.embed(new, self.tgt_embed, start=tokens.shape[1] - new.shape[1])
        mask = None if src_mask is None else key_mask(src_mask)
        inputs = []
        for i, layer in enumerate(self.decoder):
            past = None if state is None else state[i]
            inputs.append(y if past is None else torch.cat([past, y], dim=1))
            y = layer(y, memory, mask, past)
        return self.head(self.decoder_norm(y[:, -1])), inputs
