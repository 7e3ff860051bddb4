"""Oracles: our RNN and LSTM cells compute exactly what torch.nn.RNN / nn.LSTM compute, with copied weights."""
import pytest
import torch
import torch.nn as nn

from course_lib.recurrent.gradient_flow import gradient_by_distance
from course_lib.recurrent.lstm import LSTMCell, set_forget_bias
from course_lib.core.parameters import count_parameters
from course_lib.recurrent.rnn import (CharLM, RecurrentConfig, RNNCell, SequenceClassifier, copy_cell_into_torch,
                                      unroll)


def _compare(cell, torch_rnn, x, state0):
    out, last = unroll(cell, x, state0)
    ref_state = (state0[0][None], state0[1][None]) if isinstance(state0, tuple) else state0[None]
    ref_out, ref_last = torch_rnn(x, ref_state)
    assert torch.allclose(out, ref_out, atol=1e-5)
    (out.square().sum() + (last[1].sum() if isinstance(last, tuple) else 0)).backward()
    (ref_out.square().sum() + (ref_last[1].sum() if isinstance(ref_last, tuple) else 0)).backward()
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        assert torch.allclose(getattr(cell, name).grad, getattr(torch_rnn, f"{name}_l0").grad, atol=1e-5), name


def test_rnn_cell_equals_torch_rnn_outputs_and_gradients():
    torch.manual_seed(0)
    cell, ref = RNNCell(5, 7), nn.RNN(5, 7, batch_first=True)
    copy_cell_into_torch(cell, ref)
    _compare(cell, ref, torch.randn(3, 11, 5), torch.randn(3, 7))


def test_lstm_cell_equals_torch_lstm_outputs_and_gradients():
    torch.manual_seed(0)
    cell, ref = LSTMCell(5, 7), nn.LSTM(5, 7, batch_first=True)
    copy_cell_into_torch(cell, ref)
    _compare(cell, ref, torch.randn(3, 11, 5), (torch.randn(3, 7), torch.randn(3, 7)))


def test_scratch_and_torch_impl_models_agree():
    torch.manual_seed(0)
    for cell in ("rnn", "lstm"):
        cfg = RecurrentConfig(vocab_size=11, embed=6, hidden=8, cell=cell)
        fast, slow = CharLM(cfg), CharLM(RecurrentConfig(**{**cfg.to_dict(), "impl": "scratch"}))
        slow.embed.load_state_dict(fast.embed.state_dict())
        slow.head.load_state_dict(fast.head.state_dict())
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(slow.rnn.cells[0], name).copy_(getattr(fast.rnn.net, f"{name}_l0"))
        idx = torch.randint(11, (2, 9))
        assert torch.allclose(fast(idx), slow(idx), atol=1e-5)
        assert count_parameters(fast) == count_parameters(slow)


def test_classifier_reads_the_last_real_step_and_rejects_empty():
    torch.manual_seed(0)
    m = SequenceClassifier(RecurrentConfig(vocab_size=5, n_classes=3, embed=4, hidden=6))
    seq = torch.tensor([[1, 2, 3, 0, 0]])
    padded_more = torch.tensor([[1, 2, 3, 4, 4]])  # different padding, same length 3
    assert torch.allclose(m(seq, torch.tensor([3])), m(padded_more, torch.tensor([3])))
    with pytest.raises(ValueError, match="at least one token"):
        m(seq, torch.tensor([0]))


def test_forget_bias_sets_only_the_forget_gate():
    lstm = nn.LSTM(3, 4)
    set_forget_bias(lstm, 2.0)
    b = lstm.bias_ih_l0 + lstm.bias_hh_l0
    assert torch.allclose(b[4:8], torch.full((4,), 2.0))


def test_gradient_by_distance_shapes_and_vanishing_for_a_contractive_rnn():
    torch.manual_seed(0)
    embed, cell, head = nn.Embedding(5, 4), RNNCell(4, 8), nn.Linear(8, 5)
    with torch.no_grad():
        cell.weight_hh.mul_(0.3)   # a clearly contractive recurrence
    x = torch.randint(5, (16, 30))
    g = gradient_by_distance(embed, cell, head, x, lambda logits: logits.logsumexp(-1).mean())
    assert g.shape == (30,)
    assert g[0] > 0 and g[-1] < 1e-3 * g[0]   # distance 0 (last step) >> distance 29
    assert (g[1:] <= g[:-1] * 1.5).all()      # shrinking with distance, give or take
