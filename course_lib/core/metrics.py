"""Metrics shared by the lessons: accuracy, perplexity, confidence intervals (and BLEU, lesson 03)."""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import torch

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
