"""WordPiece: BERT's tokenizer, reading a BERT `vocab.txt` (one token per line, the line number is the id).

Two stages, exactly as the original BERT (and Hugging Face's `BertWordPieceTokenizer`) does them:

1. Basic split: clean control characters, put spaces around CJK ideographs, strip accents, lower-case, split
   on whitespace, and cut every punctuation character out as a word of its own.
2. WordPiece: each word becomes the longest vocabulary entry that starts it, then the longest entry (written
   with a `##` prefix, "continues a word") that starts the rest, and so on. A word that cannot be covered
   this way becomes a single `[UNK]`.

    tok = WordPiece.from_file(vocab_path)
    tok.tokenize("Unaffable!")          # ['una', '##ffa', '##ble', '!']
    tok.encode("a charming journey")    # [CLS] a charming journey [SEP] as ids
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from ..core.checks import token_ids
from .tokenizers import pad_batch

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
BERT_SPECIALS = (PAD, UNK, CLS, SEP, MASK)

# CJK ideograph blocks: BERT treats each ideograph as a word, because Chinese has no spaces.
_CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
        (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


# ASCII text (most English) takes a fast path: one translate() for the cleaning, one regex for the split.
_ASCII_CLEAN = {c: None for c in [*range(32), 127] if chr(c) not in "\t\n\r"} | {ord(c): " " for c in "\t\n\r"}
_ASCII_PUNCT = r"!-/:-@\[-`{-~"
_ASCII_WORDS = re.compile(rf"[{_ASCII_PUNCT}]|[^{_ASCII_PUNCT}\s]+")


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _CJK)


def _is_whitespace(ch: str) -> bool:
    return ch in "\t\n\r " or unicodedata.category(ch) in ("Zs", "Zl", "Zp")


def _is_control(ch: str) -> bool:
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    # All non-letter/number ASCII symbols count ("$", "+", "^" are not Unicode punctuation), then Unicode P*.
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


class WordPiece:
    """A BERT WordPiece tokenizer over a fixed vocabulary (the specials must be in it)."""

    def __init__(self, vocab: Sequence[str], lowercase: bool = True, max_chars_per_word: int = 100):
        self.itos = list(vocab)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocab has duplicate tokens: every line of vocab.txt must be unique")
        missing = [s for s in BERT_SPECIALS if s not in self.stoi]
        if missing:
            raise ValueError(f"vocab lacks the special tokens {missing}: a BERT vocab needs {list(BERT_SPECIALS)}")
        self.lowercase = lowercase
        self.max_chars_per_word = max_chars_per_word
        self.special_ids = frozenset(self.stoi[s] for s in BERT_SPECIALS)
        self._cache: dict[str, list[int]] = {}  # word -> ids; text repeats words, so this is most of the speed

    # -- vocabulary files --------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path, lowercase: bool = True) -> "WordPiece":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no vocab file at {path}: expected a BERT vocab.txt, one token per line")
        return cls(path.read_text(encoding="utf-8").splitlines(), lowercase=lowercase)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(self.itos) + "\n", encoding="utf-8")
        return path

    def __len__(self) -> int:
        return len(self.itos)

    def id(self, token: str) -> int:
        return self.stoi.get(token, self.unk_id)

    pad_id = property(lambda self: self.stoi[PAD])
    unk_id = property(lambda self: self.stoi[UNK])
    cls_id = property(lambda self: self.stoi[CLS])
    sep_id = property(lambda self: self.stoi[SEP])
    mask_id = property(lambda self: self.stoi[MASK])

    # -- stage 1: the basic split ------------------------------------------------------------------
    def normalize(self, text: str) -> str:
        if text.isascii():
            text = text.translate(_ASCII_CLEAN)
            return text.lower() if self.lowercase else text
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or _is_control(ch):
                continue
            if _is_whitespace(ch):
                out.append(" ")
            elif _is_cjk(cp):
                out.append(f" {ch} ")
            else:
                out.append(ch)
        text = "".join(out)
        if self.lowercase:  # uncased BERT also strips accents: "café" and "cafe" are one word
            text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
            text = text.lower()
        return text

    def pre_tokenize(self, text: str) -> list[str]:
        """Words: split on whitespace, and every punctuation character on its own."""
        text = self.normalize(text)
        if text.isascii():
            return _ASCII_WORDS.findall(text)
        words = []
        for chunk in text.split():
            start = 0
            for i, ch in enumerate(chunk):
                if _is_punctuation(ch):
                    if i > start:
                        words.append(chunk[start:i])
                    words.append(ch)
                    start = i + 1
            if start < len(chunk):
                words.append(chunk[start:])
        return words

    # -- stage 2: greedy longest-match-first -------------------------------------------------------
    def word_ids(self, word: str) -> list[int]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        ids = [self.unk_id]
        if len(word) <= self.max_chars_per_word:
            pieces, start = [], 0
            while start < len(word):
                end = len(word)
                while end > start:  # try the longest piece first, then shorten it one character at a time
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    if piece in self.stoi:
                        pieces.append(self.stoi[piece])
                        break
                    end -= 1
                if end == start:  # nothing in the vocabulary starts here: the whole word is unknown
                    break
                start = end
            else:
                ids = pieces
        self._cache[word] = ids
        return ids

    def tokenize(self, text: str) -> list[str]:
        return [self.itos[i] for i in self.ids(text)]

    def ids(self, text: str) -> list[int]:
        """WordPiece ids of `text`, no specials added."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected a str, got {type(text).__name__}")
        return [i for word in self.pre_tokenize(text) for i in self.word_ids(word)]

    def encode(self, text: str, pair: str | None = None, max_len: int | None = None) -> list[int]:
        """`[CLS] text [SEP]` (or `[CLS] a [SEP] b [SEP]`), the longer side cut first to fit `max_len`."""
        if pair is not None and not isinstance(pair, str):
            raise TypeError(f"pair: expected a str or None, got {type(pair).__name__}")
        a = self.ids(text)
        b = self.ids(pair) if pair is not None else []
        if max_len is not None:
            budget = max_len - (3 if pair is not None else 2)
            if budget < 0:
                raise ValueError(f"max_len={max_len} leaves no room for the special tokens")
            while len(a) + len(b) > budget:
                (a if len(a) >= len(b) else b).pop()
        ids = [self.cls_id] + a + [self.sep_id]
        return ids + b + [self.sep_id] if pair is not None else ids

    def segments(self, ids: Sequence[int]) -> list[int]:
        """Segment (token type) ids: 0 up to and including the first [SEP], 1 after it."""
        out, seg = [], 0
        for i in ids:
            out.append(seg)
            if i == self.sep_id:
                seg = 1
        return out

    def decode(self, ids: Iterable[int], skip_specials: bool = True) -> str:
        """Ids back to text: `##` pieces glued to the piece before them (casing and accents are gone)."""
        words: list[str] = []
        for i in token_ids("ids", ids, len(self.itos)):
            if skip_specials and i in self.special_ids and i != self.unk_id:
                continue
            tok = self.itos[i]
            if tok.startswith("##") and words:
                words[-1] += tok[2:]
            else:
                words.append(tok)
        return " ".join(words)

    def batch(self, texts: Sequence[str], max_len: int, device: torch.device | str = "cpu"):
        """Encode and right-pad to the longest text (at most `max_len`): ids (B, T) and attention mask (B, T)."""
        rows = [self.encode(t, max_len=max_len) for t in texts]
        return pad_batch(rows, self.pad_id, device)

    # -- a smaller vocabulary for a small model ----------------------------------------------------
    def trimmed(self, texts: Iterable[str], size: int) -> "WordPiece":
        """A vocabulary of at most `size` tokens that keeps the specials, every character seen in `texts` (so a word
        splits into smaller pieces rather than becoming [UNK]) and then the most frequent tokens in `texts`.

        A small model cannot afford BERT's 30,522-row embedding table; most of those rows never occur here.
        """
        words = Counter(w for t in texts for w in self.pre_tokenize(t))
        counts: Counter[int] = Counter()
        for w, n in words.items():
            for i in self.word_ids(w):
                counts[i] += n
        chars = sorted({c for w in words for c in w})
        singles = [t for c in chars for t in (c, "##" + c) if t in self.stoi and t not in BERT_SPECIALS]
        keep = list(BERT_SPECIALS) + singles
        if size < len(keep):
            raise ValueError(f"size={size} is too small: the specials and single characters alone are {len(keep)}")
        chosen = set(keep)
        for i, _ in counts.most_common():
            if len(keep) >= size:
                break
            if self.itos[i] not in chosen:
                keep.append(self.itos[i])
                chosen.add(self.itos[i])
        return WordPiece(keep, lowercase=self.lowercase, max_chars_per_word=self.max_chars_per_word)
