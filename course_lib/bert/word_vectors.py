"""Word embeddings carry meaning (lesson 07): nearest neighbours and analogies in a token embedding table.

A model's input embedding table gives every token a vector. Nothing tells the model what a word means, yet
after pretraining, words used alike sit close together, and some relations become *directions*: the step from
"man" to "woman" is roughly the step from "king" to "queen". The classic test (Mikolov et al. 2013): answer
"a is to b as c is to ?" with the token whose vector is closest, by cosine, to b - a + c (all unit length),
never answering a, b or c themselves.

`ANALOGY_PAIRS` is the course's own small test set: ten word pairs for each of five relations, every word a
single token of BERT's uncased vocabulary (a test checks it). `analogy_questions` makes one question of every
two different pairs of a relation: 10 x 9 = 90 per relation.

    questions = analogy_questions(ANALOGY_PAIRS)
    scores = analogy_accuracy(embeddings, [ids_of(q) for q in questions], allowed=whole_word_mask(itos))
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

ANALOGY_PAIRS: dict[str, list[tuple[str, str]]] = {
    "country -> capital": [("france", "paris"), ("japan", "tokyo"), ("italy", "rome"), ("germany", "berlin"),
                           ("spain", "madrid"), ("russia", "moscow"), ("egypt", "cairo"), ("china", "beijing"),
                           ("greece", "athens"), ("canada", "ottawa")],
    "male -> female": [("man", "woman"), ("king", "queen"), ("boy", "girl"), ("father", "mother"),
                       ("brother", "sister"), ("son", "daughter"), ("husband", "wife"), ("uncle", "aunt"),
                       ("prince", "princess"), ("he", "she")],
    "singular -> plural": [("dog", "dogs"), ("cat", "cats"), ("car", "cars"), ("house", "houses"), ("tree", "trees"),
                           ("book", "books"), ("bird", "birds"), ("hand", "hands"), ("city", "cities"),
                           ("child", "children")],
    "adjective -> comparative": [("big", "bigger"), ("small", "smaller"), ("tall", "taller"), ("fast", "faster"),
                                 ("old", "older"), ("young", "younger"), ("strong", "stronger"),
                                 ("cold", "colder"), ("good", "better"), ("bad", "worse")],
    "verb -> past tense": [("walk", "walked"), ("play", "played"), ("go", "went"), ("see", "saw"), ("take", "took"),
                           ("eat", "ate"), ("run", "ran"), ("write", "wrote"), ("give", "gave"), ("come", "came")],
}

Question = tuple[str, str, str, str, str]       # (relation, a, b, c, d): a is to b as c is to d


def analogy_questions(pairs: Mapping[str, Sequence[tuple[str, str]]]) -> list[Question]:
    """Every (a, b) with every other (c, d) of the same relation, in order."""
    return [(rel, a, b, c, d) for rel, ps in pairs.items()
            for i, (a, b) in enumerate(ps) for j, (c, d) in enumerate(ps) if i != j]


def whole_word_mask(itos: Sequence[str]) -> torch.Tensor:
    """True at tokens that can be an answer: not a word continuation (`##...`) and not a special or unused
    entry (`[CLS]`, `[unused17]`, ...)."""
    return torch.tensor([not (t.startswith("##") or (t.startswith("[") and t.endswith("]"))) for t in itos])


def _unit(embeddings: torch.Tensor) -> torch.Tensor:
    if embeddings.dim() != 2:
        raise ValueError(f"embeddings: expected (tokens, dims), got shape {tuple(embeddings.shape)}")
    return F.normalize(embeddings.detach().float(), dim=-1)


def nearest_tokens(embeddings: torch.Tensor, token: int, k: int = 8, allowed: torch.Tensor | None = None
                   ) -> list[tuple[int, float]]:
    """The k tokens closest to `token` by cosine similarity (itself left out), with their similarities."""
    unit = _unit(embeddings)
    sims = unit @ unit[token]
    if allowed is not None:
        sims = sims.masked_fill(~allowed.to(sims.device), -float("inf"))
    sims[token] = -float("inf")
    top = sims.topk(k)
    return list(zip(top.indices.tolist(), top.values.tolist()))


def solve_analogies(embeddings: torch.Tensor, questions: torch.Tensor, allowed: torch.Tensor | None = None,
                    offset: bool = True) -> torch.Tensor:
    """questions: (N, 3) token ids (a, b, c). Returns (N,) the answer to "a is to b as c is to ?": the token
    closest by cosine to unit(b) - unit(a) + unit(c), never a, b or c. With `offset=False`, closest to c alone:
    the baseline that ignores the relation."""
    if questions.dim() != 2 or questions.shape[1] != 3:
        raise ValueError(f"questions: expected (N, 3) token ids, got shape {tuple(questions.shape)}")
    unit = _unit(embeddings)
    a, b, c = (unit[questions[:, i]] for i in range(3))
    query = b - a + c if offset else c
    sims = F.normalize(query, dim=-1) @ unit.T                     # (N, tokens)
    if allowed is not None:
        sims = sims.masked_fill(~allowed.to(sims.device), -float("inf"))
    sims = sims.scatter(1, questions.to(sims.device), -float("inf"))
    return sims.argmax(dim=1)


def analogy_accuracy(embeddings: torch.Tensor, questions: torch.Tensor, answers: torch.Tensor,
                     relations: Sequence[str], allowed: torch.Tensor | None = None, offset: bool = True
                     ) -> dict[str, float]:
    """Fraction answered exactly right, per relation and overall ("all")."""
    if len(relations) != len(questions) or answers.shape != (len(questions),):
        raise ValueError("need one answer and one relation per question")
    hit = (solve_analogies(embeddings, questions, allowed, offset).cpu() == answers.cpu()).float()
    scores = {rel: hit[[i for i, r in enumerate(relations) if r == rel]].mean().item()
              for rel in dict.fromkeys(relations)}
    scores["all"] = hit.mean().item()
    return scores
