"""Lesson 09, part A: what did instruction tuning teach? Greedy answers, compared whole (exact match).

    exact_match(model, tok, data.split("seen"))       # {"repeat": 0.9, ..., "mean": 0.88}
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from .sft import ChatCharTokenizer
from .tasks import END, Example


@torch.no_grad()
def greedy_until(model, x: torch.Tensor, max_new: int, stop_ids: Sequence[int]) -> torch.Tensor:
    """Greedy continuation of the equal-length prompts `x` (B, T) by up to `max_new` tokens, stopping once every
    row has produced one of `stop_ids`: (B, n) new tokens. Uses the KV cache while the text fits the context,
    else re-reads the last `block_size` tokens each step (a sliding window)."""
    block = model.cfg.block_size
    cache = model.new_cache(x.shape[0]) if x.shape[1] + max_new <= block else None
    stops = torch.tensor(list(stop_ids), device=x.device)
    done = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    out = x
    logits = model(x[:, -block:], cache=cache)[:, -1]
    for step in range(max_new):
        nxt = logits.argmax(-1)
        out = torch.cat([out, nxt[:, None]], dim=1)
        done |= torch.isin(nxt, stops)
        if done.all() or step == max_new - 1:
            break
        logits = (model(nxt[:, None], cache=cache) if cache is not None else model(out[:, -block:]))[:, -1]
    return out[:, x.shape[1]:]


@torch.no_grad()
def answers(model, tok: ChatCharTokenizer, prompts: Sequence[str], max_new: int = 30) -> list[str]:
    """Greedy answers: generated text up to the first <|end|> or line break (or `max_new` tokens; the longest
    answer in the set is 28 characters). An answer ends at <|end|>; or at a line break, which is how a model that
    never saw <|end|> (the untuned one) ends a line: no answer contains one, so this only ever helps the untuned
    model. Prompts of equal length are decoded together in one batch."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    encoded = [tok.encode(p)[-model.cfg.block_size:] for p in prompts]
    stop_ids = [tok.end_id] + ([tok.stoi["\n"]] if "\n" in tok.stoi else [])
    out: list[str | None] = [None] * len(prompts)
    by_length: dict[int, list[int]] = {}
    for i, ids in enumerate(encoded):
        by_length.setdefault(len(ids), []).append(i)
    for length, idx in by_length.items():
        new = greedy_until(model, torch.tensor([encoded[i] for i in idx], device=device), max_new, stop_ids)
        for i, ids in zip(idx, new.tolist()):
            out[i] = tok.decode(ids).split(END, 1)[0].split("\n", 1)[0]
    model.train(was_training)
    return out  # type: ignore[return-value]


def exact_match(model, tok: ChatCharTokenizer, examples: Sequence[Example], prompts: Sequence[str] | None = None,
                max_new: int = 30) -> dict[str, float]:
    """Fraction of examples answered exactly right, per task (and "mean" over tasks). `prompts` replaces the
    examples' own chat prompts (e.g. few-shot prompts), one per example."""
    got = answers(model, tok, prompts or [e.prompt for e in examples], max_new)
    per_task: dict[str, list[bool]] = {}
    for e, a in zip(examples, got):
        per_task.setdefault(e.task, []).append(a == e.answer)
    scores = {t: sum(v) / len(v) for t, v in per_task.items()}
    scores["mean"] = sum(scores.values()) / len(scores)
    return scores
