"""Byte-level BPE (byte-pair encoding), trained from scratch: GPT-2's tokenizer in miniature.

    tok = ByteBPE.train(text, vocab_size=512, specials=["<|endoftext|>"])
    ids = tok.encode("To be, or not to be")
    tok.decode(ids) == "To be, or not to be"       # for every UTF-8 string, not just the training text

Start from the 256 possible bytes (so nothing is ever unknown), then repeatedly glue the most frequent
adjacent pair into a new token. Text is first cut into chunks with GPT-2's regex (letters, digits,
punctuation, spaces), and merges never cross a chunk boundary, so " the" can become one token but "e t" never.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import regex

from ..core.checks import token_ids
from .tokenizers import read_json

# GPT-2's pre-tokenizer: contractions, optional-space + letters / digits / other, and runs of whitespace.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# The split patterns a saved tokenizer may name. A pattern read from a file is code (a crafted regex can drop
# text or take exponential time), so `from_json` accepts only these; a pattern of your own works in code.
KNOWN_PATTERNS = frozenset({GPT2_PATTERN})


def _merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every non-overlapping occurrence of `pair` in `ids`, left to right, by `new_id`."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


class ByteBPE:
    kind = "bytebpe"

    def __init__(self, merges: Sequence[tuple[int, int]], specials: Sequence[str] = (), pattern: str = GPT2_PATTERN):
        self.merges = [tuple(m) for m in merges]
        self.specials = list(specials)
        self.pattern = pattern
        self._split = regex.compile(pattern)
        self.ranks = {pair: i for i, pair in enumerate(self.merges)}   # earlier merge = applied first
        self.pieces: list[bytes] = [bytes([b]) for b in range(256)]
        for a, b in self.merges:
            if not (a < len(self.pieces) and b < len(self.pieces)):
                raise ValueError(f"merge {(a, b)} refers to a token that does not exist yet")
            self.pieces.append(self.pieces[a] + self.pieces[b])
        self.special_ids = {s: len(self.pieces) + i for i, s in enumerate(self.specials)}
        self.pieces += [s.encode("utf-8") for s in self.specials]
        # longest first, so a special that contains another is matched whole
        self._special_split = (regex.compile("(" + "|".join(regex.escape(s) for s in
                                                             sorted(self.specials, key=len, reverse=True)) + ")")
                               if self.specials else None)
        self._cache: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self.pieces)

    @property
    def vocab_size(self) -> int:
        return len(self.pieces)

    # -- training ----------------------------------------------------------------------------------
    @classmethod
    def train(cls, text: str, vocab_size: int, specials: Sequence[str] = (), pattern: str = GPT2_PATTERN) -> "ByteBPE":
        """Learn `vocab_size - 256 - len(specials)` merges from `text` (fewer if every chunk is already one token).

        Pair counts are updated incrementally: a merge only touches the chunks that contain the pair, which is
        what makes training on tinyshakespeare take seconds.
        """
        n_merges = vocab_size - 256 - len(specials)
        if n_merges < 0:
            raise ValueError(f"vocab_size={vocab_size} is too small: 256 bytes + {len(specials)} specials "
                             f"need at least {256 + len(specials)}")
        chunk_counts = Counter(regex.findall(pattern, text))
        words = [list(w.encode("utf-8")) for w in chunk_counts]
        freqs = list(chunk_counts.values())
        pair_counts: Counter[tuple[int, int]] = Counter()
        where: defaultdict[tuple[int, int], set[int]] = defaultdict(set)
        for w, (ids, f) in enumerate(zip(words, freqs)):
            for pair in zip(ids, ids[1:]):
                pair_counts[pair] += f
                where[pair].add(w)
        merges: list[tuple[int, int]] = []
        for new_id in range(256, 256 + n_merges):
            if not pair_counts:
                break
            # most frequent pair; ties go to the smallest pair so training is deterministic
            best = max(pair_counts, key=lambda p: (pair_counts[p], -p[0], -p[1]))
            merges.append(best)
            touched: set[tuple[int, int]] = set()
            for w in where.pop(best):
                ids, f = words[w], freqs[w]
                for pair in zip(ids, ids[1:]):
                    pair_counts[pair] -= f
                    touched.add(pair)
                ids = words[w] = _merge(ids, best, new_id)
                for pair in zip(ids, ids[1:]):
                    pair_counts[pair] += f
                    where[pair].add(w)
            for pair in touched:   # pairs that no chunk contains any more
                if pair_counts[pair] <= 0:
                    del pair_counts[pair]
                    where.pop(pair, None)
        return cls(merges, specials, pattern)

    # -- encode / decode ---------------------------------------------------------------------------
    def _encode_chunk(self, chunk: str) -> list[int]:
        cached = self._cache.get(chunk)
        if cached is not None:
            return cached
        ids = list(chunk.encode("utf-8"))
        while len(ids) > 1:
            # apply the earliest-learned merge present, exactly the order training discovered them in
            pair = min(zip(ids, ids[1:]), key=lambda p: self.ranks.get(p, len(self.ranks)))
            if pair not in self.ranks:
                break
            ids = _merge(ids, pair, 256 + self.ranks[pair])
        if len(self._cache) < 100_000:
            self._cache[chunk] = ids
        return ids

    def _encode_ordinary(self, text: str) -> list[int]:
        return [i for chunk in self._split.findall(text) for i in self._encode_chunk(chunk)]

    def encode(self, text: str, specials: bool = True) -> list[int]:
        """Token ids of `text`. With `specials`, occurrences of a special token's string become its id;
        without, they are encoded as ordinary text."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected a str, got {type(text).__name__}")
        if not specials or self._special_split is None:
            return self._encode_ordinary(text)
        ids: list[int] = []
        for part in self._special_split.split(text):
            if part in self.special_ids:
                ids.append(self.special_ids[part])
            elif part:
                ids += self._encode_ordinary(part)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`. A cut through a multi-byte character (possible when sampling) shows as U+FFFD."""
        data = b"".join(self.pieces[i] for i in token_ids("ids", ids, len(self.pieces)))
        return data.decode("utf-8", errors="replace")

    def piece(self, i: int) -> str:
        """A readable form of one token (bytes that are not whole UTF-8 characters are shown escaped)."""
        raw = self.pieces[i]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return str(raw)[2:-1]

    # -- persistence -------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"kind": self.kind, "merges": [list(m) for m in self.merges], "specials": self.specials,
                "pattern": self.pattern}

    @classmethod
    def from_json(cls, data: dict) -> "ByteBPE":
        """A tokenizer from saved data (a file, a checkpoint's metadata): untrusted, so checked. The split
        pattern must be one the course defines (KNOWN_PATTERNS): a saved regex is never compiled as is."""
        if not isinstance(data, dict) or data.get("kind") != cls.kind:
            raise ValueError(f"expected a {cls.kind!r} tokenizer, got "
                             f"{data.get('kind') if isinstance(data, dict) else type(data).__name__!r}")
        pattern = data.get("pattern", GPT2_PATTERN)
        if pattern not in KNOWN_PATTERNS:
            raise ValueError(f"pattern={str(pattern)[:200]!r}: not a split pattern the course defines "
                             "(expected GPT2_PATTERN); refusing to compile a regex taken from a file")
        merges, specials = data.get("merges"), data.get("specials", [])
        if not (isinstance(merges, list) and all(isinstance(m, list) and len(m) == 2
                                                 and all(type(i) is int and i >= 0 for i in m) for m in merges)):
            raise ValueError("merges: expected a list of [id, id] pairs of non-negative integers")
        if not (isinstance(specials, list) and all(isinstance(s, str) and s for s in specials)):
            raise ValueError("specials: expected a list of non-empty strings")
        return cls([tuple(m) for m in merges], specials, pattern)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "ByteBPE":
        data = read_json(path, "a ByteBPE tokenizer")
        try:
            return cls.from_json(data)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
