"""The lesson's own BLEU against sacrebleu (the oracle), on toy corpora and on the real test split."""
import math
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.core import metrics, paths
from course_lib.core.metrics import bleu, bleu_by_bucket, corpus_bleu, ngram_counts

HAVE_ENGFRA = bool(os.environ.get("COURSE_DATA_MIRROR")) or (paths.data_dir() / "eng-fra" / "eng-fra.txt").exists()


def test_perfect_and_hopeless_translations():
    refs = [["the", "black", "cat", "sleeps", "."], ["i", "am", "cold", "."]]
    assert bleu(refs, refs) == pytest.approx(100.0)
    assert corpus_bleu(refs, refs) == pytest.approx(100.0)
    assert bleu([["x", "y", "z", "w"], ["q", "r", "s", "t"]], refs) == 0.0


def test_a_case_worked_by_hand():
    hyp = [["the", "cat", "sat", "on", "the", "mat"]]
    ref = [["the", "cat", "is", "on", "the", "mat", "today"]]
    # clipped matches: 1-grams 5/6, 2-grams 3/5, 3-grams 1/4, 4-grams 0/3 -> no smoothing: 0
    assert bleu(hyp, ref) == 0.0
    p = [5 / 6, 3 / 5, 1 / 4]
    expected = 100 * math.exp(1 - 7 / 6) * math.exp(sum(map(math.log, p)) / 3)   # brevity: 6 words vs 7
    assert bleu(hyp, ref, max_n=3) == pytest.approx(expected)


def test_clipping_stops_a_repeated_word_from_scoring():
    assert ngram_counts(["a", "b", "a", "b"], 2) == {("a", "b"): 2, ("b", "a"): 1}
    # "the the the the" matches "the" only as often as the reference has it (twice): p1 = 2/4
    assert bleu([["the"] * 4], [["the", "cat", "the", "end"]], max_n=1) == pytest.approx(50.0)


words = st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=4, max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(words, words), min_size=1, max_size=8))
def test_equals_sacrebleu_whenever_no_smoothing_is_needed(pairs):
    hyps, refs = [h for h, _ in pairs], [r for _, r in pairs]
    ours = bleu(hyps, refs)
    if ours > 0:      # every n-gram order has a match: sacrebleu's smoothing does not apply
        assert ours == pytest.approx(corpus_bleu(hyps, refs), abs=1e-6)


def _perturb(sentence: list[str], rng: random.Random) -> list[str]:
    s = list(sentence)
    kind = rng.randrange(4)
    if kind == 0 and len(s) > 2:
        del s[rng.randrange(len(s))]
    elif kind == 1 and len(s) > 2:
        i = rng.randrange(len(s) - 1)
        s[i], s[i + 1] = s[i + 1], s[i]
    elif kind == 2:
        s[rng.randrange(len(s))] = "the"
    return s


@pytest.mark.skipif(not HAVE_ENGFRA, reason="eng-fra not available (set COURSE_DATA_MIRROR)")
def test_agrees_with_sacrebleu_within_half_a_point_on_the_test_split():
    from course_lib.translation.pipeline import TranslationConfig, TranslationData

    data = TranslationData.build(TranslationConfig.preset("lesson"))
    rng = random.Random(0)
    refs = [t for _, t in data.test]
    hyps = [_perturb(t, rng) for t in refs]
    ours, sacre = bleu(hyps, refs), corpus_bleu(hyps, refs)
    assert 20 < sacre < 95 and abs(ours - sacre) < 0.5, (ours, sacre)


def test_model_style_output_with_unknowns_and_hyphens_agrees_with_sacrebleu():
    # what a small model writes: <unk> tokens and hyphenated French words, which sacrebleu must not re-split
    rng = random.Random(2)
    vocab = ["<unk>", "peut-être", "est-ce", "je", "suis", "là", ".", "?", "a-t-il", "l'homme", "chat"]
    refs = [[rng.choice(vocab[1:]) for _ in range(rng.randint(5, 12))] for _ in range(200)]
    hyps = [[w if rng.random() < 0.7 else rng.choice(vocab) for w in r] for r in refs]
    ours, sacre = bleu(hyps, refs), corpus_bleu(hyps, refs)
    assert 10 < ours < 95 and ours == pytest.approx(sacre, abs=1e-6)


def test_bleu_by_bucket_splits_by_length():
    refs = [["a", "b", "c", "d"], ["a", "b", "c", "d", "e", "f"], ["x", "y", "z", "w", "v", "u", "t"]]
    hyps = [["a", "b", "c", "d"], ["a", "b", "c", "d", "e", "g"], ["q"] * 7]
    out = bleu_by_bucket(hyps, refs, [2, 5, 6], edges=(3, 4, 6))
    assert [(b["bucket"], b["n"]) for b in out] == [("1-3", 1), ("5-6", 2)]      # 4-4 is empty: left out
    assert out[0]["bleu"] == pytest.approx(100.0)
    assert out[1]["bleu"] == pytest.approx(corpus_bleu(hyps[1:], refs[1:]))


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="tokenised"):
        bleu(["the cat"], [["the", "cat"]])
    with pytest.raises(ValueError, match="tokenised"):
        corpus_bleu([["the"]], ["the"])
    with pytest.raises(ValueError, match="references"):
        bleu([["a"]], [["a"], ["b"]])
    with pytest.raises(ValueError, match="one length"):
        bleu_by_bucket([["a"]], [["a"]], [1, 2], edges=(5,))


def _noisy_copies(keep: float, seed: int, n: int = 150):
    rng = random.Random(seed)
    words = "le chat est sur la table un chien noir dort".split()
    refs = [[rng.choice(words) for _ in range(rng.randint(3, 12))] for _ in range(n)]
    hyps = [[w if rng.random() < keep else rng.choice(words) for w in r] for r in refs]
    return hyps, refs


def test_bootstrap_interval_is_around_sacrebleus_score():
    hyps, refs = _noisy_copies(0.7, seed=1)
    out = metrics.bootstrap_bleu(hyps, refs, samples=300)
    assert out["bleu"] == pytest.approx(metrics.corpus_bleu(hyps, refs), abs=1e-9)
    assert out["low"] < out["bleu"] < out["high"]
    assert 1.0 < out["high"] - out["low"] < 25.0  # 150 noisy sentences: a few points wide, not zero, not everything
    assert metrics.bootstrap_bleu(hyps, refs, samples=300) == out  # seeded


def test_paired_bootstrap_separates_a_better_system_and_not_a_system_from_itself():
    hyps, refs = _noisy_copies(0.8, seed=2)
    worse = [[w if random.Random(i).random() < 0.6 else "xx" for w in h] for i, h in enumerate(hyps)]
    better = metrics.bootstrap_bleu(hyps, refs, baseline=worse, samples=300)
    assert better["difference_low"] > 0 and better["ratio_low"] > 1
    same = metrics.bootstrap_bleu(hyps, refs, baseline=hyps, samples=300)
    assert same["difference"] == same["difference_low"] == same["difference_high"] == 0.0


def test_bootstrap_bad_inputs_are_clear_errors():
    hyps, refs = _noisy_copies(0.7, seed=3, n=10)
    with pytest.raises(ValueError, match="level"):
        metrics.bootstrap_bleu(hyps, refs, level=1.0)
    with pytest.raises(ValueError, match="samples"):
        metrics.bootstrap_bleu(hyps, refs, samples=1)
    with pytest.raises(ValueError):
        metrics.bootstrap_bleu(hyps, refs, baseline=hyps[:5])
    with pytest.raises(ValueError, match="at least one"):
        metrics.bootstrap_bleu([], [])


def test_bootstrap_ratio_leaves_out_draws_where_the_baseline_scores_zero(recwarn):
    hyps, refs = _noisy_copies(0.8, seed=4, n=20)
    nothing = [["zz"] for _ in refs]
    out = metrics.bootstrap_bleu(hyps, refs, baseline=nothing, samples=50)
    assert out["ratio_undefined_draws"] == 50 and math.isnan(out["ratio_low"]) and math.isnan(out["ratio"])
    assert out["difference_low"] > 0 and not [w for w in recwarn if "numpy" in str(w.filename)]
