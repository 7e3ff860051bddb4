"""Sequence to sequence (Sutskever et al., 2014; Cho et al., 2014): an encoder reads the source sentence,
a decoder writes the translation one word at a time.

    lesson 03  Decoder:           every step sees the previous word + ONE fixed vector (the encoder's final state)
    lesson 04  AttentionDecoder:  every step sees the previous word + a fresh weighted average of ALL the
                                  encoder's outputs (Bahdanau attention, course_lib.transformer.attention.AdditiveAttention)

That is the only difference between the two models, so comparing them measures what attention adds.
Both speak course_lib.translation.decoding's protocol (`encode`, `decode_step`), so greedy and beam search are shared.
Recurrent states are kept batch-first, (B, layers, H), so that beam search can reorder them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .additive_attention import AdditiveAttention, UniformAttention
from ..core.presets import Presets


@dataclass
class Seq2SeqConfig(Presets):
    src_vocab: int = 1000
    tgt_vocab: int = 1000
    embed: int = 128
    hidden: int = 256              # decoder width; the bidirectional encoder gives each direction hidden // 2
    bidirectional: bool = True     # False: one GRU reads left to right with all `hidden` units (Sutskever et al.)
    layers: int = 1
    cell: str = "gru"              # "gru" or "lstm" (nn.GRU / nn.LSTM: lesson 02 built the LSTM cell itself)
    dropout: float = 0.0
    attention: bool = False        # False: lesson 03's fixed context; True: lesson 04's attention
    attention_weights: str = "learned"  # with attention: "learned" (additive scores) or "uniform" (the mean of
                                        # the real source states at every step: lesson 04's ablation)
    attn_dim: int = 0              # width of the attention's scoring layer; 0: same as hidden
    teacher_forcing: float = 1.0   # during training, the chance of feeding the true previous word
    pad_id: int = 0

    PRESETS = {
        "smoke": dict(embed=32, hidden=64),
        "lesson": dict(embed=128, hidden=256),
        "gpu": dict(embed=256, hidden=512, layers=2, dropout=0.2),
    }

    def __post_init__(self):
        if self.cell not in ("gru", "lstm"):
            raise ValueError(f"cell={self.cell!r}: expected 'gru' or 'lstm'")
        if self.bidirectional and self.hidden % 2:
            raise ValueError(f"hidden={self.hidden} must be even (the encoder's two directions share it)")
        if self.attention_weights not in ("learned", "uniform"):
            raise ValueError(f"attention_weights={self.attention_weights!r}: expected 'learned' or 'uniform'")
        if not 0.0 <= self.teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing={self.teacher_forcing} must be a probability in [0, 1]")


def _recurrent(cfg: Seq2SeqConfig, input_size: int, hidden: int, bidirectional: bool = False) -> nn.RNNBase:
    cls = nn.GRU if cfg.cell == "gru" else nn.LSTM
    return cls(input_size, hidden, num_layers=cfg.layers, batch_first=True, bidirectional=bidirectional,
               dropout=cfg.dropout if cfg.layers > 1 else 0.0)


def _to_torch(state):       # (B, layers, H) -> (layers, B, H), as nn.GRU / nn.LSTM want it
    return tuple(_to_torch(s) for s in state) if isinstance(state, tuple) else state.transpose(0, 1).contiguous()


def _from_torch(state):
    return tuple(_from_torch(s) for s in state) if isinstance(state, tuple) else state.transpose(0, 1)


def _top_hidden(state) -> torch.Tensor:     # the top layer's h: what the decoder "is thinking" now
    return (state[0] if isinstance(state, tuple) else state)[:, -1]


class Memory(NamedTuple):
    """What the encoder hands the decoder. Every tensor is batch-first (beam search reorders rows)."""
    outputs: torch.Tensor              # (B, S, H): one vector per source position
    summary: torch.Tensor              # (B, H): the top layer's final state, lesson 03's fixed context
    state: Any                         # the decoder's first state: (B, layers, H), or (h, c) for an LSTM
    keys: torch.Tensor | None = None   # attention's projection of `outputs`, computed once (lesson 04)


class Encoder(nn.Module):
    """Embedding -> bidirectional GRU/LSTM (each direction hidden // 2 units, their states side by side), or, with
    `bidirectional=False`, one left-to-right GRU/LSTM of `hidden` units: either way the fixed vector has `hidden`
    numbers. Padding is packed away, so it never changes a real token's output."""

    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.src_vocab, cfg.embed, padding_idx=cfg.pad_id)
        self.directions = 2 if cfg.bidirectional else 1
        self.rnn = _recurrent(cfg, cfg.embed, cfg.hidden // self.directions, bidirectional=cfg.bidirectional)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, src: torch.Tensor, src_mask: torch.Tensor) -> Memory:
        if src.dim() != 2 or src_mask.shape != src.shape or src_mask.dtype != torch.bool:
            raise ValueError(f"expected src (batch, length) ids and a bool src_mask of the same shape, "
                             f"got {tuple(src.shape)} and {tuple(src_mask.shape)} {src_mask.dtype}")
        lengths = src_mask.sum(dim=1)
        if (lengths == 0).any():
            raise ValueError("a source sentence has no tokens; end every source with <eos> (TranslationData does)")
        x = self.drop(self.embed(src))
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, final = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        B, L, H, D = src.shape[0], self.cfg.layers, self.cfg.hidden, self.directions

        def join(f: torch.Tensor) -> torch.Tensor:  # (layers*D, B, H/D) -> (B, layers, H): both directions
            return f.view(L, D, B, H // D).permute(2, 0, 1, 3).reshape(B, L, H)

        state = tuple(join(f) for f in final) if isinstance(final, tuple) else join(final)
        return Memory(out, _top_hidden(state), state)


class Decoder(nn.Module):
    """Lesson 03: input at each step = [previous word ; the fixed source vector]; the next-word scores are read
    from tanh(W [state ; vector]) (Luong et al., 2015), a vector of the embedding's size, which keeps the
    costly vocabulary-sized layer small."""

    fixed_context = True

    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.tgt_vocab, cfg.embed, padding_idx=cfg.pad_id)
        self.rnn = _recurrent(cfg, cfg.embed + cfg.hidden, cfg.hidden)
        self.drop = nn.Dropout(cfg.dropout)
        self.combine = nn.Linear(2 * cfg.hidden, cfg.embed)
        self.head = nn.Linear(cfg.embed, cfg.tgt_vocab)

    def readout(self, out: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(torch.tanh(self.combine(torch.cat([out, context], dim=-1)))))

    def prepare(self, memory: Memory) -> Memory:
        return memory

    def context(self, query: torch.Tensor, memory: Memory, src_mask: torch.Tensor):
        """(context (B, H), attention weights (B, S) or None). Here: the same summary at every step."""
        return memory.summary, None

    def step(self, prev: torch.Tensor, state, memory: Memory, src_mask: torch.Tensor):
        """One word: prev (B,) ids -> (logits (B, V), new state, weights or None)."""
        context, weights = self.context(_top_hidden(state), memory, src_mask)
        x = torch.cat([self.drop(self.embed(prev)), context], dim=-1)[:, None]
        out, state = self.rnn(x, _to_torch(state))
        return self.readout(out[:, 0], context), _from_torch(state), weights

    def forward(self, tgt_in: torch.Tensor, memory: Memory, src_mask: torch.Tensor, teacher_forcing: float = 1.0):
        """All target steps: tgt_in (B, T) -> (logits (B, T, V), weights (B, T, S) or None).

        teacher_forcing = 1 feeds the true previous word at every step; below 1, each step feeds the model's
        own previous guess with probability 1 - teacher_forcing (closer to what happens at translation time).
        """
        if self.fixed_context and teacher_forcing >= 1.0:
            # the context is the same at every step, so the whole sequence can go through the RNN at once
            context, w = self.context(_top_hidden(memory.state), memory, src_mask)
            context = context[:, None].expand(-1, tgt_in.shape[1], -1)
            out, _ = self.rnn(torch.cat([self.drop(self.embed(tgt_in)), context], -1), _to_torch(memory.state))
            return self.readout(out, context), (None if w is None else w[:, None].expand(-1, tgt_in.shape[1], -1))
        state, prev = memory.state, tgt_in[:, 0]
        logits, weights = [], []
        for t in range(tgt_in.shape[1]):
            step_logits, state, w = self.step(prev, state, memory, src_mask)
            logits.append(step_logits)
            weights.append(w)
            if t + 1 < tgt_in.shape[1]:
                prev = tgt_in[:, t + 1]
                if teacher_forcing < 1.0:
                    own = torch.rand(prev.shape, device=prev.device) >= teacher_forcing
                    prev = torch.where(own, step_logits.argmax(-1), prev)
        return torch.stack(logits, 1), (None if weights[0] is None else torch.stack(weights, 1))


class AttentionDecoder(Decoder):
    """Lesson 04: the context is recomputed at every step by attending, with the decoder's previous state as
    the query, over all the encoder's outputs (Bahdanau et al., 2015). Everything else is lesson 03's.

    With cfg.attention_weights == "uniform" (the ablation) every real source state gets the same weight at every
    step: the same parameters, but no choosing. That context does not change between steps, so training runs the
    target through the RNN in one call, as lesson 03's decoder does (the same numbers as step by step)."""

    fixed_context = False

    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__(cfg)
        kind = UniformAttention if cfg.attention_weights == "uniform" else AdditiveAttention
        self.attention = kind(cfg.hidden, cfg.hidden, cfg.attn_dim or cfg.hidden)
        self.fixed_context = kind is UniformAttention

    def prepare(self, memory: Memory) -> Memory:
        return memory._replace(keys=self.attention.project_keys(memory.outputs))

    def context(self, query: torch.Tensor, memory: Memory, src_mask: torch.Tensor):
        return self.attention(query, memory.outputs, src_mask, memory.keys)


class Seq2Seq(nn.Module):
    """Encoder + (fixed-context or attention) decoder."""

    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = (AttentionDecoder if cfg.attention else Decoder)(cfg)

    # -- the decoding protocol (course_lib.translation.decoding) ------------------------------------------------
    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> Memory:
        return self.decoder.prepare(self.encoder(src, src_mask))

    def decode_step(self, tokens: torch.Tensor, state, memory: Memory, src_mask: torch.Tensor):
        logits, state, _ = self.decoder.step(tokens[:, -1], memory.state if state is None else state,
                                             memory, src_mask)
        return logits, state

    # -- training ----------------------------------------------------------------------------------
    def forward(self, src: torch.Tensor, src_mask: torch.Tensor, tgt_in: torch.Tensor,
                teacher_forcing: float | None = None):
        """(logits (B, T, V), attention weights (B, T, S) or None). teacher_forcing defaults to the config's
        ratio in training mode and to 1 (always the true previous word) in eval mode."""
        if teacher_forcing is None:
            teacher_forcing = self.cfg.teacher_forcing if self.training else 1.0
        return self.decoder(tgt_in, self.encode(src, src_mask), src_mask, teacher_forcing)


def seq2seq_loss(model: Seq2Seq, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy per real target token (padding is ignored). For Trainer."""
    logits, _ = model(batch["src"], batch["src_mask"], batch["tgt_in"])
    return F.cross_entropy(logits.flatten(0, 1), batch["tgt_out"].flatten(), ignore_index=model.cfg.pad_id)


@torch.no_grad()
def mean_loss(model: nn.Module, batches, device: torch.device | str) -> float:
    """Cross-entropy per real target token over an iterable of batches (teacher-forced, eval mode)."""
    total = tokens = 0.0
    for batch in batches:
        batch = {k: v.to(device) for k, v in batch.items()}
        n = (batch["tgt_out"] != model.cfg.pad_id).sum().item()
        total += seq2seq_loss(model, batch).item() * n
        tokens += n
    return total / max(tokens, 1)


