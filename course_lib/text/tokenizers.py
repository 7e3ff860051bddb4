"""Tokenizers: text <-> integer ids.

`CharTokenizer` maps each character to an id, `WordVocab` each word (with a min-frequency cut). Both carry
the special tokens `<pad> <unk> <bos> <eos>` when asked for, and save to / load from JSON.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from ..core.checks import token_ids

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)


class Vocab:
    """An ordered symbol table. Ids of the specials (if any) come first."""

    kind = "vocab"

    def __init__(self, symbols: Sequence[str], specials: Sequence[str] = ()):
        self.specials = tuple(specials)
        self.itos: list[str] = list(self.specials) + [s for s in symbols if s not in self.specials]
        if len(set(self.itos)) != len(self.itos):
            raise ValueError("vocabulary symbols must be unique")
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, symbol: str) -> bool:
        return symbol in self.stoi

    def id(self, symbol: str) -> int:
        if symbol in self.stoi:
            return self.stoi[symbol]
        if UNK in self.stoi:
            return self.stoi[UNK]
        raise ValueError(f"symbol {symbol!r} is not in the {self.kind} vocabulary ({len(self)} symbols) "
                         f"and it has no {UNK} token to stand in for it")

    def special_id(self, symbol: str, wanted_by: str = "") -> int:
        """The id of a special token; a clear ValueError (not a KeyError) when this vocabulary has none."""
        if symbol not in self.stoi:
            why = f"{wanted_by} needs" if wanted_by else "asked for"
            raise ValueError(f"{why} the special token {symbol}, but this {self.kind} vocabulary has no specials "
                             f"of that kind (specials={list(self.specials)}): build it with specials=SPECIALS")
        return self.stoi[symbol]

    @property
    def pad_id(self) -> int:
        return self.special_id(PAD)

    @property
    def unk_id(self) -> int:
        return self.special_id(UNK)

    @property
    def bos_id(self) -> int:
        return self.special_id(BOS)

    @property
    def eos_id(self) -> int:
        return self.special_id(EOS)

    def encode_symbols(self, symbols: Iterable[str], bos: bool = False, eos: bool = False) -> list[int]:
        start = [self.special_id(BOS, "bos=True")] if bos else []
        end = [self.special_id(EOS, "eos=True")] if eos else []
        return start + [self.id(s) for s in symbols] + end

    def decode_ids(self, ids: Iterable[int], skip_specials: bool = True) -> list[str]:
        out = []
        for i in token_ids("ids", ids, len(self.itos)):
            s = self.itos[i]
            if skip_specials and s in self.specials and s != UNK:  # an <unk> stays visible: it is content
                continue
            out.append(s)
        return out

    # -- persistence -------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"kind": self.kind, "itos": self.itos, "specials": list(self.specials)}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path):
        data = read_json(path, f"a {cls.kind!r} vocabulary")
        if data.get("kind") != cls.kind:
            raise ValueError(f"{path} holds a {data.get('kind')!r} vocabulary, expected {cls.kind!r}")
        specials, itos = data.get("specials"), data.get("itos")
        if not (isinstance(specials, list) and isinstance(itos, list)
                and all(isinstance(s, str) for s in specials + itos)):
            raise ValueError(f"{path}: 'itos' and 'specials' must be lists of strings: not a course vocabulary file")
        return cls(itos[len(specials):], specials=specials)


def read_json(path: str | Path, what: str) -> dict:
    """The JSON object in `path`; a missing, corrupt or non-object file is a ValueError that names the path."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file (expected {what})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}): truncated or not {what}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a JSON {type(data).__name__}, not an object: not {what}")
    return data


class CharTokenizer(Vocab):
    """One id per character. `CharTokenizer.fit(text)` keeps every character seen, sorted."""

    kind = "char"

    @classmethod
    def fit(cls, text: str, specials: Sequence[str] = ()) -> "CharTokenizer":
        return cls(sorted(set(text)), specials=specials)

    def encode(self, text: str, bos: bool = False, eos: bool = False) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"text: expected a str, got {type(text).__name__}")
        return self.encode_symbols(text, bos=bos, eos=eos)

    def decode(self, ids: Iterable[int], skip_specials: bool = True) -> str:
        return "".join(self.decode_ids(ids, skip_specials))


class WordVocab(Vocab):
    """One id per word of already-tokenized text; words rarer than `min_freq` become `<unk>`."""

    kind = "word"

    @classmethod
    def fit(cls, sentences: Iterable[Sequence[str]], min_freq: int = 1,
            specials: Sequence[str] = SPECIALS) -> "WordVocab":
        if min_freq > 1 and UNK not in specials:
            raise ValueError(f"a min_freq cut needs {UNK} among the specials to stand in for rare words")
        counts = Counter(w for s in sentences for w in s)
        # most frequent first (ties alphabetical) so ids are stable across runs
        words = [w for w, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_freq]
        return cls(words, specials=specials)

    def encode(self, words: Sequence[str], bos: bool = False, eos: bool = False) -> list[int]:
        """Ids of a list of words (already tokenized). A plain string is refused: it would be read as a list
        of one-character words."""
        if isinstance(words, str) or not isinstance(words, Sequence):
            raise TypeError(f"words: expected a list of words (already tokenized), got {type(words).__name__}"
                            + (f"; split it first, e.g. {words!r}.split()" if isinstance(words, str) else ""))
        bad = next((w for w in words if not isinstance(w, str)), None)
        if bad is not None:
            raise TypeError(f"words: expected strings, got {bad!r} ({type(bad).__name__})")
        return self.encode_symbols(words, bos=bos, eos=eos)

    def decode(self, ids: Iterable[int], skip_specials: bool = True) -> list[str]:
        return self.decode_ids(ids, skip_specials)

    def unk_rate(self, sentences: Iterable[Sequence[str]]) -> float:
        """Fraction of words that would be encoded as `<unk>`."""
        total = unk = 0
        for s in sentences:
            for w in s:
                total += 1
                unk += w not in self.stoi
        return unk / max(total, 1)


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int, device: torch.device | str = "cpu"):
    """Right-pad id lists into ids (B, longest) and a mask (B, longest) that is 1 on real tokens, 0 on padding
    (the `attention_mask` convention of BERT and Hugging Face). `mask.sum(1)` gives the true lengths."""
    if not rows:
        raise ValueError("pad_batch needs at least one row")
    tensors = [torch.as_tensor(list(r)) for r in rows]
    for t in tensors:
        if t.numel() and (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool):
            raise TypeError(f"pad_batch takes lists of integer token ids, got a row of {t.dtype}")
    width = max(len(t) for t in tensors)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for k, t in enumerate(tensors):
        ids[k, :len(t)] = t
        mask[k, :len(t)] = 1
    return ids.to(device), mask.to(device)


