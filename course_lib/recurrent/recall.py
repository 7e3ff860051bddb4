"""Lesson 02's delayed-recall race, with its initialisation arms, and a linear probe that reads the memory.

* `Arm`: one way to build the model. An LSTM with a chosen forget-gate bias, or a plain RNN with its
  recurrent matrix left at PyTorch's default, made orthogonal (tanh units, every singular value 1), or made
  the identity with ReLU units (IRNN, Le, Jaitly and Hinton 2015). Both cells have a knob that starts them
  out remembering; a fair race turns both.
* `make_recall_model`: build an arm (course_lib.recipes.recurrent.train_recall trains it on `delayed_recall`:
  training runs live with the recipes, never in a model wing).
* `memory_trace`: what the model carries at every step of a sequence: the LSTM's cell state c_t, the RNN's h_t.
* `probe_accuracy`: fit a multinomial logistic regression on one set of sequences and score it on held-out
  ones, at every step: can the remembered symbol be read back, linearly, out of the memory?
* `recall_gradient_by_distance`: lesson 01's gradient-vs-distance curve on a recall model, where the one input
  that matters sits at a known distance from the loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .exploding import set_recurrent_gain
from .gradient_flow import gradient_by_distance
from .lstm import LSTMCell, set_forget_bias
from .rnn import RecurrentConfig, SequenceClassifier
from .synthetic import delayed_recall, delayed_recall_vocab

RNN_INITS = ("default", "orthogonal", "identity")


@dataclass(frozen=True)
class Arm:
    """cell "lstm" with `forget_bias` (None: PyTorch's default init, whose forget bias is near 0), or cell "rnn"
    with `recurrent` in RNN_INITS ("identity" also switches the units to ReLU, as the IRNN does)."""
    cell: str
    forget_bias: float | None = None
    recurrent: str = "default"

    def __post_init__(self):
        if self.cell not in ("rnn", "lstm"):
            raise ValueError(f"cell={self.cell!r}: expected 'rnn' or 'lstm'")
        if self.recurrent not in RNN_INITS:
            raise ValueError(f"recurrent={self.recurrent!r}: expected one of {RNN_INITS}")
        if self.cell == "lstm" and self.recurrent != "default":
            raise ValueError("recurrent= is the RNN's knob; an LSTM's is forget_bias=")
        if self.cell == "rnn" and self.forget_bias is not None:
            raise ValueError("an RNN has no forget gate")

    @property
    def label(self) -> str:
        if self.cell == "lstm":
            return "LSTM, default init" if self.forget_bias is None else f"LSTM, forget bias {self.forget_bias:+g}"
        return {"default": "RNN, default init", "orthogonal": "RNN, orthogonal W_hh",
                "identity": "IRNN (ReLU, W_hh = I)"}[self.recurrent]


def make_recall_model(arm: Arm, hidden: int, n_symbols: int = 8, embed: int = 16) -> SequenceClassifier:
    """A SequenceClassifier for `delayed_recall`, initialised as `arm` says (uses the global torch RNG)."""
    cfg = RecurrentConfig(vocab_size=delayed_recall_vocab(n_symbols), n_classes=n_symbols, embed=embed,
                          hidden=hidden, cell=arm.cell)
    model = SequenceClassifier(cfg)
    net = model.rnn.net
    if arm.cell == "lstm":
        if arm.forget_bias is not None:
            set_forget_bias(net, arm.forget_bias)
    elif arm.recurrent == "orthogonal":
        set_recurrent_gain(net.weight_hh_l0, 1.0)
    elif arm.recurrent == "identity":          # Le et al. 2015: ReLU units, W_hh = I, recurrent bias 0
        net.nonlinearity, net.mode = "relu", "RNN_RELU"    # what nn.RNN(..., nonlinearity="relu") sets
        with torch.no_grad():
            net.weight_hh_l0.copy_(torch.eye(hidden))
            net.bias_hh_l0.zero_()
            net.bias_ih_l0.zero_()
    return model


def full_lengths(x: torch.Tensor) -> torch.Tensor:
    return torch.full((x.shape[0],), x.shape[1], device=x.device)


@torch.no_grad()
def recall_accuracy(model: nn.Module, delay: int, n: int, seed: int = 999, device="cpu") -> float:
    """Accuracy at the cue on `n` fresh sequences (a fixed seed: every model sees the same test set)."""
    x, y = delayed_recall(n, delay, generator=torch.Generator().manual_seed(seed))
    was = model.training
    model.eval()
    acc = (model(x.to(device), full_lengths(x)).argmax(-1).cpu() == y).float().mean().item()
    model.train(was)
    return acc


def lstm_cell_of(model: SequenceClassifier) -> LSTMCell:
    """Our LSTMCell holding layer 0 of the model's fused nn.LSTM, so the cell state can be read at every step."""
    net = model.rnn.net
    cell = LSTMCell(net.input_size, net.hidden_size).to(net.weight_hh_l0.device)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(getattr(net, f"{name}_l0"))
    return cell


class RNNLayerStep(nn.Module):
    """Layer 0 of a fused nn.RNN driven one token at a time, so `unroll` and `gradient_by_distance` can step it.

    It calls the layer itself, so it keeps the layer's units (tanh, or ReLU in the IRNN) and its weights."""

    def __init__(self, net: nn.RNN):
        super().__init__()
        if not isinstance(net, nn.RNN) or net.num_layers != 1:
            raise ValueError(f"net: expected a one-layer nn.RNN, got {type(net).__name__}")
        self.net, self.hidden_size = net, net.hidden_size

    def initial_state(self, batch: int, device=None) -> torch.Tensor:
        return torch.zeros(batch, self.hidden_size, device=device)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        x = x[:, None] if self.net.batch_first else x[None]
        return self.net(x, h[None].contiguous())[1][0]


def step_cell_of(model: SequenceClassifier) -> nn.Module:
    """A cell that steps the model's recurrent layer one token at a time: `lstm_cell_of` or `RNNLayerStep`."""
    return lstm_cell_of(model) if model.cfg.cell == "lstm" else RNNLayerStep(model.rnn.net)


def recall_gradient_by_distance(model: SequenceClassifier, delay: int, n: int = 256, seed: int = 11,
                                n_symbols: int = 8) -> torch.Tensor:
    """Mean over `n` fresh sequences of ||d score / d input_t||, indexed by distance from the cue: 0 = the cue,
    1..delay = the distractors, delay + 1 = the symbol (float64, as `gradient_by_distance`).

    The score is the right answer's logit minus the mean logit. Not the cross-entropy: a model sure of its
    answer has a cross-entropy near 0 and so a gradient near 0 at every distance, which would measure its
    confidence, not how far back the signal reaches. Minus the mean: a shift of every logit at once changes no
    prediction, so it should not count as signal."""
    if delay < 0 or n < 1:
        raise ValueError(f"need delay >= 0 and n >= 1, got delay={delay}, n={n}")
    device = model.embed.weight.device
    x, y = delayed_recall(n, delay, n_symbols, generator=torch.Generator().manual_seed(seed))
    x, y = x.to(device), y.to(device)

    def score(logits):
        return (logits.gather(1, y[:, None])[:, 0] - logits.mean(1)).sum()

    return gradient_by_distance(model.embed, step_cell_of(model), model.head, x, score)


@torch.no_grad()
def memory_trace(model: SequenceClassifier, x: torch.Tensor) -> torch.Tensor:
    """(batch, time, hidden): the LSTM's cell state c_t, or the RNN's hidden state h_t, after reading token t."""
    emb = model.embed(x.to(model.embed.weight.device))
    if model.cfg.cell == "rnn":
        return model.rnn.net(emb)[0]
    cell = lstm_cell_of(model)
    state, cs = cell.initial_state(x.shape[0], emb.device), []
    for t in range(x.shape[1]):
        state = cell(emb[:, t], state)
        cs.append(state[1])
    return torch.stack(cs, dim=1)


def fit_linear_probe(features: torch.Tensor, labels: torch.Tensor, n_classes: int, l2: float = 1e-3,
                     iters: int = 200) -> nn.Linear:
    """Multinomial logistic regression (features standardised inside), fitted by L-BFGS: deterministic."""
    x = features.detach().double().cpu()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    x = (x - mean) / std
    probe = nn.Linear(x.shape[1], n_classes).double()
    nn.init.zeros_(probe.weight)
    nn.init.zeros_(probe.bias)
    opt = torch.optim.LBFGS(probe.parameters(), max_iter=iters, line_search_fn="strong_wolfe")
    y = labels.cpu()

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(probe(x), y) + l2 * probe.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():                       # fold the standardisation into the weights
        w = probe.weight / std
        probe.bias -= (probe.weight * (mean / std)).sum(1)
        probe.weight.copy_(w)
    return probe


def probe_accuracy(train_feats: torch.Tensor, train_y: torch.Tensor, test_feats: torch.Tensor,
                   test_y: torch.Tensor, n_classes: int, steps=None) -> list[float]:
    """For each step t (or each t in `steps`): fit a probe on train_feats[:, t], return its accuracy on
    test_feats[:, t]. feats: (batch, time, dim); y: (batch,)."""
    steps = range(train_feats.shape[1]) if steps is None else steps
    accs = []
    for t in steps:
        probe = fit_linear_probe(train_feats[:, t], train_y, n_classes)
        with torch.no_grad():
            pred = probe(test_feats[:, t].detach().double().cpu()).argmax(-1)
        accs.append((pred == test_y.cpu()).double().mean().item())
    return accs


def memory_probe(model: SequenceClassifier, delay: int, steps=None, n_train: int = 2000, n_test: int = 1000,
                 shuffle_labels: bool = False, seed: int = 7, n_symbols: int = 8) -> list[float]:
    """Held-out accuracy of a linear probe that reads the remembered symbol out of `memory_trace` at each step
    in `steps` (default: every step, 0 = the symbol, delay + 1 = the cue). Train and test sequences are
    drawn with different seeds; `shuffle_labels` permutes the training labels (the control: must be at chance)."""
    x_tr, y_tr = delayed_recall(n_train, delay, n_symbols, generator=torch.Generator().manual_seed(seed))
    x_te, y_te = delayed_recall(n_test, delay, n_symbols, generator=torch.Generator().manual_seed(seed + 1))
    if shuffle_labels:
        y_tr = y_tr[torch.randperm(n_train, generator=torch.Generator().manual_seed(seed + 2))]
    return probe_accuracy(memory_trace(model, x_tr), y_tr, memory_trace(model, x_te), y_te, n_symbols, steps)


def recall_arms(tuned_forget_bias: float = 5.0) -> list[Arm]:
    """Lesson 02's five arms: the LSTM at forget bias 0, +1 (the usual default) and the task-tuned value; the RNN
    with PyTorch's default init and as an IRNN (identity W_hh, ReLU units)."""
    return [Arm("lstm", 0.0), Arm("lstm", 1.0), Arm("lstm", float(tuned_forget_bias)), Arm("rnn"),
            Arm("rnn", recurrent="identity")]
