"""The eng-fra translation data that lessons 03, 04 and 05 share: one pipeline, one split, one BLEU.

    data = TranslationData.build(TranslationConfig.preset(profile))
    get_batch = data.batches_by_step(seed)               # for Trainer: batch = f(step), bucketed by length
    report = data.evaluate(model, data.test, device)     # greedy (or beam) translations + BLEU per length

* Text: lower-cased, accents kept, the narrow / no-break / thin spaces French puts before `? ! :` become
  plain spaces, punctuation is split off, French elisions (`j'ai` -> `j' ai`) and English clitics
  (`don't` -> `do n't`) are split so the vocabulary stays small.
* Split: pairs that share a sentence (one English sentence with several French versions, or the reverse)
  form a group, and each group goes to train / val / test by a hash of (split seed, group). Nothing else
  matters (not the profile, the length cap or the process), so every lesson sees the same test sentences
  and no test sentence has a twin in training.
* Every source sentence ends with `<eos>`, so even an empty sentence is a valid, one-token input.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..core import data as datasets
from ..core import paths
from .decoding import beam_search, greedy
from ..core.metrics import bleu_by_bucket, corpus_bleu
from ..core.presets import Presets
from ..text.tokenizers import WordVocab

Pair = tuple[list[str], list[str]]          # (source tokens, target tokens)

# narrow no-break, no-break and thin spaces -> space; zero-width space and soft hyphen -> nothing
_CHARS = str.maketrans({"\u202f": " ", "\u00a0": " ", "\u2009": " ", "\u200b": "", "\u00ad": "",
                        "’": "'", "‘": "'", "–": "-", "—": "-"})
_PUNCT = re.compile(r'([.!?,;:"«»()%$€&+/…‽]|(?<!\w)-|-(?!\w))')      # a hyphen inside a word stays
_EN_CLITIC = re.compile(r"(\w)(n't|'(?:s|m|re|ve|ll|d))\b")
_FR_ELISION = re.compile(r"(\w')(?=\w)")


def normalize(text: str, lang: str) -> list[str]:
    """One sentence -> lower-case tokens. `lang` is "en" or "fr" (only the apostrophe rule differs)."""
    if lang not in ("en", "fr"):
        raise ValueError(f"lang={lang!r}: expected 'en' or 'fr'")
    text = _PUNCT.sub(r" \1 ", unicodedata.normalize("NFC", text).lower().translate(_CHARS))
    text = _EN_CLITIC.sub(r"\1 \2", text) if lang == "en" else _FR_ELISION.sub(r"\1 ", text)
    return text.split()


def groups(pairs: list[tuple[str, str]]) -> list[str]:
    """For each (english, french) pair, a name for its group: the pairs linked by sharing a sentence on
    either side (union-find). The name is the group's alphabetically first English sentence."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = key = parent[parent[key]]     # path halving keeps the trees flat
        return key

    for en, fr in pairs:
        a, b = root("en\t" + en), root("fr\t" + fr)
        parent[max(a, b)] = min(a, b)                   # the smaller key stays the root: names are stable
    return [root("en\t" + en)[3:] for en, _ in pairs]


def split_of(group: str, seed: int, val_fraction: float, test_fraction: float) -> str:
    """'train', 'val' or 'test' for a group, from a hash: the same in every process and on every machine."""
    digest = hashlib.sha256(f"{seed}\t{group}".encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"


def load_pairs() -> list[tuple[str, str]]:
    """Every eng-fra line as normalised (english, french) strings, tokens separated by single spaces."""
    out = []
    for line in datasets.read_text("eng-fra").splitlines():
        en, fr = line.split("\t")[:2]
        out.append((" ".join(normalize(en, "en")), " ".join(normalize(fr, "fr"))))
    return out


@dataclass
class TranslationConfig(Presets):
    source: str = "fr"             # "fr": French -> English (the default); "en": English -> French
    max_len: int = 20              # pairs longer than this (tokens, either side) are left out
    min_freq: int = 5              # words seen fewer times in the training pairs become <unk>
    val_fraction: float = 0.02
    test_fraction: float = 0.05
    split_seed: int = 0            # the split is a pure function of this seed and the sentences
    train_pairs: int = 0           # 0: all training pairs; else a seeded subset of that many (time budget)
    val_pairs: int = 500           # validation pairs used for the loss curve (0: all)
    test_pairs: int = 0            # 0: the whole test split; else a seeded subset
    batch_size: int = 64
    buckets: tuple[int, ...] = (5, 8, 11, 14, 20)   # upper edges of the source-length buckets for BLEU
    beam: int = 5                  # beam width when a lesson compares beam search with greedy decoding
    beam_pairs: int = 1000         # how many test pairs that (slower) comparison translates (0: all)

    PRESETS = {
        "smoke": dict(train_pairs=4000, val_pairs=64, test_pairs=200, min_freq=2, batch_size=32, beam_pairs=50),
        "lesson": dict(),
        "gpu": dict(batch_size=128, beam_pairs=0),
    }

    def __post_init__(self):
        if self.source not in ("fr", "en"):
            raise ValueError(f"source={self.source!r}: expected 'fr' or 'en'")
        if self.max_len < 1 or not 0 <= self.val_fraction + self.test_fraction < 1:
            raise ValueError("need max_len >= 1 and val_fraction + test_fraction in [0, 1)")
        self.buckets = tuple(self.buckets)
        if list(self.buckets) != sorted(set(self.buckets)) or self.buckets[-1] < self.max_len:
            raise ValueError(f"buckets={self.buckets} must increase and end at >= max_len={self.max_len}")


def make_splits(cfg: TranslationConfig) -> dict[str, list[Pair]]:
    """{"train", "val", "test"}: (source tokens, target tokens) pairs within the length cap, in file order."""
    splits: dict[str, list[Pair]] = {"train": [], "val": [], "test": []}
    pairs = load_pairs()
    names = groups(pairs)
    split = {g: split_of(g, cfg.split_seed, cfg.val_fraction, cfg.test_fraction) for g in set(names)}
    for (en, fr), group in zip(pairs, names):
        src, tgt = (fr.split(), en.split()) if cfg.source == "fr" else (en.split(), fr.split())
        if len(src) <= cfg.max_len and len(tgt) <= cfg.max_len:
            splits[split[group]].append((src, tgt))
    rng = random.Random(cfg.split_seed)
    for name, n in (("train", cfg.train_pairs), ("val", cfg.val_pairs), ("test", cfg.test_pairs)):
        if n and n < len(splits[name]):
            keep = sorted(rng.sample(range(len(splits[name])), n))
            splits[name] = [splits[name][i] for i in keep]
    return splits


def _cache_path(cfg: TranslationConfig) -> Path:
    fields = ("source", "max_len", "val_fraction", "test_fraction", "split_seed", "train_pairs", "val_pairs",
              "test_pairs")
    key = json.dumps({f: getattr(cfg, f) for f in fields}, sort_keys=True)
    key += hashlib.sha256(Path(__file__).read_bytes()).hexdigest() + datasets.REGISTRY["eng-fra"].files[0].sha256
    return paths.build_dir() / "cache" / f"eng-fra-split-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def collate(sources: list[list[int]], targets: list[list[int]], pad_id: int, bos_id: int, eos_id: int
            ) -> dict[str, torch.Tensor]:
    """Pad a batch. src (B, S) + src_mask (True at real tokens); tgt_in = <bos> y, tgt_out = y <eos>."""
    if not sources or len(sources) != len(targets):
        raise ValueError(f"need a non-empty batch with one target per source, got {len(sources)} and {len(targets)}")
    if any(len(s) == 0 for s in sources):
        raise ValueError("a source sequence is empty; every source needs at least one token (e.g. <eos>)")
    S, T = max(map(len, sources)), max(map(len, targets)) + 1
    src = torch.full((len(sources), S), pad_id, dtype=torch.long)
    tgt_in = torch.full((len(sources), T), pad_id, dtype=torch.long)
    tgt_out = torch.full((len(sources), T), pad_id, dtype=torch.long)
    for i, (s, t) in enumerate(zip(sources, targets)):
        src[i, :len(s)] = torch.tensor(s)
        tgt_in[i, :len(t) + 1] = torch.tensor([bos_id] + t)
        tgt_out[i, :len(t) + 1] = torch.tensor(t + [eos_id])
    return {"src": src, "src_mask": src != pad_id, "tgt_in": tgt_in, "tgt_out": tgt_out}


@dataclass
class TranslationReport:
    """Translations of a set of pairs, and their BLEU overall and per source-length bucket."""
    sources: list[list[str]]
    references: list[list[str]]
    hypotheses: list[list[str]]
    bleu: float
    by_bucket: list[dict] = field(default_factory=list)   # {"bucket": "1-5", "n": ..., "bleu": ...}

    def bucket_bleu(self) -> dict[str, float]:
        return {b["bucket"]: b["bleu"] for b in self.by_bucket}


class TranslationData:
    """Tokenised train / val / test pairs, the two vocabularies, and batching."""

    def __init__(self, cfg: TranslationConfig, train: list[Pair], val: list[Pair], test: list[Pair]):
        if not train:
            raise ValueError("no training pairs: the vocabularies and batches are built from them")
        self.cfg, self.train, self.val, self.test = cfg, train, val, test
        self.src_vocab = WordVocab.fit((s for s, _ in train), min_freq=cfg.min_freq)
        self.tgt_vocab = WordVocab.fit((t for _, t in train), min_freq=cfg.min_freq)
        # shuffle, then sort by length (stable): batches of similar length (little padding), mixed content
        order = list(range(len(train)))
        random.Random(cfg.split_seed).shuffle(order)
        order.sort(key=lambda i: (len(train[i][0]), len(train[i][1])))
        size = cfg.batch_size
        self._chunks = [order[i:i + size] for i in range(0, len(order), size)]

    @classmethod
    def build(cls, cfg: TranslationConfig, cache: bool = True) -> "TranslationData":
        """Normalise, group, split and subset the pairs (a few seconds), or read the result from
        build/cache/, where it is stored under a key made of the config, this file's code and the data's
        checksum, so an edit to any of them makes a fresh split."""
        path = _cache_path(cfg)
        if cache and path.exists():
            splits = json.loads(path.read_text(encoding="utf-8"))
        else:
            splits = make_splits(cfg)
            if cache:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(path.name + f".tmp{os.getpid()}")
                tmp.write_text(json.dumps(splits, ensure_ascii=False), encoding="utf-8")
                os.replace(tmp, path)        # a reader never sees half a file
        train, val, test = ([(s, t) for s, t in splits[name]] for name in ("train", "val", "test"))
        return cls(cfg, train, val, test)

    # -- ids ---------------------------------------------------------------------------------------
    def encode_source(self, tokens: list[str]) -> list[int]:
        return self.src_vocab.encode(tokens, eos=True)

    def encode_pair(self, pair: Pair) -> tuple[list[int], list[int]]:
        return self.encode_source(pair[0]), self.tgt_vocab.encode(pair[1])

    def collate(self, pairs: list[Pair]) -> dict[str, torch.Tensor]:
        ids = [self.encode_pair(p) for p in pairs]
        v = self.tgt_vocab
        return collate([s for s, _ in ids], [t for _, t in ids], v.pad_id, v.bos_id, v.eos_id)

    def fingerprint(self) -> str:
        """A short hash of the test sentences: equal fingerprints mean two lessons scored the same test set."""
        text = "\n".join(" ".join(s) + "\t" + " ".join(t) for s, t in self.test)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

    def describe(self) -> dict:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test),
                "src_vocab": len(self.src_vocab), "tgt_vocab": len(self.tgt_vocab),
                "src_unk_rate_test": self.src_vocab.unk_rate(s for s, _ in self.test),
                "tgt_unk_rate_test": self.tgt_vocab.unk_rate(t for _, t in self.test),
                "fingerprint": self.fingerprint()}

    # -- batches -----------------------------------------------------------------------------------
    @property
    def batches_per_epoch(self) -> int:
        return len(self._chunks)

    def batches_by_step(self, seed: int = 0):
        """A `get_batch(step)` for Trainer: each epoch visits every length-bucketed batch once, in an order
        that depends only on (seed, epoch), so a resumed run sees the same batches."""
        def get_batch(step: int) -> dict[str, torch.Tensor]:
            epoch, index = divmod(step, len(self._chunks))
            order = list(range(len(self._chunks)))
            random.Random(seed * 1_000_003 + epoch).shuffle(order)
            return self.collate([self.train[i] for i in self._chunks[order[index]]])
        return get_batch

    def sorted_batches(self, pairs: list[Pair], batch_size: int):
        """(indices, batch) over `pairs` in order of source length, for evaluation."""
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]))
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            yield idx, self.collate([pairs[j] for j in idx])

    # -- translation and BLEU ----------------------------------------------------------------------
    @torch.no_grad()
    def translate(self, model, sentences: list[list[str]], device: torch.device | str = "cpu",
                  beam: int = 1, alpha: float = 1.0, max_len: int | None = None,
                  batch_size: int = 256) -> list[list[str]]:
        """Tokenised source sentences -> tokenised translations (greedy when beam == 1)."""
        was_training = model.training
        model.eval()
        max_len = max_len or self.cfg.max_len + 5
        v = self.tgt_vocab
        out: list[list[str]] = [[] for _ in sentences]
        pairs = [(s, []) for s in sentences]
        for idx, batch in self.sorted_batches(pairs, batch_size):
            src, mask = batch["src"].to(device), batch["src_mask"].to(device)
            if beam == 1:
                ids = greedy(model, src, mask, v.bos_id, v.eos_id, max_len)
            else:
                ids = beam_search(model, src, mask, v.bos_id, v.eos_id, max_len, beam=beam, alpha=alpha)
            for i, row in zip(idx, ids):
                out[i] = v.decode(row, skip_specials=False)   # an <unk> the model wrote stays visible
        model.train(was_training)
        return out

    def evaluate(self, model, pairs: list[Pair], device: torch.device | str = "cpu", beam: int = 1,
                 alpha: float = 1.0) -> TranslationReport:
        """Translate `pairs`' sources and score them with sacrebleu, overall and per source length."""
        sources = [s for s, _ in pairs]
        references = [t for _, t in pairs]
        hypotheses = self.translate(model, sources, device, beam=beam, alpha=alpha)
        buckets = bleu_by_bucket(hypotheses, references, [len(s) for s in sources], self.cfg.buckets)
        return TranslationReport(sources, references, hypotheses, corpus_bleu(hypotheses, references), buckets)
