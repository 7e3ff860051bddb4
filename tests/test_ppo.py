import pytest
import torch

from course_lib.gpt.model import GPT, GPTConfig
from course_lib.rlhf.ppo import (PolicyWithValue, PPOConfig, gae, kl_penalised_rewards, ppo_policy_loss, ppo_value_loss,
                            rloo_advantages, train_ppo)
from course_lib.rlhf.loop import frozen_copy, rl_copy, snapshot, frozen_params_unchanged

VOCAB, P, G = 10, 3, 8


def tiny_gpt(dropout: float = 0.0) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=VOCAB, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=dropout))


def prompts(n: int = 32) -> torch.Tensor:
    return torch.randint(VOCAB, (n, P), generator=torch.Generator().manual_seed(0))


def count_of_token_7(seq: torch.Tensor) -> torch.Tensor:
    """A toy reward: how many response tokens are 7 (uniform chance: 0.8 of 8)."""
    return (seq[:, P:] == 7).float().sum(1)


def test_gae_three_step_known_answers():
    r, v = torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([[0.5, 0.6, 0.7]])
    adv, ret = gae(r, v, gamma=1.0, lam=0.95)
    assert torch.allclose(adv, torch.tensor([[0.46575, 0.385, 0.3]]), atol=1e-6)
    assert torch.allclose(ret, torch.tensor([[0.96575, 0.985, 1.0]]), atol=1e-6)
    adv, ret = gae(r, v, lam=1.0)                                       # Monte-Carlo return minus V
    assert torch.allclose(adv, torch.tensor([[0.5, 0.4, 0.3]]), atol=1e-6) and torch.allclose(ret, torch.ones(1, 3))
    adv, _ = gae(r, v, lam=0.0)                                         # one-step TD residuals
    assert torch.allclose(adv, torch.tensor([[0.1, 0.1, 0.3]]), atol=1e-6)


def test_score_goes_on_the_last_token_and_kl_everywhere():
    logp, ref = torch.full((2, 4), -1.0), torch.full((2, 4), -1.5)
    r = kl_penalised_rewards(torch.tensor([3.0, -1.0]), logp, ref, kl_coef=0.1)
    expected = torch.full((2, 4), -0.05)
    expected[:, -1] += torch.tensor([3.0, -1.0])
    assert torch.allclose(r, expected)


def test_ppo_clipped_loss_and_clip_fraction_hand_case():
    ratio = torch.tensor([1.5, 1.5, 0.5, 0.5])
    adv = torch.tensor([1.0, -1.0, 2.0, -2.0])
    loss, clipfrac, r = ppo_policy_loss(ratio.log(), torch.zeros(4), adv, clip=0.2)
    assert loss.item() == pytest.approx(0.225, abs=1e-6)        # per element [-1.2, 1.5, -1.0, 1.6]
    assert clipfrac.item() == 0.5 and torch.allclose(r, ratio)


def test_value_loss_is_pessimistic_about_the_clipped_value():
    # the value moved from 0 to 1 towards a return of 2: clipped it only reached 0.2, so that error counts
    loss = ppo_value_loss(torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([2.0]), clip=0.2)
    assert loss.item() == pytest.approx(0.5 * 1.8 ** 2)


def test_rloo_leave_one_out_advantages():
    adv = rloo_advantages(torch.tensor([1.0, 2.0, 3.0, 6.0]), k=4)
    assert torch.allclose(adv, torch.tensor([-8 / 3, -4 / 3, 0.0, 4.0]), atol=1e-5)
    with pytest.raises(ValueError):
        rloo_advantages(torch.ones(6), k=4)


def test_value_head_starts_at_zero():
    agent = PolicyWithValue(tiny_gpt())
    logits, values = agent(torch.randint(VOCAB, (4, P + G)), P)
    assert logits.shape == (4, G, VOCAB) and torch.equal(values, torch.zeros(4, G))


def test_ratio_is_exactly_one_on_every_first_minibatch_and_the_reference_stays_frozen():
    policy = rl_copy(tiny_gpt())
    ref = frozen_copy(policy)
    before = snapshot(ref)
    cfg = PPOConfig(iterations=3, batch=16, minibatch=8, epochs=2, lr=1e-3)
    agent, log, _ = train_ppo(policy, ref, count_of_token_7, prompts(), G, cfg, torch.device("cpu"))
    firsts = [m["first_ratio_dev"] for m in log.minibatches if "first_ratio_dev" in m]
    assert firsts == [0.0, 0.0, 0.0]
    later = [m["approxkl"] for m in log.minibatches if "first_ratio_dev" not in m]
    assert max(later) > 0                                               # later minibatches did move
    assert frozen_params_unchanged(ref, before) and not frozen_params_unchanged(policy, before)


def test_with_dropout_the_first_ratio_is_not_one():
    """The negative control for the test above: this is why every RLHF model runs with dropout off."""
    agent = PolicyWithValue(tiny_gpt(dropout=0.3)).train()
    seq = torch.randint(VOCAB, (8, P + G))
    a, _ = agent(seq, P)
    b, _ = agent(seq, P)
    assert not torch.equal(a, b)


def test_ppo_raises_the_toy_reward_and_kl_penalty_holds_it_closer():
    results = {}
    for beta in (0.0, 1.0):
        policy = rl_copy(tiny_gpt())
        ref = frozen_copy(policy)
        cfg = PPOConfig(iterations=12, batch=32, minibatch=16, epochs=2, lr=3e-3, kl_coef=beta)
        _, log, _ = train_ppo(policy, ref, count_of_token_7, prompts(), G, cfg, torch.device("cpu"), seed=1)
        results[beta] = log.iterations
    free = results[0.0]
    assert free[-1]["score"] > free[0]["score"] + 1.0
    assert results[1.0][-1]["kl"] < free[-1]["kl"]


def test_rloo_is_plain_reinforce_and_raises_the_reward():
    policy = rl_copy(tiny_gpt())
    cfg = PPOConfig(iterations=12, batch=32, minibatch=32, epochs=1, lr=3e-3, kl_coef=0.0, advantage="rloo",
                    rloo_k=4)
    _, log, _ = train_ppo(policy, frozen_copy(policy), count_of_token_7, prompts(), G, cfg, torch.device("cpu"))
    assert all(m["clipfrac"] == 0.0 and "vf_loss" not in m for m in log.minibatches)
    assert log.iterations[-1]["score"] > log.iterations[0]["score"] + 0.8


def test_bad_rewards_and_bad_configs_are_refused():
    policy = rl_copy(tiny_gpt())
    cfg = PPOConfig(iterations=1, batch=8, minibatch=8, epochs=1)
    with pytest.raises(ValueError, match="NaN or infinite"):
        train_ppo(policy, frozen_copy(policy), lambda s: torch.full((len(s),), float("nan")), prompts(), G, cfg,
                  torch.device("cpu"))
    with pytest.raises(ValueError, match="P >= 1"):
        train_ppo(policy, frozen_copy(policy), count_of_token_7, torch.zeros(8, 0, dtype=torch.long), G, cfg,
                  torch.device("cpu"))
    with pytest.raises(ValueError, match="multiple"):
        PPOConfig(batch=10, minibatch=4)
    with pytest.raises(ValueError, match="advantage"):
        PPOConfig(advantage="vtrace")
