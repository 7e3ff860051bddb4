"""Lesson 11's glimpse at a real model: SmolLM2-135M-Instruct (lesson 09's loader) asked for sums, directly or
step by step, every answer checked by program.

    questions = chat_questions(problems, "step_by_step")
    replies = ask_all(model, tok, questions, max_new_tokens=96)
    [read_final_number(r) for r in replies]

The problems are generated here (two-digit sums by default), so there is no data set to download and every answer
has a checkable truth.
"""
from __future__ import annotations

import re

import torch

from ..core.checks import integer

STYLES = {
    "direct": "What is {a} + {b}? Reply with the number only.",
    "step_by_step": "What is {a} + {b}? Think step by step: add the ones, then the tens, and end with "
                    "'Answer: <number>'.",
}
_ANSWER = re.compile(r"answer\s*(?:is)?\s*[:=]?\s*\**\s*(-?\d[\d,]*)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*")


def two_digit_problems(n: int, seed: int = 0) -> torch.Tensor:
    """(n, 2) random pairs of two-digit numbers (10..99), seeded."""
    n = integer("n", n, 1)
    return torch.randint(10, 100, (n, 2), generator=torch.Generator().manual_seed(seed))


def chat_questions(problems: torch.Tensor, style: str) -> list[str]:
    if style not in STYLES:
        raise ValueError(f"style={style!r}: expected one of {', '.join(STYLES)}")
    return [STYLES[style].format(a=a, b=b) for a, b in problems.tolist()]


def read_final_number(reply: str) -> int | None:
    """The number after the last 'Answer:' if there is one, else the last number in the reply (None if none)."""
    found = _ANSWER.findall(reply)
    numbers = found or _NUMBER.findall(reply)
    if not numbers:
        return None
    try:
        return int(numbers[-1].replace(",", ""))
    except ValueError:
        return None


@torch.no_grad()
def ask_all(model, tok, questions: list[str], max_new_tokens: int, batch: int = 16) -> list[str]:
    """Greedy replies of a chat model (course_lib.gpt.llama.Llama + its GGUF tokenizer), batched where the
    templated prompts have equal length (one at a time otherwise)."""
    device = next(model.parameters()).device
    ids = [tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True) for q in questions]
    replies: list[str | None] = [None] * len(ids)
    by_length: dict[int, list[int]] = {}
    for i, row in enumerate(ids):
        by_length.setdefault(len(row), []).append(i)
    for rows in by_length.values():
        for start in range(0, len(rows), batch):
            chunk = rows[start:start + batch]
            x = torch.tensor([ids[i] for i in chunk], device=device)
            out = model.generate(x, max_new_tokens, stop_ids={tok.eos_id})
            for i, row in zip(chunk, out[:, x.shape[1]:].tolist()):
                text = tok.decode(row)
                replies[i] = text.split("<|im_end|>")[0].strip()
    return [r or "" for r in replies]
