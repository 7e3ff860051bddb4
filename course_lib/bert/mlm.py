"""Training BERT: masked-language-model pretraining (hide some words, ask BERT to fill them in), then
fine-tuning on labelled sentences.

BERT's recipe (Devlin et al., 2018): pick 15 % of the tokens (never [CLS]/[SEP]/[PAD]/...), and of those
    80 % -> [MASK]        the model must reconstruct the word from both sides of its context
    10 % -> a random token so it cannot trust that an unmasked word is always right
    10 % -> unchanged      so it also keeps a good representation of words it can see
The loss is computed on the picked positions only; everything else has label -100 (ignored).

Fine-tuning reuses the pretrained encoder with a small classifier on top: `classification_batches_by_step`,
`classify_loss`, `accuracy_on`, and `fit_probe` (train the classifier alone on frozen sentence vectors).
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F

from .model import BERT, mean_pool
from ..text.lm_data import window_batch
from ..text.tokenizers import pad_batch
from ..text.wordpiece import WordPiece

IGNORE = -100  # label of positions that are not scored (F.cross_entropy's default ignore_index)


def mask_tokens(ids: torch.Tensor, special_ids: Iterable[int], mask_id: int, random_ids: torch.Tensor,
                generator: torch.Generator | None = None, p: float = 0.15, p_mask: float = 0.8,
                p_random: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (inputs, labels) for MLM. `random_ids` lists the ordinary tokens a random replacement draws from."""
    if not 0 < p <= 1 or p_mask < 0 or p_random < 0 or p_mask + p_random > 1:
        raise ValueError(f"need 0 < p <= 1 and p_mask + p_random <= 1, got p={p}, p_mask={p_mask}, p_random={p_random}")
    if len(random_ids) == 0:
        raise ValueError("random_ids is empty: random replacements need at least one ordinary token")
    gen = {"generator": generator, "device": ids.device}
    special = torch.isin(ids, torch.as_tensor(list(special_ids), device=ids.device))
    picked = (torch.rand(ids.shape, **gen) < p) & ~special
    labels = torch.where(picked, ids, torch.full_like(ids, IGNORE))
    roll = torch.rand(ids.shape, **gen)  # one draw decides [MASK] / random / unchanged for each picked token
    to_mask = picked & (roll < p_mask)
    to_random = picked & (roll >= p_mask) & (roll < p_mask + p_random)
    random_ids = random_ids.to(ids.device)
    replacement = random_ids[torch.randint(len(random_ids), ids.shape, **gen)]
    inputs = torch.where(to_mask, torch.full_like(ids, mask_id), ids)
    inputs = torch.where(to_random, replacement, inputs)
    return inputs, labels


def ordinary_ids(tok: WordPiece) -> torch.Tensor:
    """Ids a random replacement may use: everything but the specials and BERT's `[unused*]` slots."""
    return torch.tensor([i for i, t in enumerate(tok.itos)
                         if i not in tok.special_ids and not (t.startswith("[") and t.endswith("]"))])


# ---- the pretraining corpus ---------------------------------------------------------------------------

_WIKI_JOINS = {" @-@ ": "-", " @,@ ": ",", " @.@ ": "."}


def clean_wikitext(text: str) -> list[str]:
    """WikiText-2 paragraphs as plain lines: headings, blank lines and its `<unk>` placeholders removed."""
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("="):
            continue
        for old, new in _WIKI_JOINS.items():
            line = line.replace(old, new)
        lines.append(re.sub(r"\s*<unk>\s*", " ", line).strip())
    return lines


def token_stream(tok: WordPiece, lines: Sequence[str]) -> torch.Tensor:
    """All lines' WordPiece ids, one after another, as one long tensor (lines separated by [SEP])."""
    ids: list[int] = []
    for line in lines:
        ids.extend(tok.ids(line))
        ids.append(tok.sep_id)
    return torch.tensor(ids, dtype=torch.long)


def mlm_batch(stream: torch.Tensor, tok: WordPiece, block: int, batch: int, generator: torch.Generator,
              random_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch` random windows of the stream, each `[CLS] ... [SEP]` of `block` tokens, masked BERT's way."""
    windows, _ = window_batch(stream, block - 2, batch, generator)
    ids = torch.cat([torch.full((batch, 1), tok.cls_id), windows, torch.full((batch, 1), tok.sep_id)], dim=1)
    return mask_tokens(ids, tok.special_ids, tok.mask_id, random_ids, generator)


def mlm_batches_by_step(stream: torch.Tensor, tok: WordPiece, block: int, batch: int, seed: int = 0):
    """A `get_batch(step)` for `Trainer`: windows and masks depend only on (seed, step), so runs repeat."""
    random_ids = ordinary_ids(tok)

    def get_batch(step: int):
        return mlm_batch(stream, tok, block, batch, torch.Generator().manual_seed(seed * 1_000_003 + step), random_ids)
    return get_batch


def mlm_loss(model, batch):
    """Loss function for `Trainer`: masked-token cross-entropy (and accuracy) of a `BERT`."""
    inputs, labels = batch
    return model.mlm_loss(inputs, labels)


@torch.no_grad()
def evaluate_mlm(model, batches: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
    """Mean masked-token loss and accuracy over fixed (inputs, labels) batches."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    loss = acc = 0.0
    for inputs, labels in batches:
        l, extra = model.mlm_loss(inputs.to(device), labels.to(device))
        loss += float(l)
        acc += extra["acc"]
    model.train(was_training)
    return {"mlm_loss": loss / len(batches), "mlm_acc": acc / len(batches)}


@torch.no_grad()
def fill_mask(model, tok: WordPiece, text: str, k: int = 3) -> list[list[tuple[str, float]]]:
    """The top-k guesses (token, probability) for each `[MASK]` written in `text`."""
    parts = text.split("[MASK]")
    if len(parts) < 2:
        raise ValueError(f"text must contain at least one [MASK], got {text!r}")
    ids = [tok.cls_id]
    for i, part in enumerate(parts):
        ids += tok.ids(part) + ([tok.mask_id] if i < len(parts) - 1 else [])
    ids.append(tok.sep_id)
    device = next(model.parameters()).device
    x = torch.tensor([ids], device=device)
    was_training = model.training
    model.eval()
    hidden = model(x)[0, x[0] == tok.mask_id]
    probs = model.mlm_logits(hidden).float().softmax(-1)
    model.train(was_training)
    top = probs.topk(k, dim=-1)
    return [[(tok.itos[i], p) for i, p in zip(row_i.tolist(), row_p.tolist())]
            for row_i, row_p in zip(top.indices, top.values)]


# ---- fine-tuning on labelled sentences -----------------------------------------------------------------

def length_bucketed_batches(lengths: Sequence[int], batch: int, seed: int, epoch: int) -> list[list[int]]:
    """One epoch of index batches: shuffled, then sorted by length inside chunks of 50 batches so each batch
    holds sentences of similar length (little padding), then the batches themselves shuffled."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(lengths), generator=gen).tolist()
    chunk = 50 * batch
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start:start + chunk], key=lambda i: lengths[i])
        batches += [part[i:i + batch] for i in range(0, len(part), batch)]
    return [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]


def classification_batches_by_step(rows: Sequence[Sequence[int]], labels: Sequence[int], batch: int,
                                   pad_id: int, seed: int = 0):
    """A `get_batch(step)` for `Trainer` over encoded sentences: (ids, attention mask, labels), epoch after epoch."""
    if len(rows) != len(labels) or not rows:
        raise ValueError(f"need as many labels as sentences (and at least one): {len(rows)} vs {len(labels)}")
    lengths = [len(r) for r in rows]
    y = torch.as_tensor(labels, dtype=torch.long)
    epochs: dict[int, list[list[int]]] = {}

    def get_batch(step: int):
        per_epoch = math.ceil(len(rows) / batch)
        epoch, k = divmod(step, per_epoch)
        if epoch not in epochs:
            epochs.clear()  # keep only the current epoch's plan
            epochs[epoch] = length_bucketed_batches(lengths, batch, seed, epoch)
        idx = epochs[epoch][k]
        ids, mask = pad_batch([rows[i] for i in idx], pad_id)
        return ids, mask, y[idx]
    return get_batch


def classify_loss(model: BERT, batch):
    """Loss function for `Trainer`: cross-entropy of the [CLS] classifier, and the batch accuracy."""
    ids, mask, y = batch
    logits = model.classify(ids, attention_mask=mask)
    return F.cross_entropy(logits.float(), y), {"acc": (logits.argmax(-1) == y).float().mean().item()}


@torch.no_grad()
def predict(model: BERT, rows: Sequence[Sequence[int]], pad_id: int, batch: int = 128) -> torch.Tensor:
    """Predicted class of every encoded sentence, in order (batched by length for speed)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    out = torch.empty(len(rows), dtype=torch.long)
    for start in range(0, len(order), batch):
        idx = order[start:start + batch]
        ids, mask = pad_batch([rows[i] for i in idx], pad_id, device)
        out[idx] = model.classify(ids, attention_mask=mask).argmax(-1).cpu()
    model.train(was_training)
    return out


def accuracy_on(model: BERT, rows: Sequence[Sequence[int]], labels: Sequence[int], pad_id: int) -> float:
    return (predict(model, rows, pad_id) == torch.as_tensor(labels)).float().mean().item()


def fit_probe(model: BERT, rows: Sequence[Sequence[int]], labels: Sequence[int], pad_id: int, steps: int = 300,
              lr: float = 1e-2) -> float:
    """Fit only `model.classifier` on the frozen sentence vectors of `rows` (a linear probe); returns its
    training accuracy. Computing the vectors once makes this cost one forward pass over the examples."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    feats = []
    with torch.no_grad():
        for start in range(0, len(order), 128):
            ids, mask = pad_batch([rows[i] for i in order[start:start + 128]], pad_id, device)
            hidden = model(ids, attention_mask=mask)
            feats.append(model.pooled(hidden) if model.cfg.pooling == "cls" else mean_pool(hidden, mask))
    x, y = torch.cat(feats), torch.as_tensor([labels[i] for i in order], device=device)
    opt = torch.optim.AdamW(model.classifier.parameters(), lr=lr, weight_decay=1e-3)
    for _ in range(steps):
        loss = F.cross_entropy(model.classifier(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.train(was_training)
    return (model.classifier(x).argmax(-1) == y).float().mean().item()
