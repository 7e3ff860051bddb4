"""Greedy and beam search for any encoder-decoder model.

The protocol. A model that translates implements two methods (lesson 03/04's `Seq2Seq` and lesson 05's
`Transformer` both do):

    memory = model.encode(src, src_mask)
    logits, state = model.decode_step(tokens, state, memory, src_mask)

* `src` (B, S) source ids; `src_mask` (B, S) bool, True at real tokens, False at padding.
* `tokens` (B, t): every target token so far, starting with `<bos>`. A recurrent model reads only the last
  column (its `state` remembers the rest); a Transformer may re-read them all or keep a cache in `state`.
* `state`: None at the first step, then whatever the model returned last time.
* `logits` (B, V): scores for the next token.
* `memory` and `state` are tensors, or tuples / lists / dicts of them (None allowed), with the batch as
  dim 0 of every tensor: beam search repeats and reorders rows along that dimension, nothing else.

Both searches return, per sentence, the generated ids without `<bos>` and without the closing `<eos>`, and
stop at `<eos>` or after `max_len` tokens, whichever comes first. `beam_search(beam=1)` equals `greedy`.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
import torch.nn.functional as F


class EncoderDecoder(Protocol):
    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> Any: ...

    def decode_step(self, tokens: torch.Tensor, state: Any, memory: Any, src_mask: torch.Tensor
                    ) -> tuple[torch.Tensor, Any]: ...


def map_tensors(tree: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """Apply `fn` to every tensor of a nested tuple / list / dict / NamedTuple; other leaves are kept."""
    if isinstance(tree, torch.Tensor):
        return fn(tree)
    if isinstance(tree, dict):
        return {k: map_tensors(v, fn) for k, v in tree.items()}
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):        # a NamedTuple
        return type(tree)(*(map_tensors(v, fn) for v in tree))
    if isinstance(tree, (tuple, list)):
        return type(tree)(map_tensors(v, fn) for v in tree)
    return tree


def _check(src: torch.Tensor, src_mask: torch.Tensor, max_len: int) -> None:
    if src.dim() != 2 or src_mask.shape != src.shape:
        raise ValueError(f"expected src (batch, length) and a src_mask of the same shape, "
                         f"got {tuple(src.shape)} and {tuple(src_mask.shape)}")
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")


def _strip(row: list[int], eos_id: int) -> list[int]:
    return row[:row.index(eos_id)] if eos_id in row else row


@torch.no_grad()
def greedy(model: EncoderDecoder, src: torch.Tensor, src_mask: torch.Tensor, bos_id: int, eos_id: int,
           max_len: int) -> list[list[int]]:
    """Pick the single most likely next token at every step."""
    _check(src, src_mask, max_len)
    memory = model.encode(src, src_mask)
    tokens = torch.full((src.shape[0], 1), bos_id, dtype=torch.long, device=src.device)
    done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
    state = None
    for _ in range(max_len):
        logits, state = model.decode_step(tokens, state, memory, src_mask)
        next_token = logits.argmax(-1).masked_fill(done, eos_id)   # finished rows just repeat <eos>
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        done |= next_token == eos_id
        if done.all():
            break
    return [_strip(row[1:], eos_id) for row in tokens.tolist()]


@torch.no_grad()
def beam_search(model: EncoderDecoder, src: torch.Tensor, src_mask: torch.Tensor, bos_id: int, eos_id: int,
                max_len: int, beam: int = 4, alpha: float = 1.0) -> list[list[int]]:
    """Keep the `beam` best partial translations per sentence instead of one.

    A hypothesis is scored by its total log-probability divided by length**alpha (length normalisation:
    alpha=0 is the raw sum, which favours short outputs because every extra word costs probability; alpha=1
    is the mean log-probability per token). The length counts the closing `<eos>`. A sentence is finished
    when `beam` hypotheses have ended with `<eos>` (fairseq's rule) or at `max_len`, where the unfinished
    ones join in; the best-scoring one is returned.
    """
    _check(src, src_mask, max_len)
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    batch, k, device = src.shape[0], beam, src.device
    memory = map_tensors(model.encode(src, src_mask), lambda t: t.repeat_interleave(k, dim=0))
    mask = src_mask.repeat_interleave(k, dim=0)
    tokens = torch.full((batch * k, 1), bos_id, dtype=torch.long, device=device)
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0                      # all beams start identical: let only the first one expand
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]
    done = [False] * batch
    state = None
    for length in range(1, max_len + 1):
        logits, state = model.decode_step(tokens, state, memory, mask)
        logp = F.log_softmax(logits.float(), dim=-1)
        vocab = logp.shape[-1]
        candidates = (scores[:, :, None] + logp.view(batch, k, vocab)).view(batch, k * vocab)
        top_scores, top_index = candidates.topk(min(2 * k, k * vocab), dim=-1)
        new_scores = torch.full((batch, k), float("-inf"), device=device)
        new_parent = torch.zeros((batch, k), dtype=torch.long, device=device)
        new_token = torch.full((batch, k), eos_id, dtype=torch.long, device=device)
        for b, (row_scores, row_index) in enumerate(zip(top_scores.tolist(), top_index.tolist())):
            if done[b]:
                continue
            kept = 0
            for rank, (score, index) in enumerate(zip(row_scores, row_index)):
                if score == float("-inf"):
                    break
                parent, token = divmod(index, vocab)
                if token == eos_id:
                    if rank < k:            # an <eos> outside the top k would not have survived the beam
                        words = tokens[b * k + parent, 1:].tolist()
                        finished[b].append((score / length**alpha, words))
                    continue
                new_scores[b, kept], new_parent[b, kept], new_token[b, kept] = score, parent, token
                kept += 1
                if kept == k:
                    break
            done[b] = len(finished[b]) >= k
        if all(done):
            break
        rows = (torch.arange(batch, device=device)[:, None] * k + new_parent).view(-1)
        tokens = torch.cat([tokens[rows], new_token.view(-1, 1)], dim=1)
        state = map_tensors(state, lambda t: t.index_select(0, rows))
        scores = new_scores
    else:  # the length cap: unfinished hypotheses compete as they are
        for b in range(batch):
            if not done[b]:
                for j in range(k):
                    if scores[b, j] > float("-inf"):
                        finished[b].append((scores[b, j].item() / max_len**alpha, tokens[b * k + j, 1:].tolist()))
    return [max(hyps, key=lambda h: h[0])[1] for hyps in finished]
