"""The simulated human of lesson 10: a fixed, transparent judge whose score is the "gold" reward.

A real RLHF pipeline asks people which of two answers they prefer. We cannot ask people inside a notebook,
so we build a stand-in we can read line by line, and we never train the policy against it directly:

    gold(text) = sentiment(text) - nonword_penalty * (#words that are not English/Shakespeare words)
                                 - repeat_penalty  * (#words repeated within the text)

* `sentiment` is a bag-of-words logistic regression trained on SST-2's 67k human-labelled movie phrases.
  It sees each distinct word once (binary features), so shouting "good good good" is no better than "good".
* The two penalties make the judge dislike gibberish and stutter: without them a sentiment model happily
  rewards text no person would call good, and the reward-hacking experiment would have nothing to show.

Every term is a sum of per-word numbers, so `explain(text)` can show where a score comes from.

`LanguageModelJudge` is a second, independent opinion: how likely a language model that was trained elsewhere
(lesson 10 uses SmolLM2-135M) finds a text. It knows nothing of our sentiment judge, so a policy that has learnt
to please one judge is not automatically pleasing the other.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..core.presets import Presets

WORD = re.compile(r"[a-z]+")


def words(text: str) -> list[str]:
    """Lower-cased alphabetic words: the judge's view of a text (punctuation and digits are ignored).

    A word still running at the very end is dropped: a 48-character response is usually cut mid-word, and a
    fair reader does not blame the writer for the ruler's cut.
    """
    found = WORD.findall(text.lower())
    if found and text[-1:].isalpha():
        found.pop()
    return found


@dataclass
class JudgeConfig(Presets):
    min_count: int = 2            # a word must occur this often in SST-2 to get a weight
    epochs: int = 3
    batch: int = 256
    lr: float = 0.05
    weight_decay: float = 1e-5    # a little L2 keeps rare words from getting extreme weights
    nonword_penalty: float = 1.0
    repeat_penalty: float = 0.5
    seed: int = 0

    PRESETS = {"smoke": dict(epochs=1), "lesson": dict(), "gpu": dict()}


class SentimentJudge:
    """Binary bag-of-words logistic regression + readability penalties. Frozen once fitted."""

    def __init__(self, vocab: Sequence[str], weights: torch.Tensor, bias: float, known_words: Iterable[str],
                 nonword_penalty: float = 1.0, repeat_penalty: float = 0.5):
        if len(vocab) != len(weights):
            raise ValueError(f"{len(vocab)} words but {len(weights)} weights: expected one weight per word")
        self.vocab = {w: i for i, w in enumerate(vocab)}
        self.weights = weights.detach().float().cpu()
        self.bias = float(bias)
        self.known_words = frozenset(known_words) | frozenset(vocab)
        self.nonword_penalty, self.repeat_penalty = nonword_penalty, repeat_penalty

    # -- fitting -----------------------------------------------------------------------------------
    @classmethod
    def fit(cls, labelled: Sequence[tuple[str, int]], reference_text: str,
            cfg: JudgeConfig | None = None) -> "SentimentJudge":
        """Train the sentiment part on (sentence, 0/1) pairs.

        Known words, for the gibberish penalty, are SST-2's vocabulary plus every word of `reference_text`
        (the Shakespeare corpus: the policy's language).
        """
        cfg = cfg or JudgeConfig()
        if not labelled:
            raise ValueError("no labelled sentences: expected (sentence, label) pairs, e.g. load_sst2('train')")
        counts = Counter(w for s, _ in labelled for w in set(words(s)))
        vocab = sorted(w for w, c in counts.items() if c >= cfg.min_count)
        index = {w: i for i, w in enumerate(vocab)}
        bags = [sorted({index[w] for w in words(s) if w in index}) for s, _ in labelled]
        flat = torch.tensor([i for b in bags for i in b], dtype=torch.long)
        lengths = torch.tensor([len(b) for b in bags])
        starts = lengths.cumsum(0) - lengths
        labels = torch.tensor([float(y) for _, y in labelled])

        gen = torch.Generator().manual_seed(cfg.seed)
        bag = nn.EmbeddingBag(len(vocab), 1, mode="sum")
        nn.init.zeros_(bag.weight)
        bias = nn.Parameter(torch.zeros(1))
        opt = torch.optim.Adam([bag.weight, bias], lr=cfg.lr, weight_decay=cfg.weight_decay)
        for _ in range(cfg.epochs):
            for chunk in torch.randperm(len(bags), generator=gen).split(cfg.batch):
                ids, offsets = _gather_bags(flat, starts[chunk], lengths[chunk])
                logits = bag(ids, offsets).squeeze(1) + bias
                loss = nn.functional.binary_cross_entropy_with_logits(logits, labels[chunk])
                opt.zero_grad()
                loss.backward()
                opt.step()
        known = set(words(reference_text))
        return cls(vocab, bag.weight.detach().squeeze(1), bias.item(), known, cfg.nonword_penalty,
                   cfg.repeat_penalty)

    # -- scoring -----------------------------------------------------------------------------------
    def sentiment(self, texts: Sequence[str]) -> torch.Tensor:
        """Log-odds that each text is positive, from its distinct known words."""
        return torch.tensor([self.bias + sum(float(self.weights[self.vocab[w]]) for w in set(words(t))
                                             if w in self.vocab) for t in texts])

    def nonwords(self, texts: Sequence[str]) -> torch.Tensor:
        return torch.tensor([float(sum(w not in self.known_words for w in words(t))) for t in texts])

    def repeats(self, texts: Sequence[str]) -> torch.Tensor:
        return torch.tensor([float(len(ws) - len(set(ws))) for ws in map(words, texts)])

    def score(self, texts: Sequence[str]) -> torch.Tensor:
        """The gold reward of each text (float32, shape (len(texts),))."""
        if isinstance(texts, str):
            raise ValueError("score() takes a list of texts, got a single string: wrap it in a list")
        return (self.sentiment(texts) - self.nonword_penalty * self.nonwords(texts)
                - self.repeat_penalty * self.repeats(texts))

    __call__ = score

    def explain(self, text: str) -> list[tuple[str, float]]:
        """(word, contribution) for every word of `text`, in order; their sum plus the bias is score([text])."""
        seen: set[str] = set()
        out = []
        for w in words(text):
            if w in seen:
                c = -self.repeat_penalty
            elif w not in self.known_words:
                c = -self.nonword_penalty
            else:
                c = float(self.weights[self.vocab[w]]) if w in self.vocab else 0.0
            seen.add(w)
            out.append((w, round(c, 3)))
        return out

    def top_words(self, k: int = 10) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """The k most positive and the k most negative words with their weights."""
        order = self.weights.argsort()
        itos = list(self.vocab)
        pos = [(itos[i], round(float(self.weights[i]), 3)) for i in order.flip(0)[:k].tolist()]
        neg = [(itos[i], round(float(self.weights[i]), 3)) for i in order[:k].tolist()]
        return pos, neg

    def accuracy(self, labelled: Sequence[tuple[str, int]]) -> float:
        """Sentiment accuracy on (sentence, 0/1) pairs (the penalties play no part here)."""
        pred = self.sentiment([s for s, _ in labelled]) > 0
        gold = torch.tensor([bool(y) for _, y in labelled])
        return (pred == gold).float().mean().item()


def _gather_bags(flat: torch.Tensor, starts: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """EmbeddingBag's input for some bags stored back to back in `flat`: their ids in one tensor + offsets."""
    offsets = lengths.cumsum(0) - lengths
    within = torch.arange(int(lengths.sum())) - offsets.repeat_interleave(lengths)
    return flat[starts.repeat_interleave(lengths) + within], offsets


class LanguageModelJudge:
    """A second judge: the log-likelihood (nats) of each whole text under a causal language model.

    `model(ids) -> logits` on (B, T) token ids (e.g. `course_lib.gpt.llama.Llama`); `tokenizer.encode(text,
    specials=False)` gives the ids and `tokenizer.bos_id` (if not None) is put in front, so that the first
    token is scored too. Texts are batched with right padding; a causal model never looks at padding after a
    position, and padded positions are masked out of the sum. A higher score means "more like the text the
    model was trained on": fluency, not quality, and language models are known to like repetition.
    """

    def __init__(self, model, tokenizer, batch: int = 32):
        if batch < 1:
            raise ValueError(f"batch={batch}: expected at least 1")
        self.model, self.tokenizer, self.batch = model, tokenizer, batch

    def encode(self, text: str) -> list[int]:
        bos = getattr(self.tokenizer, "bos_id", None)
        return ([bos] if bos is not None else []) + list(self.tokenizer.encode(text, specials=False))

    @torch.no_grad()
    def score(self, texts: Sequence[str]) -> torch.Tensor:
        """Total log-likelihood of each text in nats (float32, shape (len(texts),), on the CPU)."""
        if isinstance(texts, str):
            raise ValueError("score() takes a list of texts, got a single string: wrap it in a list")
        ids = [self.encode(t) for t in texts]
        if any(len(i) < 2 for i in ids):
            bad = next(k for k, i in enumerate(ids) if len(i) < 2)
            raise ValueError(f"texts[{bad}]={texts[bad]!r} gives fewer than 2 tokens (with the BOS): nothing to score")
        device = next(self.model.parameters()).device
        out = []
        for start in range(0, len(ids), self.batch):
            rows = ids[start:start + self.batch]
            width = max(map(len, rows))
            x = torch.zeros(len(rows), width, dtype=torch.long)
            mask = torch.zeros(len(rows), width - 1)
            for k, r in enumerate(rows):
                x[k, :len(r)] = torch.tensor(r)
                mask[k, :len(r) - 1] = 1
            x = x.to(device)
            logp = torch.log_softmax(self.model(x[:, :-1]).float(), -1).gather(-1, x[:, 1:, None]).squeeze(-1)
            out.append((logp.cpu() * mask).sum(1))
        return torch.cat(out) if out else torch.zeros(0)

    __call__ = score
