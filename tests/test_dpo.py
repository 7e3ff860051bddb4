import math

import pytest
import torch

from course_lib.rlhf.dpo import DPOConfig, dpo_loss, sequence_logprobs, train_dpo
from course_lib.gpt.model import GPT, GPTConfig
from course_lib.rlhf.preferences import PreferenceData
from course_lib.rlhf.loop import frozen_copy, frozen_params_unchanged, response_logprobs, rl_copy, snapshot

VOCAB, P, G = 10, 2, 6


def tiny_gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=VOCAB, block_size=16, n_layer=1, n_head=2, n_embd=16))


def separable_pairs(n: int = 256) -> PreferenceData:
    gen = torch.Generator().manual_seed(0)
    prompts = torch.randint(VOCAB, (n, P), generator=gen)
    good = torch.cat([prompts, torch.randint(0, 5, (n, G), generator=gen)], 1)
    bad = torch.cat([prompts, torch.randint(5, 10, (n, G), generator=gen)], 1)
    return PreferenceData(P, good, bad, torch.ones(n), torch.zeros(n), tau=1.0)


def test_dpo_loss_is_ln2_at_init_with_gradient_minus_and_plus_beta_over_two():
    policy = rl_copy(tiny_gpt())
    ref = frozen_copy(policy)
    data = separable_pairs(8)
    pol_c = response_logprobs(policy, data.chosen, P).sum(1)
    pol_r = response_logprobs(policy, data.rejected, P).sum(1)
    ref_c, ref_r = sequence_logprobs(ref, data.chosen, P), sequence_logprobs(ref, data.rejected, P)
    pol_c.retain_grad()
    pol_r.retain_grad()
    loss, r_c, r_r = dpo_loss(pol_c, pol_r, ref_c, ref_r, beta=0.1)
    assert loss.item() == pytest.approx(math.log(2), abs=1e-7)
    assert torch.equal(r_c, torch.zeros(8)) and torch.equal(r_r, torch.zeros(8))
    loss.backward()
    assert torch.allclose(pol_c.grad, torch.full((8,), -0.05 / 8))      # mean over 8 pairs
    assert torch.allclose(pol_r.grad, torch.full((8,), 0.05 / 8))


def test_dpo_loss_hand_case_two_nats_better_than_reference():
    loss, _, _ = dpo_loss(torch.tensor([-1.0]), torch.tensor([-5.0]), torch.tensor([-2.0]), torch.tensor([-4.0]), 0.1)
    assert loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-0.2))), abs=1e-6)   # 0.598139


def test_dpo_training_lowers_the_loss_prefers_chosen_and_leaves_the_reference_alone():
    policy = rl_copy(tiny_gpt())
    ref = frozen_copy(policy)
    before = snapshot(ref)
    _, stats = train_dpo(policy, ref, separable_pairs(), DPOConfig(epochs=2.0, batch=32, lr=3e-3),
                         torch.device("cpu"))
    assert stats[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert stats[-1]["loss"] < 0.6 and stats[-1]["reward_accuracy"] > 0.9
    assert frozen_params_unchanged(ref, before)
