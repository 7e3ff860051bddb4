"""Exploding gradients and clipping (lesson 01): the written-out clip against PyTorch's, known answers, and the
stretched RNN's gradient blowing up while the clipped run's steps stay bounded."""
import math

import pytest
import torch
import torch.nn as nn

from course_lib.recurrent import CharLM, RecurrentConfig, clip_grad_norm, set_recurrent_gain, sgd_run


def test_set_recurrent_gain_makes_every_singular_value_the_gain():
    w = torch.empty(16, 16)
    set_recurrent_gain(w, 2.5, torch.Generator().manual_seed(0))
    assert torch.allclose(torch.linalg.svdvals(w), torch.full((16,), 2.5), atol=1e-5)
    again = torch.empty(16, 16)
    set_recurrent_gain(again, 2.5, torch.Generator().manual_seed(0))
    assert torch.equal(w, again)                                   # seeded: the same matrix
    with pytest.raises(ValueError, match="square"):
        set_recurrent_gain(torch.empty(3, 4), 1.0)
    with pytest.raises(ValueError, match="gain"):
        set_recurrent_gain(torch.empty(3, 3), -1.0)


def test_clip_grad_norm_known_answer():
    a, b = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    a.grad, b.grad = torch.tensor([3.0]), torch.tensor([4.0])       # global norm 5
    assert clip_grad_norm([a, b], 1.0) == pytest.approx(5.0)
    assert a.grad.item() == pytest.approx(0.6, abs=1e-6) and b.grad.item() == pytest.approx(0.8, abs=1e-6)
    a.grad, b.grad = torch.tensor([0.3]), torch.tensor([0.4])       # under the threshold: untouched
    assert clip_grad_norm([a, b], 1.0) == pytest.approx(0.5)
    assert a.grad.item() == pytest.approx(0.3) and b.grad.item() == pytest.approx(0.4)
    assert clip_grad_norm([nn.Parameter(torch.zeros(2))], 1.0) == 0.0   # no gradients at all
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm([a], 0.0)


def test_clip_grad_norm_equals_pytorch():
    torch.manual_seed(0)
    ours, theirs = nn.Linear(7, 5), nn.Linear(7, 5)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(9, 7) * 50
    for model in (ours, theirs):
        model(x).pow(2).sum().backward()
    n_ours = clip_grad_norm(ours.parameters(), 0.5)
    n_theirs = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 0.5).item()
    assert n_ours == pytest.approx(n_theirs, rel=1e-6) and n_ours > 0.5
    for p, q in zip(ours.parameters(), theirs.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-7)
    total = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in ours.parameters()])).item()
    assert total == pytest.approx(0.5, rel=1e-5)


def test_sgd_run_is_plain_sgd():
    """One step by hand: w <- w - lr * grad, with the clipped gradient when clipping is on."""
    w = nn.Parameter(torch.tensor([3.0, 4.0]))
    model = nn.Module()
    model.w = w
    loss_fn = lambda m, batch: (m.w * batch).sum()                   # gradient = batch
    run = sgd_run(model, loss_fn, lambda step: torch.tensor([6.0, 8.0]), steps=1, lr=0.5, clip=5.0)
    assert run.losses == [pytest.approx(50.0)] and run.grad_norms == [pytest.approx(10.0)]
    assert torch.allclose(w.detach(), torch.tensor([3.0 - 0.5 * 3.0, 4.0 - 0.5 * 4.0]), atol=1e-6)
    w.data = torch.tensor([3.0, 4.0])
    sgd_run(model, loss_fn, lambda step: torch.tensor([6.0, 8.0]), steps=1, lr=0.5)
    assert torch.allclose(w.detach(), torch.tensor([0.0, 0.0]), atol=1e-6)
    with pytest.raises(ValueError, match="lr"):
        sgd_run(model, loss_fn, lambda step: torch.ones(2), steps=1, lr=0.0)


def test_a_stretched_rnn_explodes_and_clipping_bounds_every_step():
    torch.manual_seed(0)
    data = torch.randint(0, 12, (64, 41), generator=torch.Generator().manual_seed(1))
    batch = lambda step: (data[:, :-1], data[:, 1:])
    loss_fn = lambda m, b: m(b[0], b[1])[1]

    def grad_norm(gain):
        torch.manual_seed(0)
        model = CharLM(RecurrentConfig(vocab_size=12, embed=8, hidden=64, cell="rnn"))
        set_recurrent_gain(model.rnn.net.weight_hh_l0, gain, torch.Generator().manual_seed(0))
        return model, sgd_run(model, loss_fn, batch, steps=1, lr=1e-9).grad_norms[0]

    _, calm = grad_norm(0.5)
    _, stretched = grad_norm(3.0)
    assert stretched > 100 * calm                                    # the gradient explodes with the gain
    model, _ = grad_norm(3.0)
    before = [p.detach().clone() for p in model.parameters()]
    sgd_run(model, loss_fn, batch, steps=1, lr=1.0, clip=1.0)
    moved = math.sqrt(sum((p.detach() - b).pow(2).sum().item() for p, b in zip(model.parameters(), before)))
    assert moved == pytest.approx(1.0, rel=1e-4)                     # a clipped step has length lr * clip


def test_effective_lr_is_the_mean_step_multiplier():
    from course_lib.recurrent import SGDRun, effective_lr
    run = SGDRun(losses=[0.0] * 4, grad_norms=[1.0, 2.0, 10.0, float("nan")])   # a nan step is left out
    assert effective_lr(run, 2.0, clip=5.0) == pytest.approx(2.0 * (1 + 1 + 0.5) / 3)
    with pytest.raises(ValueError, match="finite"):
        effective_lr(SGDRun([0.0], [float("inf")]), 1.0, 1.0)


def test_clipping_test_runs_three_arms_from_one_start():
    """Same start, same batches: the first gradient norm is equal in all three runs; the threshold is the multiple
    of run (a)'s median; (c) runs at (b)'s effective lr; a clip that acts nowhere leaves (b) equal to (a)."""
    from course_lib.recurrent import clipping_test, effective_lr
    data = torch.randint(0, 12, (16, 21), generator=torch.Generator().manual_seed(1))
    batch = lambda step: (data[:, :-1], data[:, 1:])
    loss_fn = lambda m, b: m(b[0], b[1])[1]

    def make():
        torch.manual_seed(0)
        model = CharLM(RecurrentConfig(vocab_size=12, embed=8, hidden=32, cell="rnn"))
        set_recurrent_gain(model.rnn.net.weight_hh_l0, 2.0, torch.Generator().manual_seed(0))
        return model

    t = clipping_test(make, loss_fn, batch, steps=6, lr=0.5, multiple=2.0)
    assert t.unclipped.grad_norms[0] == t.clipped.grad_norms[0] == t.smaller_step.grad_norms[0]
    assert t.median_norm == pytest.approx(float(torch.tensor(t.unclipped.grad_norms).median()))
    assert t.threshold == pytest.approx(2.0 * t.median_norm)
    assert t.small_lr == pytest.approx(effective_lr(t.clipped, 0.5, t.threshold)) and t.small_lr <= 0.5
    assert len(t.models) == 3 and len({id(m) for m in t.models}) == 3
    never = clipping_test(make, loss_fn, batch, steps=3, lr=1e-4, multiple=1e6)   # the clip never acts
    assert never.small_lr == pytest.approx(1e-4) and never.unclipped.losses == never.clipped.losses
    with pytest.raises(ValueError, match="multiple"):
        clipping_test(make, loss_fn, batch, steps=1, lr=0.5, multiple=0.0)
