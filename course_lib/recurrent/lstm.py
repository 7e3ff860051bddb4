"""The LSTM cell, from scratch, with `torch.nn.LSTM`'s weight layout (gates stacked in the order i, f, g, o).

    i, f, o = sigmoid(...)          input, forget and output gates, each in (0, 1)
    g       = tanh(...)             the candidate to write
    c_t     = f * c_{t-1} + i * g   the cell state: an additive path, which is why gradients survive
    h_t     = o * tanh(c_t)
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


GATES = ("input", "forget", "cell", "output")


class LSTMCell(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, forget_bias: float = 0.0):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size))
        self.reset_parameters(forget_bias)

    def reset_parameters(self, forget_bias: float = 0.0) -> None:
        bound = 1 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        if forget_bias:
            with torch.no_grad():  # a positive forget bias starts the cell out remembering
                self.bias_ih[self.hidden_size:2 * self.hidden_size] += forget_bias

    def initial_state(self, batch: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.zeros(batch, self.hidden_size, device=device)
        return z, z.clone()

    def gates(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        h, _ = state
        z = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)
        i, f, g, o = z.chunk(4, dim=-1)
        return {"input": torch.sigmoid(i), "forget": torch.sigmoid(f), "cell": torch.tanh(g), "output": torch.sigmoid(o)}

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        g = self.gates(x, state)
        c = g["forget"] * state[1] + g["input"] * g["cell"]
        h = g["output"] * torch.tanh(c)
        return h, c


def set_forget_bias(lstm: nn.LSTM, value: float) -> None:
    """Set the forget-gate bias of every layer of an `nn.LSTM` (Gers et al. 2000; Jozefowicz et al. 2015)."""
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            if name.startswith("bias_ih"):
                n = p.shape[0] // 4
                p[n:2 * n].fill_(value)
            elif name.startswith("bias_hh"):
                n = p.shape[0] // 4
                p[n:2 * n].zero_()


