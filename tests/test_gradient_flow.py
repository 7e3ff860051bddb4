"""gradient_by_distance keeps tiny gradients (float64 norms), and fit_exponential refuses to drop zeros silently."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn

from course_lib.core.plots import fit_exponential
from course_lib.recurrent import RNNCell, gradient_by_distance


def test_tiny_gradients_do_not_underflow_to_zero():
    """A contractive RNN: beyond distance ~45 the gradient's entries are below 1e-23, whose squares are below
    float32's smallest number, so a float32 norm returns exactly 0 there (the old behaviour). The entries
    themselves are still representable (down to ~1e-45), and the float64 norm keeps them."""
    torch.manual_seed(0)
    embed, cell, head = nn.Embedding(5, 4), RNNCell(4, 8), nn.Linear(8, 5)
    with torch.no_grad():
        cell.weight_hh.mul_(0.5)
    x = torch.randint(5, (4, 60))
    g = gradient_by_distance(embed, cell, head, x, lambda logits: logits.logsumexp(-1).mean())
    assert g.dtype == torch.float64
    assert g[50] < 1e-24                       # the range the old float32 norm turned into exact zeros
    assert (g > 0).all()                       # no underflow anywhere
    old_style = torch.zeros(4, 60, 4)          # what the float32 norm gives for entries of this size:
    old_style[..., 0] = 1e-24
    assert old_style.norm(dim=-1).eq(0).all() and old_style.double().norm(dim=-1).gt(0).all()
    _, b = fit_exponential(np.arange(1, 60), g[1:].numpy())
    assert np.isfinite(b) and b < 0


def test_fit_exponential_known_answer():
    x = np.arange(10.0)
    a, b = fit_exponential(x, 3.0 * 0.5 ** x)
    assert a == pytest.approx(3.0) and np.exp(b) == pytest.approx(0.5)


def test_fit_exponential_does_not_drop_zeros_silently():
    x = np.arange(10.0)
    y = 0.5 ** x
    y[7:] = 0.0                                # three underflowed points
    with pytest.raises(ValueError, match="3 of 10"):
        fit_exponential(x, y)
    with pytest.warns(UserWarning, match="3 of 10"):
        _, b = fit_exponential(x, y, drop_nonpositive=True)
    assert np.exp(b) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least 2"), pytest.warns(UserWarning, match="10 of 10"):
        fit_exponential(x, np.zeros(10), drop_nonpositive=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")         # clean data: no warning
        fit_exponential(x, 0.5 ** x)
