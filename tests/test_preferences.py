import math

import pytest
import torch

from course_lib.gpt.model import GPT, GPTConfig
from course_lib.rlhf.preferences import (PreferenceData, RewardConfig, RewardModel, bradley_terry_loss, noise_ceiling,
                                    pair_accuracy, sample_labels, train_reward_model)


def tiny_gpt(vocab: int = 12) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=vocab, block_size=32, n_layer=1, n_head=2, n_embd=16))


def test_bradley_terry_loss_known_answers():
    t = torch.tensor
    assert bradley_terry_loss(t([2.0]), t([0.0])).item() == pytest.approx(0.126928, abs=1e-6)
    assert bradley_terry_loss(t([1.0]), t([1.0])).item() == pytest.approx(math.log(2), abs=1e-7)
    assert bradley_terry_loss(t([0.0]), t([1.0])).item() == pytest.approx(1.313262, abs=1e-6)
    assert bradley_terry_loss(t([7.0]), t([5.0])).item() == pytest.approx(0.126928, abs=1e-6)   # shift-invariant
    assert bradley_terry_loss(t([0.0]), t([200.0])).item() == pytest.approx(200.0)                # no overflow


def test_sampled_labels_follow_bradley_terry_and_the_ceiling_is_their_agreement():
    n = 200_000
    gold_a = torch.randn(n, generator=torch.Generator().manual_seed(0)) * 2
    gold_b = torch.randn(n, generator=torch.Generator().manual_seed(1)) * 2
    a_wins, kept = sample_labels(gold_a, gold_b, tau=1.0, generator=torch.Generator().manual_seed(2))
    assert kept.all()
    near_one = (gold_a - gold_b - 1.0).abs() < 0.05                  # pairs one gold unit apart
    assert a_wins[near_one].float().mean().item() == pytest.approx(1 / (1 + math.exp(-1)), abs=0.02)
    agreement = (a_wins == (gold_a > gold_b)).float().mean().item()
    assert agreement == pytest.approx(noise_ceiling(gold_a, gold_b, 1.0), abs=0.005)


def test_noise_ceiling_hand_values_and_tie_margin():
    a, b = torch.tensor([0.0, 3.0, 0.2]), torch.tensor([0.0, 0.0, 0.0])
    assert noise_ceiling(a[:1], b[:1]) == 0.5
    assert noise_ceiling(a[1:2], b[1:2], tau=1.0) == pytest.approx(1 / (1 + math.exp(-3)))
    _, kept = sample_labels(a, b, tie_margin=0.5)
    assert kept.tolist() == [False, True, False]
    with pytest.raises(ValueError, match="NaN"):
        sample_labels(torch.tensor([float("nan")]), torch.tensor([0.0]))
    with pytest.raises(ValueError, match="tau"):
        sample_labels(a, b, tau=0.0)


def test_split_keeps_pairs_apart_and_reports_label_agreement():
    chosen, rejected = torch.arange(20).view(10, 2), torch.arange(20, 40).view(10, 2)
    gold_c, gold_r = torch.ones(10), torch.zeros(10)
    gold_r[:3] = 2.0                                                   # three labels disagree with the gold
    data = PreferenceData(1, chosen, rejected, gold_c, gold_r, tau=1.0)
    train, test = data.split(4)
    assert len(train) == 6 and len(test) == 4
    assert not set(train.chosen[:, 0].tolist()) & set(test.chosen[:, 0].tolist())
    assert data.label_agreement == pytest.approx(0.7)


def test_reward_model_mean_pools_the_response_and_normalises():
    trunk = tiny_gpt()
    rm = RewardModel(trunk, prompt_len=3)
    seq = torch.randint(12, (64, 10), generator=torch.Generator().manual_seed(0))
    h = trunk.hidden(seq)[:, 3:].mean(1)
    assert torch.allclose(rm(seq), rm.head(h).squeeze(-1), atol=1e-6)
    # changing only prompt tokens still changes the reward: the response positions attend to the prompt
    other = seq.clone()
    other[:, 0] = (other[:, 0] + 1) % 12
    assert not torch.allclose(rm(seq), rm(other))
    rm.normalise(seq)
    s = rm.score(seq)
    assert s.mean().item() == pytest.approx(0.0, abs=1e-5) and s.std().item() == pytest.approx(1.0, abs=1e-4)


def test_reward_model_learns_a_separable_preference_on_held_out_pairs():
    gen = torch.Generator().manual_seed(0)
    n, P, G = 480, 2, 8
    prompts = torch.randint(12, (n, P), generator=gen)
    good = torch.cat([prompts, torch.randint(0, 6, (n, G), generator=gen)], 1)    # the "human" likes low ids
    bad = torch.cat([prompts, torch.randint(6, 12, (n, G), generator=gen)], 1)
    data = PreferenceData(P, good, bad, torch.ones(n), torch.zeros(n), tau=1.0)
    train, test = data.split(80)
    cfg = RewardConfig(epochs=1, batch=32, lr=3e-3)
    rm, history = train_reward_model(tiny_gpt(), train, test, cfg, torch.device("cpu"))
    acc = pair_accuracy(rm, test)
    assert acc["acc_labels"] > 0.9 and acc["acc_gold"] > 0.9
    assert history.evals[-1]["test_loss"] < 0.5
