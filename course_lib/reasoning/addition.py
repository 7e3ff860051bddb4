"""Lesson 11's task: 3-digit addition, written three ways, and the program that checks an answer.

    tok = addition_tokenizer()                        # 16 characters: digits + = c , > $
    split = ProblemSplit.draw(20_000, 200, 500, seed=0)   # disjoint train / val / test problems
    completion(478, 365, "scratchpad")                # '3c1,4c1,8c0>843$'  (padded with '$' to a fixed length)
    verify("3c1,4c1,8c0>843$", 478, 365, "scratchpad")  # True: the final answer is the sum

The prompt is always `abc+def=` (operands with leading zeros, 8 characters). The three answer formats:

* direct:     the sum, most significant digit first              478+365=843$
* reversed:   the sum, least significant digit first             478+365=348$
* scratchpad: each column's digit and carry, least significant column first, then '>' and the sum
                                                                 478+365=3c1,4c1,8c0>843$

Every completion is padded with '$' to one fixed length per format, so sampled responses all have the same
length (no padding masks: the trick lesson 10 uses). Whatever comes after the first '$' is ignored.
The verifier reads only the final answer (outcome reward, as DeepSeek-R1's rule-based reward does): a
scratchpad with a wrong column but the right sum passes.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..core.checks import integer
from ..text.tokenizers import CharTokenizer

VOCAB = "0123456789+=c,>$"
END = "$"
FORMATS = ("direct", "reversed", "scratchpad")
DIGITS = 3                                     # operand digits
PROMPT_LEN = 2 * DIGITS + 2                    # 'abc+def='


def addition_tokenizer() -> CharTokenizer:
    """One id per character of VOCAB (no special tokens: '$' ends an answer)."""
    return CharTokenizer(list(VOCAB))


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"fmt={fmt!r}: expected one of {', '.join(FORMATS)}")
    return fmt


def _check_operand(name: str, value) -> int:
    value = integer(name, value, 0)
    if value >= 10 ** DIGITS:
        raise ValueError(f"{name}={value}: expected a number with at most {DIGITS} digits (0..{10 ** DIGITS - 1})")
    return value


def prompt(a: int, b: int) -> str:
    """'abc+def=' with leading zeros, e.g. prompt(47, 365) == '047+365='."""
    a, b = _check_operand("a", a), _check_operand("b", b)
    return f"{a:0{DIGITS}d}+{b:0{DIGITS}d}="


def completion_length(fmt: str) -> int:
    """Characters of every completion of `fmt`, '$' padding included: the longest answer plus one '$'."""
    answer = DIGITS + 1 + 1                          # up to 4 digits and the closing '$'
    if _check_format(fmt) == "scratchpad":
        return DIGITS * 4 - 1 + 1 + answer           # 'dcK' per column joined by ',', then '>'
    return answer


def columns(a: int, b: int) -> list[tuple[int, int]]:
    """The (digit, carry-out) of each column, least significant first: the work a person writes down."""
    a, b = _check_operand("a", a), _check_operand("b", b)
    out, carry = [], 0
    for _ in range(DIGITS):
        s = a % 10 + b % 10 + carry
        out.append((s % 10, s // 10))
        carry, a, b = s // 10, a // 10, b // 10
    return out


def completion(a: int, b: int, fmt: str) -> str:
    """The correct completion of `prompt(a, b)` in `fmt`, padded with '$' to `completion_length(fmt)`."""
    _check_format(fmt)
    total = str(_check_operand("a", a) + _check_operand("b", b))
    if fmt == "direct":
        text = total
    elif fmt == "reversed":
        text = total[::-1]
    else:
        text = ",".join(f"{d}c{c}" for d, c in columns(a, b)) + ">" + total
    return (text + END).ljust(completion_length(fmt), END)


def answer_text(text: str, fmt: str) -> str | None:
    """The answer's digits as written (before un-reversing), or None when the completion is malformed: no '$',
    no digits, a non-digit in the answer, or (scratchpad) no '>' before it."""
    _check_format(fmt)
    if END not in text:
        return None
    body = text[:text.index(END)]
    if fmt == "scratchpad":
        if ">" not in body:
            return None
        body = body[body.rindex(">") + 1:]
    if not body or not body.isdigit() or len(body) > DIGITS + 1:
        return None
    return body


def parse_answer(text: str, fmt: str) -> int | None:
    """The number a completion answers (un-reversed for `reversed`), or None when it is malformed."""
    body = answer_text(text, fmt)
    if body is None:
        return None
    return int(body[::-1] if fmt == "reversed" else body)


def verify(text: str, a: int, b: int, fmt: str) -> bool:
    """The program verifier: is the completion's final answer exactly a + b?"""
    return parse_answer(text, fmt) == _check_operand("a", a) + _check_operand("b", b)


def right_length(text: str, a: int, b: int, fmt: str) -> bool:
    """A format-only check: the answer is well formed and has as many digits as the true sum. It never
    compares the digits themselves (a proxy for correctness, the reward lesson 11 shows being hacked)."""
    body = answer_text(text, fmt)
    return body is not None and len(body) == len(str(_check_operand("a", a) + _check_operand("b", b)))


def read_prompt(text: str) -> tuple[int, int]:
    """(a, b) from a text that starts with 'abc+def='."""
    head = text[:PROMPT_LEN]
    if len(head) != PROMPT_LEN or head[DIGITS] != "+" or head[-1] != "=" \
            or not (head[:DIGITS] + head[DIGITS + 1:-1]).isdigit():
        raise ValueError(f"{text[:PROMPT_LEN]!r}: expected a prompt like '478+365='")
    return int(head[:DIGITS]), int(head[DIGITS + 1:-1])


# ---- problem sets -----------------------------------------------------------------------------------------

@dataclass
class ProblemSplit:
    """Disjoint train / validation / test problems, each a (N, 2) tensor of (a, b) pairs."""
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor

    @classmethod
    def draw(cls, n_train: int, n_val: int, n_test: int, seed: int = 0) -> "ProblemSplit":
        sizes = [integer(n, v, 1) for n, v in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test))]
        space = 10 ** (2 * DIGITS)
        if sum(sizes) > space:
            raise ValueError(f"{sum(sizes)} problems asked for, but there are only {space} distinct pairs")
        ids = torch.randperm(space, generator=torch.Generator().manual_seed(seed))[:sum(sizes)]
        pairs = torch.stack([ids // 10 ** DIGITS, ids % 10 ** DIGITS], 1)
        train, val, test = pairs.split(sizes)
        return cls(train, val, test)


def encode_prompts(problems: torch.Tensor, tok: CharTokenizer) -> torch.Tensor:
    """(N, 2) problems -> (N, PROMPT_LEN) token ids of their prompts."""
    if problems.dim() != 2 or problems.shape[1] != 2:
        raise ValueError(f"problems must be (N, 2) pairs (a, b), got shape {tuple(problems.shape)}")
    return torch.tensor([tok.encode(prompt(a, b)) for a, b in problems.tolist()])


def encode_examples(problems: torch.Tensor, fmt: str, tok: CharTokenizer) -> torch.Tensor:
    """(N, 2) problems -> (N, PROMPT_LEN + completion_length(fmt)) token ids of prompt + correct completion."""
    if problems.dim() != 2 or problems.shape[1] != 2:
        raise ValueError(f"problems must be (N, 2) pairs (a, b), got shape {tuple(problems.shape)}")
    return torch.tensor([tok.encode(prompt(a, b) + completion(a, b, fmt)) for a, b in problems.tolist()])


def decode_completions(seq: torch.Tensor, tok: CharTokenizer) -> list[str]:
    """The completion text (after the prompt) of each row of prompt + completion token ids."""
    return [tok.decode(row[PROMPT_LEN:].tolist()) for row in seq]


def answers(seq: torch.Tensor, fmt: str, tok: CharTokenizer) -> torch.Tensor:
    """(N,) the answer of each prompt + completion row (-1 where malformed)."""
    found = [parse_answer(t, fmt) for t in decode_completions(seq, tok)]
    return torch.tensor([-1 if x is None else x for x in found])


def sequence_reward(tok: CharTokenizer, fmt: str, check: str = "exact"):
    """A reward function for RL, `reward(seq) -> (B,) float`: 1.0 where `check` passes on the row's own prompt.

    check="exact": the program verifier (`verify`); check="length": the format-only `right_length`."""
    checks = {"exact": verify, "length": right_length}
    if check not in checks:
        raise ValueError(f"check={check!r}: expected one of {', '.join(checks)}")
    _check_format(fmt)
    fn = checks[check]

    def reward(seq: torch.Tensor) -> torch.Tensor:
        rows = [tok.decode(r.tolist()) for r in seq.cpu()]
        return torch.tensor([float(fn(t[PROMPT_LEN:], *read_prompt(t), fmt)) for t in rows], device=seq.device)
    return reward


def problems_of(seqs: Sequence[str]) -> torch.Tensor:
    """(N, 2) the (a, b) of each text's prompt."""
    return torch.tensor([read_prompt(s) for s in seqs])
