"""The tokenizer of a GGUF file: GPT-2-style byte-level BPE rebuilt from the vocabulary and merge list in its
metadata, plus the file's own chat template (a Jinja template), rendered the way transformers renders it.

    tok = GGUFTokenizer.from_metadata(course_lib.gpt.gguf_model.metadata(reader))
    ids = tok.apply_chat_template([{"role": "user", "content": "Hi!"}])     # ready for the model
    tok.decode(ids)

Byte-level: text is UTF-8 bytes, and each byte is spelled as one printable character (GPT-2's trick, so the
vocabulary can be stored as strings: " the" is stored as "Ġthe"). Encoding cuts the text into chunks with a
regular expression, then repeatedly merges the adjacent pair whose merge rule comes earliest in the list.
Control tokens such as `<|im_start|>` are matched whole in the text first.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

# GPT-2's pre-tokenizer (lesson 06's, defined once in .bpe); merges never cross its chunks. It is what transformers
# builds for this file (tokenizer.ggml.pre = "smollm"). SmolLM2's own tokenizer also cuts digits one by one; no
# merge rule in its vocabulary involves a digit, so every number ends up one token per digit either way.
from .bpe import GPT2_PATTERN


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable spelling of the 256 bytes: printable ones stand for themselves, the others (space,
    control bytes, ...) are shifted to code points from 256 up; so " the" is spelled "Ġthe"."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


CHAT_TEMPLATE_BUDGET = 1_000_000   # loop iterations over range() plus output pieces a chat template may take


class GGUFTokenizer:
    """Byte-level BPE over a vocabulary of byte-spelled strings (GPT-2 style), plus control tokens
    (`<|im_start|>`, ...) that are matched whole in the text, and the chat template."""

    def __init__(self, tokens: list[str], merges: list[str], special: list[str], chat_template: str | None = None,
                 bos_id: int | None = None, eos_id: int | None = None):
        import regex

        self.tokens = list(tokens)
        self.vocab = {t: i for i, t in enumerate(self.tokens)}
        self.ranks = {tuple(m.split(" ")): r for r, m in enumerate(merges)}
        self.special = {s: self.vocab[s] for s in special}
        self.chat_template, self.bos_id, self.eos_id = chat_template, bos_id, eos_id
        self._split = regex.compile(GPT2_PATTERN)
        self._special_split = regex.compile("(" + "|".join(regex.escape(s) for s in
                                                          sorted(special, key=len, reverse=True)) + ")") if special else None
        self._spell = bytes_to_unicode()
        self._unspell = {c: b for b, c in self._spell.items()}
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def from_metadata(cls, meta: dict, path: str | Path = "<gguf>") -> "GGUFTokenizer":
        model = meta.get("tokenizer.ggml.model")
        if model != "gpt2":
            raise ValueError(f"{path}: tokenizer.ggml.model is {model!r}, expected 'gpt2' (byte-level BPE)")
        tokens, types = meta["tokenizer.ggml.tokens"], meta.get("tokenizer.ggml.token_type") or []
        special = [t for t, kind in zip(tokens, types) if kind == 3]            # 3 = CONTROL
        return cls(tokens, meta["tokenizer.ggml.merges"], special, meta.get("tokenizer.chat_template"),
                   meta.get("tokenizer.ggml.bos_token_id"), meta.get("tokenizer.ggml.eos_token_id"))

    def __len__(self) -> int:
        return len(self.tokens)

    def _bpe(self, chunk: str) -> list[int]:
        cached = self._cache.get(chunk)
        if cached is not None:
            return cached
        parts = [self._spell[b] for b in chunk.encode("utf-8")]
        while len(parts) > 1:                      # apply the best-ranked (earliest learned) merge present
            pairs = [(self.ranks.get(p, len(self.ranks)), i) for i, p in enumerate(zip(parts, parts[1:]))]
            rank, i = min(pairs)
            if rank == len(self.ranks):
                break
            first, second = parts[i], parts[i + 1]
            merged, j = [], 0                      # merge every occurrence of this pair, left to right
            while j < len(parts):
                if j + 1 < len(parts) and parts[j] == first and parts[j + 1] == second:
                    merged.append(first + second)
                    j += 2
                else:
                    merged.append(parts[j])
                    j += 1
            parts = merged
        missing = [p for p in parts if p not in self.vocab]
        if missing:
            byte = next(b for b in chunk.encode("utf-8") if self._spell[b] in missing[0]) \
                if len(missing[0]) == 1 else None
            raise ValueError(f"text: {chunk!r} needs the token {missing[0]!r}"
                             f"{f' (byte {byte:#04x})' if byte is not None else ''}, which this vocabulary lacks")
        ids = [self.vocab[p] for p in parts]
        if len(self._cache) < 100_000:
            self._cache[chunk] = ids
        return ids

    def encode(self, text: str, specials: bool = True) -> list[int]:
        """Token ids; with `specials`, control-token strings in the text (e.g. "<|im_end|>") become their ids."""
        pieces = self._special_split.split(text) if (specials and self._special_split) else [text]
        ids: list[int] = []
        for piece in pieces:
            if piece in self.special and specials:
                ids.append(self.special[piece])
            elif piece:
                for chunk in self._split.findall(piece):
                    ids += self._bpe(chunk)
        return ids

    def decode(self, ids, skip_special: bool = False) -> str:
        out = bytearray()
        for i in ids:
            tok = self.tokens[int(i)]
            if tok in self.special:
                if not skip_special:
                    out += tok.encode("utf-8")
            else:
                out += bytes(self._unspell[c] for c in tok)
        return out.decode("utf-8", errors="replace")

    def render_chat(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        """The prompt text for a conversation, from the file's own Jinja chat template (as transformers does:
        sandboxed, trim_blocks and lstrip_blocks on)."""
        if not self.chat_template:
            raise ValueError("this GGUF carries no tokenizer.chat_template")
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])

        def raise_exception(message):
            raise ValueError(f"chat template: {message}")

        env.globals["raise_exception"] = raise_exception
        budget = [CHAT_TEMPLATE_BUDGET]

        def spend(what: str) -> None:
            budget[0] -= 1
            if budget[0] < 0:
                raise ValueError(f"chat template: more than {CHAT_TEMPLATE_BUDGET:,} steps ({what}); a template "
                                 f"for a conversation needs a few hundred: this one loops without end")

        capped_range = env.globals["range"]                  # the sandbox's: each range capped, not their product

        def counted_range(*args):
            for value in capped_range(*args):
                spend("loop iterations")
                yield value

        env.globals["range"] = counted_range
        template = env.from_string(self.chat_template)
        out = []
        for piece in template.generate(messages=messages, add_generation_prompt=add_generation_prompt,
                                       bos_token=self.tokens[self.bos_id] if self.bos_id is not None else "",
                                       eos_token=self.tokens[self.eos_id] if self.eos_id is not None else ""):
            spend("output pieces")
            out.append(piece)
        return "".join(out)

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool = True) -> list[int]:
        return self.encode(self.render_chat(messages, add_generation_prompt))
