"""Saving a GPT with its config and tokenizer in one verified safetensors file, and rebuilding it from there."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, NamedTuple

import torch

from ..core.checkpoints import CheckpointError, load_weights_and_metadata, save_weights
from ..text.bpe import ByteBPE
from ..text.tokenizers import CharTokenizer
from .model import GPT, GPTConfig


class Loaded(NamedTuple):
    model: GPT
    tokenizer: Any      # CharTokenizer or ByteBPE, rebuilt from the checkpoint
    meta: dict


def save(model: GPT, path: str | Path, tokenizer=None, **metadata: Any) -> Path:
    """Write weights + config (+ tokenizer) as one safetensors file that `load` reads back."""
    extra = {"tokenizer": tokenizer.to_json()} if tokenizer is not None else {}
    return save_weights(model, path, config=model.cfg.to_dict(), **extra, **metadata)


def load(path: str | Path, device: torch.device | str = "cpu") -> Loaded:
    """Rebuild a GPT from a checkpoint written by `save` (the lesson) or `python -m course_lib.harness.pretrain`.

        model, tok, meta = load(recipes.gpt.checkpoint_path("lesson"), device)   # lesson 06's char model

    The model comes back in eval mode; `meta` holds everything else that was saved (e.g. val_loss).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no GPT checkpoint at {path}: run lesson 06 (or course_lib.harness.pretrain) first")
    tensors, meta = load_weights_and_metadata(path)
    if "config" not in meta:
        raise CheckpointError(f"{path} has no 'config' metadata: it was not written by course_lib.gpt.save")
    model = GPT(GPTConfig(**meta.pop("config")))
    model.load_state_dict(tensors)
    tokenizer = _tokenizer_from_json(meta.pop("tokenizer")) if "tokenizer" in meta else None
    if tokenizer is not None and len(tokenizer) > model.cfg.vocab_size:
        raise CheckpointError(f"{path}: its tokenizer has {len(tokenizer)} tokens but the model's vocab_size is only "
                              f"{model.cfg.vocab_size}: the two do not belong together")
    if tokenizer is not None and len(tokenizer) < model.cfg.vocab_size:     # legal (padded tables), but say so
        warnings.warn(f"{path}: the tokenizer has {len(tokenizer)} tokens, the model's table {model.cfg.vocab_size} "
                      "rows; the extra rows are never used", stacklevel=2)
    return Loaded(model.to(device).eval(), tokenizer, meta)


def _tokenizer_from_json(data: dict):
    if data.get("kind") == "char":
        specials = data["specials"]
        return CharTokenizer(data["itos"][len(specials):], specials=specials)
    if data.get("kind") == ByteBPE.kind:
        return ByteBPE.from_json(data)
    raise ValueError(f"unknown tokenizer kind {data.get('kind')!r} in checkpoint")
