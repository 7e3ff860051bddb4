"""How far back does the learning signal reach? Measure ||dL/dx_t||, the gradient of a loss computed at the
end of a sequence with respect to the input at each earlier step.

For a vanilla RNN each step back multiplies the gradient by W_hh^T diag(1 - h^2), a matrix whose size is
usually below one, so the norm shrinks roughly geometrically: the vanishing gradient. The LSTM's cell state
adds instead of multiplying through a squashing function, so the signal can survive.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .rnn import hidden_of, unroll


def gradient_by_distance(embed: nn.Module, cell: nn.Module, head: nn.Module, x: torch.Tensor,
                         loss_fn) -> torch.Tensor:
    """Mean over the batch of ||dL/d(input at t)||, returned indexed by distance from the end (0 = last step).

    The norms are taken in float64 (and returned as float64): a float32 norm squares its entries first, so a
    gradient whose entries are below about 1e-23 would come out as exactly 0 although the entries are not.

    embed: token ids -> vectors; cell: an RNNCell or LSTMCell; head: maps the final hidden state to logits;
    loss_fn(logits) -> scalar loss computed at the final step only.
    """
    inputs = embed(x).detach().requires_grad_(True)
    _, state = unroll(cell, inputs)
    loss = loss_fn(head(hidden_of(state)))
    (grad,) = torch.autograd.grad(loss, inputs)
    per_step = grad.double().norm(dim=-1).mean(dim=0)        # (time,), float64: no underflow of the squares
    return per_step.flip(0).detach()
