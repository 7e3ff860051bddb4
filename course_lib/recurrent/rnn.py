"""Recurrent networks: the vanilla RNN cell, unrolling through time, and two models built on any cell
(a character language model and a many-to-one sequence classifier).

`RNNCell` names its weights exactly as `torch.nn.RNN` names layer 0's (without the `_l0`), so weights copy
across; the tests check that the two agree to 1e-5. Models take `impl="torch"` (PyTorch's fused kernels,
fast) or `impl="scratch"` (our cells unrolled in Python, the code the lessons teach); both compute the same
function.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.presets import Presets


class RNNCell(nn.Module):
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh): the whole idea of an RNN in one line."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.hidden_size)  # PyTorch's initialisation, so training behaves alike
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def initial_state(self, batch: int, device=None) -> torch.Tensor:
        return torch.zeros(batch, self.hidden_size, device=device)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh))


def hidden_of(state):
    """The part of a cell's state that the next layer sees: h itself (RNN) or h of (h, c) (LSTM)."""
    return state[0] if isinstance(state, tuple) else state


def unroll(cell: nn.Module, x: torch.Tensor, state=None, keep_states: bool = False):
    """Run `cell` over time. x: (batch, time, features). Returns (outputs (batch, time, hidden), last state).

    With `keep_states`, also returns the list of every state, each still attached to the graph, which is what
    the vanishing-gradient probe differentiates against.
    """
    if state is None:
        state = cell.initial_state(x.shape[0], device=x.device)
    outputs, states = [], []
    for t in range(x.shape[1]):
        state = cell(x[:, t], state)
        outputs.append(hidden_of(state))
        if keep_states:
            states.append(state)
    out = torch.stack(outputs, dim=1)
    return (out, state, states) if keep_states else (out, state)


def make_cell(kind: str, input_size: int, hidden_size: int) -> nn.Module:
    if kind == "rnn":
        return RNNCell(input_size, hidden_size)
    if kind == "lstm":
        from .lstm import LSTMCell

        return LSTMCell(input_size, hidden_size)
    raise ValueError(f"cell={kind!r}: expected 'rnn' or 'lstm'")


def make_torch_recurrent(kind: str, input_size: int, hidden_size: int, layers: int = 1, dropout: float = 0.0):
    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}.get(kind)
    if cls is None:
        raise ValueError(f"cell={kind!r}: expected 'rnn', 'lstm' or 'gru'")
    return cls(input_size, hidden_size, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)


def copy_cell_into_torch(cell: nn.Module, torch_rnn: nn.Module, layer: int = 0) -> None:
    """Copy a scratch cell's weights into layer `layer` of nn.RNN / nn.LSTM (same layout, `_l{layer}` suffix)."""
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(torch_rnn, f"{name}_l{layer}").copy_(getattr(cell, name))


class Recurrent(nn.Module):
    """A single- or multi-layer recurrent stack, fused (`impl="torch"`) or unrolled from scratch."""

    def __init__(self, kind: str, input_size: int, hidden_size: int, layers: int = 1, impl: str = "torch",
                 dropout: float = 0.0):
        super().__init__()
        if impl not in ("torch", "scratch"):
            raise ValueError(f"impl={impl!r}: expected 'torch' or 'scratch'")
        self.kind, self.impl, self.hidden_size = kind, impl, hidden_size
        if impl == "torch":
            self.net = make_torch_recurrent(kind, input_size, hidden_size, layers, dropout)
        else:
            self.cells = nn.ModuleList(
                make_cell(kind, input_size if i == 0 else hidden_size, hidden_size) for i in range(layers))
            self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.impl == "torch":
            return self.net(x)[0]
        for i, cell in enumerate(self.cells):
            x = unroll(cell, self.drop(x) if i else x)[0]
        return x


@dataclass
class RecurrentConfig(Presets):
    vocab_size: int = 65
    n_classes: int = 0          # 0: a language model (predict the next token); >0: a classifier
    embed: int = 64
    hidden: int = 256
    layers: int = 1
    cell: str = "rnn"           # "rnn", "lstm" or "gru" (gru: torch impl only)
    impl: str = "torch"         # "torch" (fused) or "scratch" (our cells)
    dropout: float = 0.0

    PRESETS = {
        "smoke": dict(embed=16, hidden=32),
        "lesson": dict(embed=64, hidden=256),
        "gpu": dict(embed=128, hidden=512),
    }


class CharLM(nn.Module):
    """Embedding -> recurrent stack -> a linear read-out over the vocabulary at every step (many-to-many)."""

    def __init__(self, cfg: RecurrentConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed)
        self.rnn = Recurrent(cfg.cell, cfg.embed, cfg.hidden, cfg.layers, cfg.impl, cfg.dropout)
        self.head = nn.Linear(cfg.hidden, cfg.vocab_size)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.head(self.rnn(self.embed(idx)))
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())

    @torch.no_grad()
    def sample(self, prompt: torch.Tensor, steps: int, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Continue `prompt` (1-D ids) by `steps` tokens, sampling at `temperature`.

        Re-reads the (last 256 tokens of the) text each step: simple and correct, but wasteful. A recurrent net
        can do better: keep the hidden state and feed only the new token, O(1) work per token however long the
        text, which is the one real advantage RNNs keep over Transformers (whose KV cache, lesson 06, still grows).
        """
        if temperature <= 0:
            raise ValueError("temperature must be > 0 (use argmax for greedy decoding)")
        was_training = self.training
        self.eval()
        idx = prompt.view(1, -1)
        for _ in range(steps):
            logits = self(idx[:, -256:])[:, -1] / temperature
            nxt = torch.multinomial(F.softmax(logits, -1).cpu(), 1, generator=generator).to(idx.device)
            idx = torch.cat([idx, nxt], dim=1)
        self.train(was_training)
        return idx[0]


class SequenceClassifier(nn.Module):
    """Many-to-one: read a padded sequence, classify from the hidden state at each sequence's last real step."""

    def __init__(self, cfg: RecurrentConfig):
        super().__init__()
        if cfg.n_classes < 2:
            raise ValueError("a classifier needs n_classes >= 2")
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed)
        self.rnn = Recurrent(cfg.cell, cfg.embed, cfg.hidden, cfg.layers, cfg.impl, cfg.dropout)
        self.head = nn.Linear(cfg.hidden, cfg.n_classes)

    def forward(self, idx: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if (lengths < 1).any():
            raise ValueError("every sequence needs at least one token")
        out = self.rnn(self.embed(idx))                        # (B, T, H); steps after the end are ignored
        last = out[torch.arange(idx.shape[0], device=idx.device), lengths - 1]
        return self.head(last)


