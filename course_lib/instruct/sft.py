"""Lesson 09, part A: supervised fine-tuning (instruction tuning) of lesson 06's character GPT.

    tok, model = add_chat_tokens(char_tokenizer, gpt)       # <|user|> <|assistant|> <|end|> join the vocabulary
    get_batch = sft_batches(data, tok, batch=16, seed=0)    # for course_lib.core.Trainer, with sft_loss
    loss = response_loss(model(x), y, mask)                 # next-token loss on the answer tokens only

The vocabulary grows by three rows (the pretrained ones are kept), and the loss counts only the answer and its
closing <|end|>: the request is given, not something to imitate.
"""
from __future__ import annotations

import random
import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..core.checks import integer, same_shape
from ..core.data import train_val_split
from ..core.train import Trainer, TrainConfig
from ..gpt.checkpoint import load
from ..gpt.model import GPT, GPTConfig
from ..recipes.gpt import checkpoint_path
from ..text.lm_data import batches_by_step, evaluate_lm, lm_loss
from ..text.tokenizers import CharTokenizer
from .tasks import CHAT_TOKENS, END, Example, InstructionSet


class ChatCharTokenizer:
    """A character vocabulary with the chat markers appended after it, so every pretrained id keeps its
    meaning (and its embedding row). Markers in the text are encoded as one token each."""

    kind = "chatchar"

    def __init__(self, chars: Sequence[str], specials: Sequence[str] = CHAT_TOKENS):
        self.itos = list(chars) + list(specials)
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        self.specials = tuple(specials)
        self._split = re.compile("(" + "|".join(re.escape(s) for s in specials) + ")")

    @classmethod
    def extend(cls, char_tokenizer, specials: Sequence[str] = CHAT_TOKENS) -> "ChatCharTokenizer":
        """From a course_lib CharTokenizer (its `itos`); refuses one that already has special tokens first."""
        chars = list(char_tokenizer.itos)
        if any(len(c) != 1 for c in chars):
            raise ValueError("expected a character vocabulary (every symbol one character)")
        return cls(chars, specials)

    def __len__(self) -> int:
        return len(self.itos)

    def id(self, symbol: str) -> int:
        return self.stoi[symbol]

    @property
    def end_id(self) -> int:
        return self.stoi[END]

    def encode(self, text: str) -> list[int]:
        ids = []
        for part in self._split.split(text):
            if part in self.specials:
                ids.append(self.stoi[part])
            else:
                try:
                    ids += [self.stoi[c] for c in part]
                except KeyError as err:
                    raise ValueError(f"character {err.args[0]!r} is not in the vocabulary") from None
        return ids

    def decode(self, ids) -> str:
        return "".join(self.itos[int(i)] for i in ids)


def add_chat_tokens(char_tokenizer, model):
    """(ChatCharTokenizer, a copy of the GPT with 3 more vocabulary rows). The pretrained rows are copied
    unchanged; each new row starts at the mean of the old ones plus a little noise (so the three differ), a
    neutral start that neither dominates the softmax nor looks like any one character. The read-out stays tied
    to the embedding, so the new tokens can also be predicted (the model must learn to say <|end|>)."""
    from dataclasses import replace

    tok = ChatCharTokenizer.extend(char_tokenizer)
    old = model.wte.weight.detach()
    if old.shape[0] != len(char_tokenizer):
        raise ValueError(f"the model has {old.shape[0]} vocabulary rows, the tokenizer {len(char_tokenizer)}")
    grown = type(model)(replace(model.cfg, vocab_size=len(tok))).to(old.device)
    state = dict(model.state_dict())
    gen = torch.Generator().manual_seed(0)
    extra = old.mean(0, keepdim=True) + 0.02 * torch.randn(len(tok) - len(old), old.shape[1], generator=gen).to(old)
    state["wte.weight"] = torch.cat([old, extra])
    state["lm_head.weight"] = state["wte.weight"]
    grown.load_state_dict(state)
    return tok, grown


# ---- the response-only loss ---------------------------------------------------------------------------

def encode_example(tok: ChatCharTokenizer, ex: Example) -> tuple[list[int], list[bool]]:
    """Ids of the whole exchange and, per id, whether it belongs to the answer (answer + the closing <|end|>)."""
    prompt, answer = tok.encode(ex.prompt), tok.encode(ex.answer + END)
    return prompt + answer, [False] * len(prompt) + [True] * len(answer)


def collate(pairs: Sequence[tuple[list[int], list[bool]]], pad_id: int = 0):
    """(x, y, mask), each (B, T-1) with T the longest example: inputs, next-token targets, and which targets
    are answer tokens. Padding (at the end) is masked out, and a causal model never looks ahead at it."""
    T = max(len(ids) for ids, _ in pairs)
    x = torch.full((len(pairs), T), pad_id, dtype=torch.long)
    m = torch.zeros(len(pairs), T, dtype=torch.bool)
    for i, (ids, mask) in enumerate(pairs):
        x[i, :len(ids)] = torch.tensor(ids)
        m[i, :len(mask)] = torch.tensor(mask)
    return x[:, :-1], x[:, 1:], m[:, 1:]


def response_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the answer tokens only (mask True); prompt and padding positions count zero.
    logits (B, T, V), targets and mask (B, T)."""
    same_shape(targets=targets, mask=mask)
    if logits.dim() != 3 or logits.shape[:2] != targets.shape:
        raise ValueError(f"logits has shape {tuple(logits.shape)}: expected (B, T, vocab) with (B, T) = "
                         f"{tuple(targets.shape)}, the shape of targets")
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (True on answer tokens), got dtype {mask.dtype}")
    per_token = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), reduction="none")
    mask = mask.flatten().to(per_token.dtype)
    if mask.sum() == 0:
        raise ValueError("no answer tokens in the batch: the mask is all False")
    return (per_token * mask).sum() / mask.sum()


def sft_batches(data: InstructionSet, tok: ChatCharTokenizer, batch: int, seed: int = 0, block: int | None = None,
                pool: int = 4):
    """A `get_batch(step)` for course_lib's Trainer: `batch` fresh training examples that depend only on
    (seed, step), collated to the longest (at most `block` tokens).

    Examples of similar length are batched together (draw `pool` x `batch`, sort by length, keep one run of
    `batch` neighbours), so little compute goes into padding; each example is still a uniform draw."""
    integer("batch", batch, 1)
    integer("pool", pool, 1)
    def get_batch(step: int):
        rng = random.Random(seed * 1_000_003 + step)
        drawn = sorted((encode_example(tok, data.sample_train(rng)) for _ in range(pool * batch)),
                       key=lambda pair: len(pair[0]))
        start = rng.randrange(pool) * batch
        pairs = drawn[start:start + batch]
        if block is not None:
            pairs = [(ids[:block + 1], m[:block + 1]) for ids, m in pairs]
        return collate(pairs)
    return get_batch


def sft_loss(model, batch) -> torch.Tensor:
    """Loss function for the Trainer: the GPT's logits, scored on the answer tokens."""
    x, y, mask = batch
    return response_loss(model(x), y, mask)


# ---- the starting point ----------------------------------------------------------------------------------

def pretrained_char_gpt(text: str, recipe, device, seed: int = 0):
    """(model, char tokenizer, info): lesson 06's char GPT if its checkpoint exists, has a 128-character
    context and a validation loss under `recipe.max_val_loss`; otherwise a GPT of the same shape (at the
    recipe's fallback size) pretrained here on the training split. `recipe` is a
    `course_lib.recipes.instruct.SFTRecipe`."""
    path = checkpoint_path("lesson")
    if recipe.use_lesson06 and path.exists():
        model, tok, meta = load(path, device)
        val = meta.get("val_loss")
        if (getattr(tok, "kind", "") == "char" and model.cfg.block_size >= 128 and val is not None
                and val <= recipe.max_val_loss):
            return model, tok, {"source": f"lesson 06 ({path.name})", "val_loss": float(val)}
    train_text, val_text = train_val_split(text)
    tok = CharTokenizer.fit(text)
    cfg = GPTConfig(vocab_size=len(tok), block_size=128, n_layer=recipe.fallback_layers,
                    n_head=max(1, recipe.fallback_width // 32), n_embd=recipe.fallback_width, bias=False)
    torch.manual_seed(seed)
    model = GPT(cfg)
    steps = recipe.fallback_steps
    train_cfg = TrainConfig(steps=steps, lr=recipe.fallback_lr, min_lr=recipe.fallback_lr / 10,
                            warmup=min(50, steps // 10), betas=(0.9, 0.99), weight_decay=0.1)
    Trainer(model, lm_loss, batches_by_step(torch.tensor(tok.encode(train_text)), 128, recipe.fallback_batch, seed),
            train_cfg, device=device, name="pretrain (lesson 06 checkpoint not found)").fit()
    val = evaluate_lm(model, torch.tensor(tok.encode(val_text)), 128, device=device)
    return model.eval(), tok, {"source": f"pretrained here ({steps} steps)", "val_loss": val}
