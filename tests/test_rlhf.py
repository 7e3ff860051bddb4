
import pytest
import torch
import torch.nn.functional as F

from course_lib import gpt as gpt_module
from course_lib.gpt.generation import generate
from course_lib.gpt.model import GPT, GPTConfig
from course_lib.rlhf.judge import SentimentJudge
from course_lib.rlhf.loop import (Evaluator, RLHFConfig, best_of_n_kl, check_rewards, exact_kl, frozen_copy,
                             kl_estimate, make_prompts, pretrained_policy, response_logprobs, rl_copy,
                             sample_responses, whiten, win_rate)
from course_lib.text.tokenizers import CharTokenizer

TEXT = "The quick brown fox jumps over the lazy dog.\nA good day, a merry day, my lord!\n" * 20


def tiny_gpt(vocab: int = 40, dropout: float = 0.0, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab, block_size=32, n_layer=1, n_head=2, n_embd=16, dropout=dropout))


# ---- KL estimators (research notes section 5, T6, T7, T17) -------------------------------------------

P_POLICY = torch.tensor([0.6, 0.3, 0.1])
Q_REF = torch.tensor([0.2, 0.5, 0.3])


def test_exact_kl_matches_the_hand_value_and_torch_kl_div():
    kl = exact_kl(P_POLICY.log(), Q_REF.log()).item()
    assert kl == pytest.approx(0.39606, abs=1e-5)
    oracle = F.kl_div(Q_REF.log(), P_POLICY.log(), log_target=True, reduction="sum").item()
    assert kl == pytest.approx(oracle, abs=1e-6)


def test_kl_estimators_agree_with_the_exact_kl_on_samples_from_the_policy():
    gen = torch.Generator().manual_seed(0)
    a = torch.multinomial(P_POLICY, 1_000_000, replacement=True, generator=gen)
    logp, ref_logp = P_POLICY.log()[a], Q_REF.log()[a]
    k1, k2, k3 = (kl_estimate(logp, ref_logp, k) for k in ("k1", "k2", "k3"))
    assert k1.mean().item() == pytest.approx(0.3961, abs=0.005)
    assert k3.mean().item() == pytest.approx(0.3961, abs=0.005)
    assert k2.mean().item() == pytest.approx(0.4615, abs=0.005)       # biased, as expected
    assert k3.min().item() >= 0 and k3.std() < k1.std() / 3           # k3: never negative, lower variance
    flipped_k3 = (torch.expm1(logp - ref_logp) - (logp - ref_logp)).mean().item()
    assert abs(flipped_k3 - 0.3961) > 0.2                               # the classic sign bug is detectable


def test_k3_is_accurate_near_zero():
    logp, ref_logp = torch.tensor([0.0], dtype=torch.float64), torch.tensor([1e-4], dtype=torch.float64)
    assert kl_estimate(logp, ref_logp, "k3").item() == pytest.approx(1e-8 / 2, rel=1e-3)
    with pytest.raises(ValueError, match="k1"):
        kl_estimate(logp, ref_logp, "k4")


def test_best_of_n_kl_formula_and_a_brute_force_check():
    assert [round(best_of_n_kl(n), 3) for n in (1, 2, 4, 16, 64)] == [0.0, 0.193, 0.636, 1.835, 3.175]
    # brute force: a uniform policy over M answers with distinct rewards; best-of-n picks rank i with
    # probability (i/M)^n - ((i-1)/M)^n. Its KL to the uniform policy tends to log n - (n-1)/n.
    M, n = 100_000, 8
    i = torch.arange(1, M + 1, dtype=torch.float64)
    p = (i / M) ** n - ((i - 1) / M) ** n
    kl = (p * torch.log(p * M)).sum().item()
    assert kl == pytest.approx(best_of_n_kl(n), abs=1e-3)
    with pytest.raises(ValueError):
        best_of_n_kl(0)


def test_whiten_hand_case():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert torch.allclose(whiten(x), torch.tensor([-1.3416, -0.4472, 0.4472, 1.3416]), atol=1e-4)
    assert torch.allclose(whiten(x, shift_mean=False), torch.tensor([-1.3416, -0.4472, 0.4472, 1.3416]) + 2.5,
                          atol=1e-4)


def test_win_rate_counts_ties_as_half_and_gives_an_interval():
    win, lo, hi = win_rate(torch.tensor([2.0, 1.0, 0.0, 5.0]), torch.tensor([1.0, 1.0, 3.0, 0.0]))
    assert win == pytest.approx(2.5 / 4)
    assert lo < win < hi
    with pytest.raises(ValueError):
        win_rate(torch.zeros(3), torch.zeros(2))


def test_non_finite_rewards_raise_a_clear_error():
    check_rewards(torch.tensor([0.0, 1.0]))
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="NaN or infinite for 1 of 3"):
            check_rewards(torch.tensor([0.0, bad, 1.0]))


# ---- prompts, sampling, reference -------------------------------------------------------------------

def test_prompts_start_at_word_starts_and_empty_prompts_are_refused():
    tok = CharTokenizer.fit(TEXT)
    prompts = make_prompts(TEXT, tok, 50, 6, seed=0)
    assert prompts.shape == (50, 6)
    for row in prompts:
        s = tok.decode(row.tolist())
        assert s[0].isalpha() and s in TEXT
    with pytest.raises(ValueError, match="empty prompt"):
        make_prompts(TEXT, tok, 5, 0, seed=0)
    with pytest.raises(ValueError, match="P >= 1"):
        sample_responses(tiny_gpt(), torch.zeros(4, 0, dtype=torch.long), 5)


def test_kv_cached_sampling_equals_uncached_sampling():
    model = tiny_gpt()
    prompts = torch.randint(40, (8, 5), generator=torch.Generator().manual_seed(1))
    cached = sample_responses(model, prompts, 20, torch.Generator().manual_seed(3))
    plain = generate(model, prompts, 20, use_cache=False, generator=torch.Generator().manual_seed(3)).tokens
    assert torch.equal(cached, plain)


def test_kl_is_exactly_zero_when_the_policy_is_the_reference():
    policy = rl_copy(tiny_gpt(dropout=0.1))
    ref = frozen_copy(policy)
    assert ref is not policy and not any(p.requires_grad for p in ref.parameters())
    seq = sample_responses(policy, torch.randint(40, (16, 4)), 12, torch.Generator().manual_seed(0))
    policy.train()                                                   # dropout is off, so train mode is harmless
    logp, ref_logp = response_logprobs(policy, seq, 4), response_logprobs(ref, seq, 4)
    assert torch.equal(kl_estimate(logp, ref_logp, "k1"), torch.zeros_like(logp))
    assert torch.equal(kl_estimate(logp, ref_logp, "k3"), torch.zeros_like(logp))
    assert exact_kl(policy(seq), ref(seq)).abs().max().item() == 0.0


def test_evaluator_scores_the_reference_against_itself_as_a_coin_flip():
    tok = CharTokenizer.fit(TEXT)
    ref = frozen_copy(tiny_gpt(vocab=len(tok)))
    judge = SentimentJudge(["good", "merry"], torch.tensor([1.0, 1.0]), 0.0, known_words=TEXT.lower().split())
    ev = Evaluator(ref, make_prompts(TEXT, tok, 64, 6, seed=0), 18, judge, tok.decode, seed=5)
    m = ev(ref)
    assert m["kl"] == 0.0 and m["win"] == 0.5 and m["gold"] == pytest.approx(ev.ref_gold.mean().item())


def test_evaluator_measures_kl_from_another_reference_when_asked():
    tok = CharTokenizer.fit(TEXT)
    ref = frozen_copy(tiny_gpt(vocab=len(tok)))
    other = frozen_copy(tiny_gpt(vocab=len(tok), seed=1))
    judge = SentimentJudge(["good"], torch.tensor([1.0]), 0.0, known_words=TEXT.lower().split())
    ev = Evaluator(ref, make_prompts(TEXT, tok, 16, 6, seed=0), 10, judge, tok.decode, seed=5)
    seq = ev.sample(other)
    assert ev.sequence_kl(other, seq, ref=other).abs().max().item() == 0.0
    P = 6
    want = exact_kl(other(seq[:, :-1])[:, P - 1:], ref(seq[:, :-1])[:, P - 1:]).sum(1)
    assert torch.allclose(ev.sequence_kl(other, seq), want) and (want > 0).all()


def test_best_of_n_counts_repeated_answers_by_brute_force():
    tok = CharTokenizer.fit(TEXT)
    ref = frozen_copy(tiny_gpt(vocab=len(tok)))
    judge = SentimentJudge(["good"], torch.tensor([1.0]), 0.0, known_words=TEXT.lower().split())
    # one-character answers from a ~30-letter alphabet: among 8 draws for a prompt, repeats are common
    ev = Evaluator(ref, make_prompts(TEXT, tok, 12, 6, seed=0), 1, judge, tok.decode, seed=5)
    last_char = type("LastChar", (), {"score": staticmethod(lambda seq: seq[:, -1].float())})()
    rows = ev.best_of_n(last_char, [1, 2, 8])
    gen = torch.Generator().manual_seed(ev.seed + 1)
    draws = torch.stack([sample_responses(ref, ev.prompts, 1, gen) for _ in range(8)])[:, :, -1]
    for row in rows:
        n = row["n"]
        assert row["repeated_answers"] == sum(n - len(set(draws[:n, b].tolist())) for b in range(12))
        assert row["kl"] == best_of_n_kl(n)
    assert rows[0]["repeated_answers"] == 0 and rows[-1]["repeated_answers"] > 0


def test_pretrained_policy_loads_a_good_checkpoint_and_skips_a_bad_one(tmp_build):
    tok = CharTokenizer.fit(TEXT)
    cfg = RLHFConfig.preset("smoke", pretrain_steps=2, prompt_len=4, response_len=8)
    path = tmp_build / "checkpoints" / "06_gpt_char.safetensors"
    saved = tiny_gpt(vocab=len(tok), dropout=0.2)
    gpt_module.save(saved, path, tokenizer=tok, val_loss=1.5)
    model, info = pretrained_policy(TEXT, cfg, torch.device("cpu"))
    assert info["source"] == str(path) and model.cfg.dropout == 0.0
    assert torch.equal(model.wte.weight, saved.wte.weight)
    gpt_module.save(saved, path, tokenizer=tok, val_loss=3.5)         # e.g. a smoke run of lesson 06
    model, info = pretrained_policy(TEXT, cfg, torch.device("cpu"))
    assert info["source"] == "trained here" and not torch.equal(model.wte.weight[:5], saved.wte.weight[:5])
