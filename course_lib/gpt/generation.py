"""Generation: turn a next-token model into text, one token at a time.

    out = generate(model, prompt, 200, temperature=0.8, top_k=40, logprobs=True)
    out.tokens     # (B, prompt + 200): the prompt followed by the new tokens
    out.new_tokens # (B, 200)
    out.logprobs   # (B, 200): log-probability of each new token under the distribution it was drawn from

Decoding rules: greedy (`temperature=0`), temperature sampling, top-k and top-p (nucleus) filtering; with
the KV cache (default) or by re-reading the whole text every step. Both paths give the same tokens.

Context longer than the block: a prompt longer than `block_size` is an error (crop it yourself, so you know
what the model sees). Once prompt + new tokens pass `block_size`, the model conditions on the last
`block_size` tokens (a sliding window, as nanoGPT does); with the cache this means re-reading the window each
step, so the cache only speeds up the part of the text that fits in the block.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..core.checks import integer, real


@dataclass
class Generation:
    tokens: torch.Tensor               # (B, T_prompt + n) or (T_prompt + n,) if the prompt was 1-D
    prompt_len: int
    logprobs: torch.Tensor | None      # (B, n) / (n,), only when asked for

    @property
    def new_tokens(self) -> torch.Tensor:
        return self.tokens[..., self.prompt_len:]


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Set to -inf every logit outside the top-k and/or the top-p nucleus (last dim = vocabulary).

    top-p keeps the smallest set of most likely tokens whose probabilities sum to at least p (the most likely
    token is always kept).
    """
    if top_k is not None:
        integer("top_k", top_k, 1)
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        if not 0.0 < real("top_p", top_p) <= 1.0:
            raise ValueError(f"top_p={top_p}: expected a probability in (0, 1]")
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        # drop a token when the tokens ranked above it already reach p
        drop_sorted = (cum - sorted_logits.softmax(-1)) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def next_token(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None, generator: torch.Generator | None = None):
    """Pick one token per row of `logits` (B, V). Returns (tokens (B,), their log-probabilities (B,)).

    The log-probability is under the distribution actually sampled from: softmax(logits / temperature)
    after top-k/top-p. For greedy decoding (temperature 0) it is the model's own log-softmax at T=1.
    """
    real("temperature", temperature, 0)     # finite: inf would sample uniformly, nan nothing at all (0 = greedy)
    logits = logits.float()
    if temperature == 0:
        tok = logits.argmax(-1)
        return tok, F.log_softmax(logits, -1).gather(-1, tok[:, None])[:, 0]
    logp = F.log_softmax(filter_logits(logits / temperature, top_k, top_p), -1)
    tok = torch.multinomial(logp.exp(), 1, generator=generator)[:, 0]
    return tok, logp.gather(-1, tok[:, None])[:, 0]


@torch.no_grad()
def generate(model, prompt: torch.Tensor, max_new_tokens: int, *, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, use_cache: bool = True,
             logprobs: bool = False, generator: torch.Generator | None = None) -> Generation:
    """Continue `prompt` (token ids, (T,) or (B, T), all rows the same length) by `max_new_tokens` tokens.

    `model` is a course_lib GPT (anything with `cfg.block_size`, `new_cache(batch)` and
    `forward(idx, cache=...)` returning logits). The model is put in eval mode for the call and restored.
    `generator` (for reproducible sampling) must live on the model's device.
    """
    integer("max_new_tokens", max_new_tokens, 0)
    # checked up front, so a bad decoding setting fails before any work (and even when max_new_tokens is 0)
    real("temperature", temperature, 0)
    if top_k is not None:
        integer("top_k", top_k, 1)
    if top_p is not None and not 0.0 < real("top_p", top_p) <= 1.0:
        raise ValueError(f"top_p={top_p}: expected a probability in (0, 1]")
    one_dim = prompt.dim() == 1
    idx = prompt[None] if one_dim else prompt
    if idx.dim() != 2 or idx.shape[1] == 0:
        raise ValueError(f"prompt must be token ids of shape (T,) or (B, T) with T >= 1, got {tuple(prompt.shape)}")
    if idx.dtype.is_floating_point or idx.dtype.is_complex or idx.dtype == torch.bool:
        raise TypeError(f"prompt: expected integer token ids, got dtype {idx.dtype}")
    vocab = getattr(model.cfg, "vocab_size", None)
    if vocab is not None and (int(idx.min()) < 0 or int(idx.max()) >= vocab):
        raise ValueError(f"prompt: token ids must be in [0, {vocab}) (the model's vocab_size), got ids from "
                         f"{int(idx.min())} to {int(idx.max())}")
    block = model.cfg.block_size
    if idx.shape[1] > block:
        raise ValueError(f"the prompt has {idx.shape[1]} tokens but the model's block_size is {block}: "
                         f"crop it, e.g. prompt[..., -{block}:]")
    device = next(model.parameters()).device
    idx = idx.to(device)
    prompt_len = idx.shape[1]
    was_training = model.training
    model.eval()
    cache = model.new_cache(idx.shape[0]) if use_cache else None
    chosen_logprobs = []
    try:
        for _ in range(max_new_tokens):
            if cache is None:
                logits = model(idx[:, -block:])[:, -1]
            else:
                if cache.pos == 0 or cache.pos >= block:
                    # first step, or the window has slid past the block: (re)fill the cache with the window
                    cache.pos = 0
                    logits = model(idx[:, -block:], cache=cache)[:, -1]
                else:
                    logits = model(idx[:, -1:], cache=cache)[:, -1]
            tok, lp = next_token(logits, temperature, top_k, top_p, generator)
            idx = torch.cat([idx, tok[:, None]], dim=1)
            chosen_logprobs.append(lp)
    finally:
        model.train(was_training)
    lps = None
    if logprobs:
        lps = torch.stack(chosen_logprobs, 1) if chosen_logprobs else idx.new_zeros(idx.shape[0], 0, dtype=torch.float)
        lps = lps[0] if one_dim else lps
    return Generation(idx[0] if one_dim else idx, prompt_len, lps)


def token_logprobs(model, tokens: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log p(token_t | tokens_<t) for t = 1..T-1 in one teacher-forced pass: (B, T-1). Differentiable.

    Divides the logits by `temperature` like sampling does, so it scores text exactly as `generate` drew it
    (at temperature 1 without top-k/top-p, it equals `generate(..., logprobs=True).logprobs`).
    """
    real("temperature", temperature, 0, above=True)
    if tokens.dim() != 2 or tokens.shape[1] < 2:
        raise ValueError(f"tokens must be (B, T) with T >= 2, got {tuple(tokens.shape)}")
    logits = model(tokens[:, :-1]).float() / temperature
    return F.log_softmax(logits, -1).gather(-1, tokens[:, 1:, None])[..., 0]


# ---- how varied is generated text? ----------------------------------------------------------------
# Both measures take sequences of any units: a string (characters), text.split() (words) or token ids.

def _ngrams(seq: Sequence, n: int) -> list[tuple]:
    return [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]


def distinct_n(seqs: Sequence[Sequence], n: int = 2) -> float:
    """Diversity: distinct n-grams / all n-grams, pooled over `seqs` (1.0 = nothing ever repeats)."""
    integer("n", n, 1)
    grams = [g for seq in seqs for g in _ngrams(seq, n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repetition(seq: Sequence, n: int = 4) -> float:
    """Degeneration: the fraction of n-grams of `seq` that already occurred earlier in it
    (greedy decoding stuck in a loop scores high)."""
    integer("n", n, 1)
    grams = _ngrams(seq, n)
    return 1 - len(set(grams)) / len(grams) if grams else 0.0
