"""Metrics shared by the lessons: accuracy, perplexity, confidence intervals (and BLEU, lesson 03)."""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    import numpy as np

from .checks import integer, real


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of rows whose arg-max equals the target. logits (..., classes), targets (...) with the same
    leading shape, at least one row."""
    if not isinstance(logits, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise TypeError("logits and targets: expected torch tensors")
    if logits.dim() < 1 or targets.shape != logits.shape[:-1]:
        raise ValueError(f"targets has shape {tuple(targets.shape)} but logits has {tuple(logits.shape)}: "
                         "expected targets of logits' shape without its last (class) dim")
    if targets.numel() == 0:
        raise ValueError("targets is empty: the accuracy of no rows is undefined")
    return (logits.argmax(-1) == targets).float().mean().item()



def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval for a proportion (better than the normal one near 0 or 1)."""
    n = integer("n", n, 1)
    if not 0 <= real("successes", successes) <= n:
        raise ValueError(f"successes={successes}: expected a count between 0 and n={n}")
    real("z", z, 0, above=True)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


# ---- BLEU (lesson 03; reused by 04 and 05) ------------------------------------------------------------
# Inputs are tokenised sentences (lists of words), one reference per hypothesis, scores in 0..100.

def _token_lists(name: str, sentences: Sequence[Sequence[str]]) -> None:
    if isinstance(sentences, str) or any(isinstance(s, str) for s in sentences):
        raise ValueError(f"{name}: expected tokenised sentences (lists of words), got a plain string")


def _pairs(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> None:
    _token_lists("hypotheses", hypotheses)
    _token_lists("references", references)
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        raise ValueError("hypotheses is empty: the BLEU of no sentences is undefined (expected at least one pair)")


def ngram_counts(tokens: Sequence[str], n: int) -> Counter:
    """How often each run of n consecutive tokens occurs."""
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def bleu(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]], max_n: int = 4) -> float:
    """The lesson's own corpus BLEU (Papineni et al., 2002), written out.

    p_n = (n-grams of the hypotheses that also occur in the reference, each counted at most as often as the
    reference has it) / (n-grams of the hypotheses), summed over the whole corpus, for n = 1..max_n.
    BLEU = BP * geometric mean of p_n, with the brevity penalty BP = exp(1 - ref_len / hyp_len) when the
    hypotheses are shorter in total than the references (precision alone would reward saying little).
    No smoothing: a corpus with no matching max_n-gram scores 0 (sacrebleu smooths that case).
    """
    _pairs(hypotheses, references)
    max_n = integer("max_n", max_n, 1)
    matches, totals = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references):
        hyp_len, ref_len = hyp_len + len(hyp), ref_len + len(ref)
        for n in range(1, max_n + 1):
            ref_counts = ngram_counts(ref, n)
            matches[n - 1] += sum(min(c, ref_counts[g]) for g, c in ngram_counts(hyp, n).items())
            totals[n - 1] += max(len(hyp) - n + 1, 0)
    if hyp_len == 0 or min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / max_n
    brevity = 1.0 if hyp_len >= ref_len else math.exp(1 - ref_len / hyp_len)
    return 100 * brevity * math.exp(log_precision)


def corpus_bleu(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU by sacrebleu (exp smoothing): the number we report.

    The words are already split by the course's normaliser, so sacrebleu scores exactly these tokens
    (`tokenize="none"`). Its default 13a tokenizer would split them again, differently: `<unk>` into three
    tokens, `peut-être` into three, so the same output would score a point or more away from the lesson's own
    `bleu` for reasons that have nothing to do with translation. `force=True`: the text is tokenized on purpose,
    so sacrebleu's "It looks like you forgot to detokenize your test data" warning (printed once per call when
    100 or more lines end in " .") does not apply."""
    import sacrebleu  # imported here: only the translation lessons need it

    _pairs(hypotheses, references)
    return sacrebleu.corpus_bleu([" ".join(h) for h in hypotheses], [[" ".join(r) for r in references]],
                                 tokenize="none", force=True).score


def bleu_by_bucket(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
                   lengths: Sequence[int], edges: Sequence[int]) -> list[dict]:
    """sacrebleu BLEU of each length bucket. `edges` are inclusive upper bounds, e.g. (5, 10, 20) gives
    buckets 1-5, 6-10, 11-20 of `lengths` (one per sentence, e.g. source length). Empty buckets are left out."""
    if not len(hypotheses) == len(references) == len(lengths):
        raise ValueError("need one hypothesis, one reference and one length per sentence")
    edges = [integer("edges", e, 1) for e in edges]
    if not edges or any(a >= b for a, b in zip(edges, edges[1:])):
        raise ValueError(f"edges={edges}: expected strictly increasing upper bounds, e.g. (5, 10, 20)")
    out, low = [], 1
    for high in edges:
        idx = [i for i, n in enumerate(lengths) if low <= n <= high]
        if idx:
            score = corpus_bleu([hypotheses[i] for i in idx], [references[i] for i in idx])
            out.append({"bucket": f"{low}-{high}", "low": low, "high": high, "n": len(idx), "bleu": score})
        low = high + 1
    return out


def bleu_statistics(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
                    max_n: int = 4) -> np.ndarray:
    """Per-sentence BLEU sufficient statistics, one row per sentence:
    [hypothesis length, reference length, matches for n = 1..max_n, n-grams for n = 1..max_n].
    Corpus BLEU is a function of their column sums, which is what makes the bootstrap below cheap."""
    import numpy as np

    _pairs(hypotheses, references)
    max_n = integer("max_n", max_n, 1)
    rows = []
    for hyp, ref in zip(hypotheses, references):
        matches, totals = [], []
        for n in range(1, max_n + 1):
            ref_counts = ngram_counts(ref, n)
            matches.append(sum(min(c, ref_counts[g]) for g, c in ngram_counts(hyp, n).items()))
            totals.append(max(len(hyp) - n + 1, 0))
        rows.append([len(hyp), len(ref), *matches, *totals])
    return np.asarray(rows, dtype=np.int64).reshape(len(rows), 2 + 2 * max_n)


def _bleu_from_sums(sums, max_n: int) -> float:
    """sacrebleu's corpus BLEU (exp smoothing, the default of `corpus_bleu` above) from summed statistics."""
    from sacrebleu.metrics.bleu import BLEU

    sums = [int(s) for s in sums]
    return BLEU.compute_bleu(sums[2:2 + max_n], sums[2 + max_n:], sums[0], sums[1], smooth_method="exp",
                             max_ngram_order=max_n).score


def bootstrap_bleu(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]], *,
                   baseline: Sequence[Sequence[str]] | None = None, samples: int = 1000, level: float = 0.95,
                   seed: int = 0) -> dict:
    """A percentile bootstrap interval for corpus BLEU: draw the test sentences with replacement `samples` times
    and score each draw. With `baseline` (another system's output for the same references) the interval is for
    the paired difference BLEU(hypotheses) - BLEU(baseline), both scored on the same draw (Koehn, 2004), so the
    sentences' own difficulty cancels. Returns {"bleu", "low", "high"} and, with a baseline,
    {"baseline", "difference", "difference_low", "difference_high", "ratio", "ratio_low", "ratio_high"}
    and "ratio_undefined_draws" (ratio = BLEU / baseline BLEU; its interval is over the draws where the baseline
    scores above 0, and nan if there are none)."""
    import numpy as np

    samples = integer("samples", samples, 10)
    level = real("level", level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level}: expected a coverage strictly between 0 and 1, e.g. 0.95")
    stats = bleu_statistics(hypotheses, references)
    if len(stats) == 0:
        raise ValueError("hypotheses: expected at least one sentence to bootstrap")
    base = bleu_statistics(baseline, references) if baseline is not None else None  # checks the lengths
    max_n = (stats.shape[1] - 2) // 2
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(stats), size=(samples, len(stats)))
    tail = (1 - level) / 2 * 100

    def interval(values):
        return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))

    scores = np.array([_bleu_from_sums(stats[d].sum(0), max_n) for d in draws])
    low, high = interval(scores)
    out = {"bleu": _bleu_from_sums(stats.sum(0), max_n), "low": low, "high": high, "n": len(stats),
           "samples": samples, "level": level}
    if base is not None:
        base_scores = np.array([_bleu_from_sums(base[d].sum(0), max_n) for d in draws])
        out["baseline"] = _bleu_from_sums(base.sum(0), max_n)
        out["difference"] = out["bleu"] - out["baseline"]
        out["difference_low"], out["difference_high"] = interval(scores - base_scores)
        defined = base_scores > 0  # a draw on which the baseline scores 0 has no ratio
        out["ratio"] = out["bleu"] / out["baseline"] if out["baseline"] > 0 else float("nan")
        out["ratio_low"], out["ratio_high"] = (interval(scores[defined] / base_scores[defined]) if defined.any()
                                               else (float("nan"), float("nan")))
        out["ratio_undefined_draws"] = int((~defined).sum())
    return out
