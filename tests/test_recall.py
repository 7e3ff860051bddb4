"""Lesson 02's recall arms and the linear memory probe (course_lib/recurrent/recall.py)."""
import pytest
import torch
import torch.nn as nn

from course_lib.recipes import DelayRecipe, train_recall
from course_lib.recurrent.recall import (Arm, RNNLayerStep, fit_linear_probe, make_recall_model, memory_probe,
                                         memory_trace, probe_accuracy, recall_accuracy, recall_arms,
                                         recall_gradient_by_distance, step_cell_of)
from course_lib.recurrent.rnn import unroll
from course_lib.recurrent.synthetic import delayed_recall


def test_arms_validate_and_name_themselves():
    assert Arm("lstm", 5.0).label == "LSTM, forget bias +5"
    assert Arm("lstm", 0.0).label == "LSTM, forget bias +0"
    assert Arm("rnn", recurrent="identity").label.startswith("IRNN")
    for bad in (dict(cell="gru"), dict(cell="rnn", forget_bias=1.0), dict(cell="lstm", recurrent="orthogonal"),
                dict(cell="rnn", recurrent="eye")):
        with pytest.raises(ValueError):
            Arm(**bad)


def test_each_arm_sets_its_init():
    torch.manual_seed(0)
    lstm = make_recall_model(Arm("lstm", 5.0), 8).rnn.net
    assert torch.allclose(lstm.bias_ih_l0[8:16], torch.full((8,), 5.0)) and (lstm.bias_hh_l0[8:16] == 0).all()
    torch.manual_seed(0)
    ortho = make_recall_model(Arm("rnn", recurrent="orthogonal"), 8).rnn.net.weight_hh_l0.detach()
    assert torch.allclose(ortho @ ortho.T, torch.eye(8), atol=1e-5)
    torch.manual_seed(0)
    irnn = make_recall_model(Arm("rnn", recurrent="identity"), 8)
    net = irnn.rnn.net
    assert torch.equal(net.weight_hh_l0.detach(), torch.eye(8)) and (net.bias_hh_l0 == 0).all()
    # the units are ReLU: same output as a freshly built nn.RNN(nonlinearity="relu") with the same weights
    ref = nn.RNN(net.input_size, 8, batch_first=True, nonlinearity="relu")
    ref.load_state_dict(net.state_dict())
    x = torch.randn(2, 5, net.input_size)
    assert torch.allclose(net(x)[0], ref(x)[0]) and (net(x)[0] >= 0).all()


def test_memory_trace_is_c_for_the_lstm_and_h_for_the_rnn():
    torch.manual_seed(0)
    x, _ = delayed_recall(3, 4, generator=torch.Generator().manual_seed(1))
    lstm = make_recall_model(Arm("lstm", 1.0), 6)
    c = memory_trace(lstm, x)
    _, (h_n, c_n) = lstm.rnn.net(lstm.embed(x))
    assert c.shape == (3, 6, 6) and torch.allclose(c[:, -1], c_n[0], atol=1e-6)
    rnn = make_recall_model(Arm("rnn"), 5)
    h = memory_trace(rnn, x)
    assert h.shape == (3, 6, 5) and torch.allclose(h, rnn.rnn.net(rnn.embed(x))[0])


def test_probe_reads_a_planted_signal_and_not_noise():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(4, (600,), generator=g)
    noise = torch.randn(600, 2, 10, generator=g)
    feats = noise.clone()
    feats[:, 1, :4] += 3 * nn.functional.one_hot(y, 4)       # step 1 carries the label, step 0 does not
    accs = probe_accuracy(feats[:400], y[:400], feats[400:], y[400:], n_classes=4)
    assert accs[1] > 0.9 and abs(accs[0] - 0.25) < 0.12
    probe = fit_linear_probe(feats[:400, 1], y[:400], 4)      # the standardisation is folded into the weights
    assert (probe(feats[400:, 1].double()).argmax(-1) == y[400:]).double().mean() > 0.9


def test_train_recall_is_deterministic_and_learns_a_short_delay():
    recipe = DelayRecipe(steps=150, batch=32, lr=1e-2, eval_size=200)
    m1, a1 = train_recall(Arm("lstm", 1.0), 2, 0, recipe, hidden=16)
    _, a2 = train_recall(Arm("lstm", 1.0), 2, 0, recipe, hidden=16)
    assert a1 == a2 and a1 > 0.5                              # chance is 1/8
    assert recall_accuracy(m1, 2, 200) == a1


def test_recall_arms_are_the_five_of_lesson_02():
    arms = recall_arms(5)
    assert [a.label for a in arms] == ["LSTM, forget bias +0", "LSTM, forget bias +1", "LSTM, forget bias +5",
                                       "RNN, default init", "IRNN (ReLU, W_hh = I)"]
    assert len(set(arms)) == 5 and Arm("lstm", 5.0) in arms        # hashable: the notebook keys runs by arm


def test_memory_probe_reads_an_open_belt_and_the_shuffled_control_does_not():
    torch.manual_seed(0)
    model = make_recall_model(Arm("lstm", 5.0), 16)      # untrained: the open forget gate alone keeps the symbol
    accs = memory_probe(model, 6, steps=[0, 6, 7], n_train=600, n_test=400)
    assert min(accs) > 0.8
    shuffled = memory_probe(model, 6, steps=[0, 6], n_train=600, n_test=400, shuffle_labels=True)
    assert max(shuffled) < 0.125 + 0.08


@pytest.mark.parametrize("arm", [Arm("lstm", 1.0), Arm("rnn"), Arm("rnn", recurrent="identity")], ids=lambda a: a.label)
def test_step_cell_steps_the_fused_layer(arm):
    torch.manual_seed(0)
    model = make_recall_model(arm, 8)
    if arm.recurrent == "identity":                 # make the ReLU matter: some pre-activations below zero
        with torch.no_grad():
            model.rnn.net.weight_hh_l0.add_(0.3 * torch.randn(8, 8))
    emb = torch.randn(3, 6, model.cfg.embed)
    assert torch.allclose(unroll(step_cell_of(model), emb)[0], model.rnn(emb), atol=1e-5)


@pytest.mark.parametrize("arm", [Arm("lstm", 5.0), Arm("rnn"), Arm("rnn", recurrent="identity")], ids=lambda a: a.label)
def test_recall_gradient_by_distance_matches_autograd_on_the_fused_model(arm):
    torch.manual_seed(1)
    model = make_recall_model(arm, 8)
    delay = 5
    got = recall_gradient_by_distance(model, delay, n=16, seed=3)
    x, y = delayed_recall(16, delay, generator=torch.Generator().manual_seed(3))
    emb = model.embed(x).detach().requires_grad_(True)
    logits = model.head(model.rnn(emb)[:, -1])
    (logits.gather(1, y[:, None])[:, 0] - logits.mean(1)).sum().backward()
    want = emb.grad.double().norm(dim=-1).mean(0).flip(0)          # index 0 = the cue, delay + 1 = the symbol
    assert got.shape == (delay + 2,) and torch.allclose(got, want, rtol=1e-4, atol=1e-12)


def test_recall_gradient_by_distance_rejects_bad_input():
    torch.manual_seed(0)
    model = make_recall_model(Arm("rnn"), 4)
    with pytest.raises(ValueError, match="delay"):
        recall_gradient_by_distance(model, -1)
    with pytest.raises(ValueError, match="n="):
        recall_gradient_by_distance(model, 3, n=0)
    with pytest.raises(ValueError, match="net"):
        RNNLayerStep(nn.LSTM(2, 3))
