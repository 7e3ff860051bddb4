"""Test-time compute: draw many answers per problem, then count how often one is right (pass@k, with an oracle
that checks) or how often the most common answer is right (majority vote, no oracle needed).

    correct, answers = sample_answers(model, split.test, "scratchpad", tok, n=64, generator=g)
    pass_at_k(64, correct.sum(1), 8)          # per problem: P(at least one of 8 samples is right)
    majority_vote_accuracy(answers, truth, 8) # per problem: P(the most common of 8 answers is the sum)

pass@k follows Chen et al. (2021): from n >= k samples of which c are right, the probability that k of them
drawn without replacement contain at least one right one is 1 - C(n-c, k) / C(n, k): an unbiased estimate of
pass@k, with far less variance than drawing k samples once. Computed as a product, never with factorials.
"""
from __future__ import annotations

import torch

from ..core.checks import integer, real
from ..gpt.generation import generate
from .addition import answers as read_answers, completion_length, encode_prompts


def pass_at_k(n: int, c: torch.Tensor, k: int) -> torch.Tensor:
    """Unbiased pass@k per problem from `c` (a tensor of counts) right answers among `n` samples each.

    1 - prod_{i = n-c+1}^{n} (1 - k / i), which equals 1 - C(n-c, k) / C(n, k) without large numbers."""
    n, k = integer("n", n, 1), integer("k", k, 1)
    if k > n:
        raise ValueError(f"k={k} > n={n}: pass@k needs at least k samples per problem")
    c = torch.as_tensor(c)
    if c.dtype.is_floating_point or (c < 0).any() or (c > n).any():
        raise ValueError(f"c: expected integer counts in [0, n={n}], got {c.tolist() if c.numel() < 10 else c}")
    c = c.long()
    i = torch.arange(1, n + 1, dtype=torch.float64)
    # tail[j] = sum_{i=j+1}^{n} log(1 - k/i), so tail[n - c] is the log of the product over i = n-c+1 .. n.
    # Terms with i <= k are undefined, but only enter when n - c < k, which the last line sets to 1.
    terms = torch.log1p(-k / i.clamp(min=k + 0.5))
    tail = torch.cat([terms.flip(0).cumsum(0).flip(0), torch.zeros(1, dtype=torch.float64)])
    out = 1.0 - torch.exp(tail[n - c])
    return torch.where(n - c < k, torch.ones_like(out), out)


def majority_vote(answers: torch.Tensor) -> torch.Tensor:
    """The most common answer of each row of `answers` (N, k); -1 (malformed) never wins unless it is all there
    is. Ties go to the answer drawn first. (N,)."""
    if answers.dim() != 2 or answers.shape[1] == 0:
        raise ValueError(f"answers must be (N, k) with k >= 1, got shape {tuple(answers.shape)}")
    out = []
    for row in answers.tolist():
        counts: dict[int, int] = {}
        for a in row:
            if a != -1:
                counts[a] = counts.get(a, 0) + 1
        out.append(max(counts, key=lambda a: (counts[a], -row.index(a))) if counts else -1)
    return torch.tensor(out)


def majority_vote_accuracy(answers: torch.Tensor, truth: torch.Tensor, k: int) -> torch.Tensor:
    """Per problem: the fraction of disjoint groups of `k` samples (columns 0..k-1, k..2k-1, ...) whose majority
    answer is `truth`. (N,) floats; `answers` is (N, n) with n >= k."""
    k = integer("k", k, 1)
    if answers.dim() != 2 or answers.shape[1] < k:
        raise ValueError(f"answers must be (N, n) with n >= k={k}, got shape {tuple(answers.shape)}")
    if truth.shape != answers.shape[:1]:
        raise ValueError(f"truth has shape {tuple(truth.shape)}: expected one answer per problem, ({answers.shape[0]},)")
    groups = answers.shape[1] // k
    votes = torch.stack([majority_vote(answers[:, g * k:(g + 1) * k]) for g in range(groups)], 1)
    return (votes == truth[:, None]).double().mean(1)


@torch.no_grad()
def sample_completions(model, problems: torch.Tensor, fmt: str, tok, n: int, temperature: float = 1.0,
                       generator: torch.Generator | None = None, batch: int = 1024) -> torch.Tensor:
    """`n` sampled prompt + completion rows per problem, problem by problem ((N * n, P + G) token ids, on the CPU);
    temperature 0 is greedy."""
    n = integer("n", n, 1)
    real("temperature", temperature, 0)
    device = next(model.parameters()).device
    if generator is not None and generator.device != device:
        generator = torch.Generator(device).manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
    prompts = encode_prompts(problems, tok).repeat_interleave(n, 0)
    G = completion_length(fmt)
    return torch.cat([generate(model, p.to(device), G, temperature=temperature, generator=generator).tokens.cpu()
                      for p in prompts.split(batch)])


def sample_answers(model, problems: torch.Tensor, fmt: str, tok, n: int, temperature: float = 1.0,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` sampled answers per problem (n = 1 with temperature 0: greedy). Returns (correct (N, n) bool,
    answers (N, n) int, -1 where malformed)."""
    seq = sample_completions(model, problems, fmt, tok, n, temperature, generator)
    got = read_answers(seq, fmt, tok).view(len(problems), n)
    return got == problems.sum(1)[:, None], got


def greedy_accuracy(model, problems: torch.Tensor, fmt: str, tok) -> float:
    """Exact match of greedy decoding (temperature 0) over `problems`."""
    correct, _ = sample_answers(model, problems, fmt, tok, n=1, temperature=0.0)
    return correct.float().mean().item()


def pass_curve(correct: torch.Tensor, ks) -> dict[int, float]:
    """Mean pass@k over problems for each k, from a (N, n) table of right/wrong samples."""
    n = correct.shape[1]
    c = correct.sum(1)
    return {k: pass_at_k(n, c, k).mean().item() for k in ks}


def never_solved(correct: torch.Tensor) -> float:
    """The fraction of problems none of whose samples is right."""
    return (~correct.any(1)).float().mean().item()
