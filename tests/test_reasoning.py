"""Lesson 11's pieces: the addition formats and the program verifier, pass@k against brute-force enumeration,
majority vote, the group-relative advantages (lesson 10's code) and one tiny RL run."""
import itertools
import math
import random

import pytest
import torch

from course_lib.recipes import FormatRecipe, RLVRRecipe
from course_lib.reasoning import (FORMATS, PROMPT_LEN, ProblemSplit, addition_tokenizer, answers, columns, completion,
                                  completion_length, encode_examples, majority_vote, majority_vote_accuracy,
                                  parse_answer, pass_at_k, prompt, read_prompt, right_length, rl_config,
                                  rl_with_verifier, sample_answers, sequence_reward, verify)
from course_lib.rlhf import PPOConfig, group_advantages, rloo_advantages
from course_lib.gpt import GPT

TOK = addition_tokenizer()


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_round_trips_and_has_one_length(fmt):
    rng = random.Random(0)
    for a, b in [(0, 0), (999, 999), (500, 500), (1, 999)] + [(rng.randrange(1000), rng.randrange(1000))
                                                             for _ in range(500)]:
        text = completion(a, b, fmt)
        assert len(text) == completion_length(fmt)
        assert parse_answer(text, fmt) == a + b and verify(text, a, b, fmt)
        assert right_length(text, a, b, fmt)
        assert TOK.decode(TOK.encode(prompt(a, b) + text)) == prompt(a, b) + text
        assert read_prompt(prompt(a, b) + text) == (a, b)


def test_known_cases():
    assert prompt(47, 365) == "047+365="
    assert completion(478, 365, "direct") == "843$$"
    assert completion(478, 365, "reversed") == "348$$"
    assert completion(478, 365, "scratchpad") == "3c1,4c1,8c0>843$$"
    assert completion(999, 999, "scratchpad") == "8c1,9c1,9c1>1998$"
    assert columns(478, 365) == [(3, 1), (4, 1), (8, 0)]


def test_the_verifier_says_no_to_wrong_and_malformed_answers():
    assert not verify("844$$", 478, 365, "direct")
    assert not verify("843$$", 478, 365, "reversed")            # reversed reads 348
    assert not verify("843", 478, 365, "direct")                # never closed
    assert not verify("3c1,4c1,8c0843$$", 478, 365, "scratchpad")   # no '>' before the answer
    assert not verify("3c1,4c1,8c0>8a3$", 478, 365, "scratchpad")
    assert not verify("$843$", 478, 365, "direct")              # nothing before the first '$'
    assert not verify("12345$", 478, 365, "direct")             # too many digits
    assert verify("0c0,0c0,0c0>843$$", 478, 365, "scratchpad")  # outcome reward: the work is not checked
    assert verify("843$12", 478, 365, "direct")                 # whatever follows the first '$' is ignored
    assert parse_answer("843", "direct") is None


def test_the_format_check_ignores_the_digits():
    assert right_length("3c1,4c1,8c0>111$$", 478, 365, "scratchpad")
    assert not right_length("3c1,4c1,8c0>1111$", 478, 365, "scratchpad")
    assert right_length("1111$", 999, 999, "direct") and not verify("1111$", 999, 999, "direct")


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="fmt='binary'"):
        completion(1, 2, "binary")
    with pytest.raises(ValueError, match="a=1000"):
        prompt(1000, 2)
    with pytest.raises(TypeError, match="b="):
        prompt(1, 2.5)
    with pytest.raises(ValueError, match="check="):
        sequence_reward(TOK, "direct", "vibes")
    with pytest.raises(ValueError, match="k=9 > n=8"):
        pass_at_k(8, torch.tensor([1]), 9)
    with pytest.raises(ValueError, match="c:"):
        pass_at_k(8, torch.tensor([9]), 2)
    with pytest.raises(ValueError, match="prompt like"):
        read_prompt("47+365=")


def test_the_split_is_disjoint_and_seeded():
    s = ProblemSplit.draw(3000, 100, 200, seed=3)
    keys = [set(map(tuple, part.tolist())) for part in (s.train, s.val, s.test)]
    assert [len(k) for k in keys] == [3000, 100, 200]
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    assert torch.equal(ProblemSplit.draw(3000, 100, 200, seed=3).test, s.test)
    assert not torch.equal(ProblemSplit.draw(3000, 100, 200, seed=4).test, s.test)


def _brute_force_pass_at_k(correct: list[bool], k: int) -> float:
    subsets = list(itertools.combinations(range(len(correct)), k))
    return sum(any(correct[i] for i in s) for s in subsets) / len(subsets)


def test_pass_at_k_equals_brute_force_enumeration():
    rng = random.Random(1)
    for _ in range(200):
        n = rng.randint(1, 12)
        correct = [rng.random() < rng.random() for _ in range(n)]
        k = rng.randint(1, n)
        got = pass_at_k(n, torch.tensor([sum(correct)]), k).item()
        assert got == pytest.approx(_brute_force_pass_at_k(correct, k), abs=1e-12)
    # large n: no overflow, matches the binomial formula with exact integers
    for c in (0, 1, 7, 100, 255, 256):
        assert pass_at_k(256, torch.tensor([c]), 64).item() == pytest.approx(
            1 - math.comb(256 - c, 64) / math.comb(256, 64), abs=1e-12)
    assert pass_at_k(10, torch.tensor([3]), 1).item() == pytest.approx(0.3)     # pass@1 is the plain fraction


def test_majority_vote():
    votes = torch.tensor([[5, 5, 7], [7, 5, -1], [-1, -1, -1], [-1, -1, 3], [2, 3, 3, 2]][:4])
    assert majority_vote(votes).tolist() == [5, 7, -1, 3]        # ties go to the first drawn; -1 never votes
    assert majority_vote(torch.tensor([[2, 3, 3, 2]])).tolist() == [2]
    answers_ = torch.tensor([[1, 1, 2, 2, 2, 1], [9, 9, 9, 9, 9, 9]])
    assert majority_vote_accuracy(answers_, torch.tensor([1, 9]), 3).tolist() == [0.5, 1.0]
    assert majority_vote_accuracy(answers_, torch.tensor([1, 9]), 1).tolist() == pytest.approx([0.5, 1.0])


def test_group_advantages_hand_values_and_rloo():
    r = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    adv = group_advantages(r, 4)
    assert adv[:4].tolist() == pytest.approx([1.5, -0.5, -0.5, -0.5], abs=1e-5)     # (r - 1/4) / std 0.5
    assert adv[4:].tolist() == [0.0] * 4                                             # all right: no signal
    x = torch.randn(24)
    for k in (2, 3, 4, 6):
        assert torch.allclose(k / (k - 1) * group_advantages(x, k, scale=False), rloo_advantages(x, k), atol=1e-6)
        assert torch.allclose(group_advantages(x, k).view(-1, k).std(1), torch.ones(24 // k), atol=1e-4)
    with pytest.raises(ValueError, match="k=5"):
        group_advantages(x, 5)
    assert PPOConfig(advantage="grpo", batch=8, minibatch=8, rloo_k=4).advantage == "grpo"
    with pytest.raises(ValueError, match="advantage='ppo'"):
        PPOConfig(advantage="ppo")


def test_sequence_reward_reads_each_rows_own_prompt():
    probs = torch.tensor([[478, 365], [999, 1], [0, 0]])
    for fmt in FORMATS:
        seq = encode_examples(probs, fmt, TOK)
        assert seq.shape == (3, PROMPT_LEN + completion_length(fmt))
        assert sequence_reward(TOK, fmt)(seq).tolist() == [1.0, 1.0, 1.0]
        assert answers(seq, fmt, TOK).tolist() == [843, 1000, 0]
        shuffled = seq.clone()
        shuffled[:, PROMPT_LEN:] = seq[[1, 2, 0], PROMPT_LEN:]       # right answers to the wrong questions
        assert sequence_reward(TOK, fmt)(shuffled).tolist() == [0.0, 0.0, 0.0]
    seq = encode_examples(probs[:1], "scratchpad", TOK)
    seq[0, -3] = TOK.encode("7")[0]                                  # '...>847$$': one answer digit wrong
    assert sequence_reward(TOK, "scratchpad")(seq).tolist() == [0.0]
    assert sequence_reward(TOK, "scratchpad", "length")(seq).tolist() == [1.0]


def test_a_tiny_rl_run_trains_and_leaves_the_reference_alone():
    torch.manual_seed(0)
    recipe = FormatRecipe.preset("smoke")
    split = ProblemSplit.draw(200, 8, 8, seed=0)
    model = GPT(recipe.model_config(vocab_size=len(TOK)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rl = RLVRRecipe.preset("smoke")
    run = rl_with_verifier(model, split, "scratchpad", TOK, rl_config(rl), torch.device("cpu"), eval_samples=2)
    assert run.reference_unchanged and all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert len(run.rewards()[1]) == rl.iterations and [e["iteration"] for e in run.log.evals][0] == 0
    # an untrained model never writes the right sum, so every group's rewards are equal (0): every advantage is 0
    # and REINFORCE with a group baseline leaves the policy exactly where it was (nothing to learn from)
    assert max(run.rewards()[1]) == 0.0
    assert all(torch.equal(v, run.policy.state_dict()[k]) for k, v in before.items())
    correct, got = sample_answers(run.policy, split.test, "scratchpad", TOK, n=3, generator=torch.Generator().manual_seed(0))
    assert correct.shape == got.shape == (8, 3)


def test_the_real_models_answers_are_read_by_program():
    from course_lib.reasoning import chat_questions, read_final_number, two_digit_problems
    assert read_final_number("7 + 6 = 13, carry 1. 4 + 3 + 1 = 8. Answer: 83") == 83
    assert read_final_number("The answer is 1,024.") == 1024
    assert read_final_number("**Answer:** 57") == 57
    assert read_final_number("83") == 83 and read_final_number("no idea") is None
    assert read_final_number("First 12, then 40, so 52") == 52
    probs = two_digit_problems(50, seed=1)
    assert probs.shape == (50, 2) and probs.min() >= 10 and probs.max() <= 99
    assert chat_questions(probs[:1], "direct")[0].startswith(f"What is {probs[0, 0]} + {probs[0, 1]}?")
    with pytest.raises(ValueError, match="style='cot'"):
        chat_questions(probs, "cot")
