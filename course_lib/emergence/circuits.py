"""Finding and cutting the induction circuit in a real model (lesson 08; Olsson et al. 2022 on a pretrained
Llama-style decoder, `course_lib.gpt.llama.Llama`, e.g. SmolLM2-135M).

    with AttentionRecorder(model) as rec:
        model(tokens)
    attn, err = recomputed_attention(model, rec, layer)      # (B, H, T, T) and its error vs the layer's output
    scores = head_scores(model, tokens)                      # prefix-matching and previous-token, (L, H) each
    means = head_means(model, tokens)                        # each head's average output, for mean-ablation
    with ablate_heads(model, [(18, 6)], means):              # or means=None: zero-ablation
        logits = model(tokens)

Nothing here changes `llama.py`: the recorder reads each attention block's input with a forward hook, and the
ablation rewrites the input of `o_proj` (the heads' outputs side by side, head h in channels h*hd .. (h+1)*hd)
with a forward pre-hook. Removing the hooks restores the model exactly. The ablation works the same way on the
attention-only model of section 2 (its `W_O`).

Two details of the real model that a reimplementation must get right, or the induction heads vanish:
* grouped-query attention: query head h reads key/value head h // (n_head / n_kv_head) - `repeat_interleave`,
  not `repeat`;
* RoPE in the rotate-half layout (the same `apply_rope` the model uses).
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F

from ..gpt.llama import apply_rope
from .induction import prefix_matching_score, previous_token_score


class AttentionRecorder(contextlib.AbstractContextManager):
    """Records, for every layer (or those in `layers`), what its attention block read (the normed residual
    stream x and the RoPE cos/sin) and what it wrote (its output), during the forward passes inside `with`."""

    def __init__(self, model, layers: Iterable[int] | None = None):
        self.model = model
        self.layers = list(range(len(model.layers))) if layers is None else list(layers)
        bad = [i for i in self.layers if not 0 <= i < len(model.layers)]
        if bad:
            raise ValueError(f"layers {bad} out of range: the model has {len(model.layers)} layers")
        self.inputs: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self.outputs: dict[int, torch.Tensor] = {}
        self._handles = []

    def __enter__(self):
        for i in self.layers:
            def hook(module, args, output, i=i):
                x, cos, sin = args[:3]
                if len(args) > 3 and args[3] is not None:
                    raise ValueError("AttentionRecorder records whole sequences: run the model without a KV cache")
                self.inputs[i] = (x.detach(), cos.detach(), sin.detach())
                self.outputs[i] = output.detach()
            self._handles.append(self.model.layers[i].self_attn.register_forward_hook(hook))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()
        return False


def attention_from_qk(attn_module, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """The attention probabilities of every query head, written out: (B, H, T, T), and the block's output
    (B, T, dim) rebuilt from them, o_proj(probs @ v), to check them against what the model computed."""
    B, T, _ = x.shape
    H, KV, hd = attn_module.n_head, attn_module.n_kv_head, attn_module.head_dim
    q = attn_module.q_proj(x).view(B, T, H, hd).transpose(1, 2)
    k = attn_module.k_proj(x).view(B, T, KV, hd).transpose(1, 2)
    v = attn_module.v_proj(x).view(B, T, KV, hd).transpose(1, 2)
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    k, v = k.repeat_interleave(H // KV, dim=1), v.repeat_interleave(H // KV, dim=1)   # query head h -> kv h // g
    scores = (q @ k.transpose(-2, -1)).float() / math.sqrt(hd)
    causal = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
    probs = scores.masked_fill(causal, float("-inf")).softmax(dim=-1)
    out = attn_module.o_proj((probs.to(v.dtype) @ v).transpose(1, 2).reshape(B, T, H * hd))
    return probs, out


def recomputed_attention(model, recorder: AttentionRecorder, layer: int) -> tuple[torch.Tensor, float]:
    """(probs (B, H, T, T), max |rebuilt output - the layer's recorded output| relative to the output's scale)."""
    if layer not in recorder.inputs:
        raise ValueError(f"layer {layer} was not recorded (recorded: {sorted(recorder.inputs)})")
    with torch.no_grad():
        probs, out = attention_from_qk(model.layers[layer].self_attn, *recorder.inputs[layer])
        ref = recorder.outputs[layer]
        err = float((out - ref).abs().max() / ref.abs().max().clamp_min(1e-12))
    return probs, err


@torch.no_grad()
def head_scores(model, tokens: torch.Tensor, score_from: int = 0) -> dict[str, torch.Tensor | float]:
    """Every head's prefix-matching score and previous-token score on `tokens` (B, T): (L, H) each, plus
    "max_error", the largest relative error of the recomputed attention against any layer's output.

    `score_from`: positions before it (a start token) are left out as keys of the previous-token score's rows
    and as queries; a repeated token there would otherwise count as a "repeat".
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    tokens = tokens.to(device)
    prefix, prev, worst = [], [], 0.0
    with AttentionRecorder(model) as rec:
        model(tokens)
    for layer in range(len(model.layers)):
        probs, err = recomputed_attention(model, rec, layer)
        worst = max(worst, err)
        p = probs[:, :, score_from:, score_from:]
        prefix.append(prefix_matching_score(p, tokens[:, score_from:]).cpu())
        prev.append(previous_token_score(p).cpu())
        del rec.inputs[layer], rec.outputs[layer]             # one layer's probabilities in memory at a time
    model.train(was_training)
    return {"prefix": torch.stack(prefix), "previous": torch.stack(prev), "max_error": worst}


def top_heads(scores: torch.Tensor, k: int) -> list[tuple[int, int]]:
    """The k (layer, head) pairs with the highest scores in an (L, H) table, best first."""
    if not 0 <= k <= scores.numel():
        raise ValueError(f"k={k}: expected 0 .. {scores.numel()} (the number of heads)")
    idx = scores.flatten().argsort(descending=True)[:k].tolist()
    return [(i // scores.shape[1], i % scores.shape[1]) for i in idx]


def random_heads(n_layer: int, n_head: int, k: int, exclude: Sequence[tuple[int, int]] = (),
                 generator: torch.Generator | None = None) -> list[tuple[int, int]]:
    """k distinct (layer, head) pairs drawn uniformly from those not in `exclude`."""
    pool = [(l, h) for l in range(n_layer) for h in range(n_head) if (l, h) not in set(exclude)]
    if not 0 <= k <= len(pool):
        raise ValueError(f"k={k}: expected 0 .. {len(pool)} (heads left after the exclusions)")
    return [pool[i] for i in torch.randperm(len(pool), generator=generator)[:k].tolist()]


def out_projection(model, layer: int) -> tuple[torch.nn.Module, int, int]:
    """(the layer's output projection, its number of heads, head size). Its input holds the heads' outputs side
    by side, head h in channels h*hd .. (h+1)*hd: a Llama's `self_attn.o_proj`, or the attention-only model's
    `W_O` (whose `forward` uses it; its `run` does not, so hooks there see only `forward`)."""
    block = model.layers[layer]
    if hasattr(block, "self_attn"):
        return block.self_attn.o_proj, block.self_attn.n_head, block.self_attn.head_dim
    return block.W_O, block.n_heads, block.d_head


def _o_proj_inputs(model, layers: Iterable[int]):
    """A context manager collecting the input of each listed layer's output projection."""
    store: dict[int, torch.Tensor] = {}
    stack = contextlib.ExitStack()
    for i in layers:
        def pre(module, args, i=i):
            store[i] = args[0].detach()
        stack.callback(out_projection(model, i)[0].register_forward_pre_hook(pre).remove)
    return stack, store


@torch.no_grad()
def head_means(model, tokens: torch.Tensor, mask: torch.Tensor | None = None,
               layers: Iterable[int] | None = None) -> dict[int, torch.Tensor]:
    """Each head's output averaged over the batch, position by position: {layer: (T, n_head * head_dim)}.

    `mask` (B, T) bool: only rows where it is True count at each position (right-padded prompts: the padding is
    left out). That mean is what mean-ablation puts in place of a head: "this head, doing its usual thing on
    average", rather than zero, a value the next layers never saw during training.
    """
    layers = range(len(model.layers)) if layers is None else list(layers)
    device = next(model.parameters()).device
    tokens = tokens.to(device)
    stack, store = _o_proj_inputs(model, layers)
    with stack:
        model(tokens)
    if mask is None:
        return {i: z.mean(0) for i, z in store.items()}
    m = mask.to(device)[:, :, None].to(next(iter(store.values())).dtype)
    return {i: (z * m).sum(0) / m.sum(0).clamp_min(1) for i, z in store.items()}


@contextlib.contextmanager
def ablate_heads(model, heads: Iterable[tuple[int, int]], means: dict[int, torch.Tensor] | None = None):
    """Inside `with`, each (layer, head) in `heads` outputs its mean from `head_means` (mean-ablation) or, with
    `means=None`, zero (zero-ablation). Sequences must have the length the means were taken at (or be shorter).
    Works on a Llama and on the attention-only model (through `forward`)."""
    by_layer: dict[int, list[int]] = {}
    n_layer = len(model.layers)
    for l, h in heads:
        if not (0 <= l < n_layer and 0 <= h < out_projection(model, l)[1]):
            raise ValueError(f"head ({l}, {h}) does not exist: the model has {n_layer} layers "
                             f"and heads {[out_projection(model, i)[1] for i in range(n_layer)]} per layer")
        if means is not None and l not in means:
            raise ValueError(f"no mean recorded for layer {l}: pass head_means(..., layers=...) including it")
        by_layer.setdefault(l, []).append(h)
    handles = []
    for l, hs in by_layer.items():
        proj, _, hd = out_projection(model, l)
        cols = torch.cat([torch.arange(h * hd, (h + 1) * hd) for h in hs])

        def pre(module, args, l=l, cols=cols):
            z = args[0].clone()
            T = z.shape[1]
            z[..., cols.to(z.device)] = 0.0 if means is None else means[l][:T, cols.to(z.device)].to(z.dtype)
            return (z,) + tuple(args[1:])
        handles.append(proj.register_forward_pre_hook(pre))
    try:
        yield model
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def copy_losses(model, tokens: torch.Tensor, n: int, start: int = 1, curve: bool = False):
    """(mean loss on the first copy, on the second) for `tokens` = [start tokens] + n tokens + the same n again;
    with `curve`, also the mean loss at every predicted position (T - 1,), on the CPU.

    The first token of each copy is left out of both means (nothing predicts it)."""
    device = next(model.parameters()).device
    tokens = tokens.to(device)
    if tokens.shape[1] != start + 2 * n:
        raise ValueError(f"tokens has {tokens.shape[1]} positions, expected start + 2n = {start + 2 * n}")
    logits = model(tokens[:, :-1]).float()
    ce = F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none")     # target j + 1
    first = float(ce[:, start:start + n - 1].mean())     # targets start+1 .. start+n-1
    second = float(ce[:, start + n:].mean())             # targets start+n+1 .. end
    return (first, second, ce.mean(0).cpu()) if curve else (first, second)
