"""A few-shot task a pretrained model can only solve from its prompt (lesson 08): made-up words, each paired with
a label (a colour) in the prompt, then one of those words again. The pairing is drawn fresh for every prompt,
so no weight can know it: zero-shot, the model can only guess.

    prompts = word_label_prompts(tok.encode, 12, labels=(" red", " blue", " green", " yellow"), seed=0)
    r = label_scores(model, prompts)          # accuracy among the labels, mean log-probability of the right one
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

CONSONANTS = "bdfgklmnprstvz"
VOWELS = "aeiou"


class LabelPrompts(NamedTuple):
    ids: torch.Tensor          # (N, T) token ids, right-padded
    lengths: torch.Tensor      # (N,) real tokens per prompt
    where: torch.Tensor        # (N, Q) positions whose next token is a scored label (after a query's ":")
    answer: torch.Tensor       # (N, Q) index into label_ids of the right label
    label_ids: torch.Tensor    # (n_labels,) the token id of each label
    texts: list[str]           # the prompts as text (for display)


def made_up_words(n: int, generator: torch.Generator | None = None, syllables: int = 2) -> list[str]:
    """n distinct pronounceable non-words (consonant-vowel syllables and a final consonant, e.g. "tavok")."""
    words: list[str] = []
    while len(words) < n:
        r = torch.randint(100, (2 * syllables + 1,), generator=generator).tolist()
        w = "".join(CONSONANTS[r[2 * i] % len(CONSONANTS)] + VOWELS[r[2 * i + 1] % len(VOWELS)]
                    for i in range(syllables)) + CONSONANTS[r[-1] % len(CONSONANTS)]
        if w not in words:
            words.append(w)
    return words


def word_label_prompts(encode: Callable[[str], list[int]], n: int, labels: Sequence[str], n_pairs: int = 8,
                       shots: bool = True, start: Sequence[int] = (), seed: int = 0, pad_id: int = 0,
                       sep: str = ":") -> LabelPrompts:
    """`n` prompts: `n_pairs` example lines "word: label" (each label used n_pairs / len(labels) times, in a
    random order), then a query block: the same words again in a new random order, each followed by its label.
    Scored: the label after each query word (teacher-forced, so one pass scores all n * n_pairs queries).
    `shots=False`: the query block alone (zero-shot: nothing in the prompt tells the labels). `start`: token
    ids put first (a start-of-text token). Every label must be one token (leading space included)."""
    label_ids = []
    for lab in labels:
        ids = encode(lab)
        if len(ids) != 1:
            raise ValueError(f"label {lab!r} is {len(ids)} tokens; labels must be single tokens")
        label_ids.append(ids[0])
    if n_pairs % len(labels):
        raise ValueError(f"n_pairs={n_pairs} must be a multiple of the {len(labels)} labels (balanced prompts)")
    newline = encode("\n")
    g = torch.Generator().manual_seed(seed)
    rows, texts, wheres, answers = [], [], [], []
    for _ in range(n):
        words = made_up_words(n_pairs, g)
        lab = [i % len(labels) for i in range(n_pairs)]
        lab = [lab[i] for i in torch.randperm(n_pairs, generator=g).tolist()]
        order = torch.randperm(n_pairs, generator=g).tolist()
        ids, text, where = list(start), "", []
        for block, is_query in (((range(n_pairs) if shots else []), False), (order, True)):
            for i in block:
                ids += encode(f"{words[i]}{sep}")
                if is_query:
                    where.append(len(ids) - 1)
                ids += [label_ids[lab[i]]] + newline
                text += f"{words[i]}{sep}{labels[lab[i]]}\n"
        rows.append(ids)
        texts.append(text)
        wheres.append(where)
        answers.append([lab[i] for i in order])
    T = max(len(r) for r in rows)
    ids = torch.full((n, T), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
    return LabelPrompts(ids, torch.tensor([len(r) for r in rows]), torch.tensor(wheres), torch.tensor(answers),
                        torch.tensor(label_ids), texts)


def real_positions(prompts: LabelPrompts) -> torch.Tensor:
    """(N, T) bool: True at real tokens, False at the padding."""
    return torch.arange(prompts.ids.shape[1])[None] < prompts.lengths[:, None]


@torch.no_grad()
def label_scores(model, prompts: LabelPrompts) -> dict[str, float]:
    """"accuracy": how often the right label has the highest logit among the labels; "logprob": the mean
    log-probability (over the whole vocabulary) of the right label's token. One batched pass scores every
    query: a causal model never sees the right padding from a real position. The read-out runs only at the
    scored positions (`model.hidden`, then `model.lm_head`)."""
    device = next(model.parameters()).device
    h = model.hidden(prompts.ids.to(device))
    rows = torch.arange(h.shape[0], device=device)[:, None]
    logp = model.lm_head(h[rows, prompts.where.to(device)]).float().log_softmax(-1)         # (N, Q, vocab)
    lab = prompts.label_ids.to(device)
    pick = logp[..., lab].argmax(-1).cpu()
    right = logp.gather(-1, lab[prompts.answer.to(device)][..., None])[..., 0]
    return {"accuracy": float((pick == prompts.answer).float().mean()), "logprob": float(right.mean())}
