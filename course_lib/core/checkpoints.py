"""Checkpoints: safetensors files (tensors + JSON metadata, nothing executable), written atomically and
checked on load. One code path for the Trainer's resumable state, the GPT, BERT and every other model.

    save_weights(model, path, config=cfg.to_dict())      # weights + any JSON-able metadata
    meta = load_weights(model, path)                      # into a model of the right shape; returns the metadata

Every file carries a sha256 of its tensors (names, dtypes, shapes and bytes); loading recomputes it, so a file
whose bytes were flipped, or that was cut short, is refused with its path named instead of loading silently.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

DIGEST_KEY = "course_lib.sha256"


class CheckpointError(ValueError):
    """A checkpoint that cannot be trusted: truncated, altered, or not written by the course."""


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a private temporary path beside `path`; when the block ends without error, rename it over `path`.

    Readers never see a half-written file, and a crash leaves the old file (or none), never a torn one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.chmod(tmp, 0o644)        # writers such as safetensors create 0600; a shared build must be readable
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Path:
    """Write `tensors` (+ string metadata and their digest) to `path` atomically."""
    # clone: tied weights (GPT's wte and lm_head) share memory, which safetensors refuses to write twice
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    meta = dict(metadata or {})
    meta[DIGEST_KEY] = tensors_digest(tensors)
    with atomic_write(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


def load_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read and verify a file written by `save_tensors`: (tensors, string metadata)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: truncated or not a course checkpoint ({err})") from None
    expected = meta.pop(DIGEST_KEY, None)
    if expected is None:
        raise CheckpointError(f"{path}: no {DIGEST_KEY} in its metadata, so it was not written by course_lib "
                              "(or by a version before checksums); re-create it")
    if tensors_digest(tensors) != expected:
        raise CheckpointError(f"{path}: its tensors do not match the sha256 stored with them: the file was altered "
                              "or damaged; re-create it")
    return tensors, meta


def save_weights(model: torch.nn.Module, path: str | Path, **metadata: Any) -> Path:
    """A model's weights, with JSON-able metadata (e.g. its config)."""
    return save_tensors(path, model.state_dict(), {k: json.dumps(v) for k, v in metadata.items()})


def _json(path: str | Path, meta: dict[str, str]) -> dict[str, Any]:
    try:
        return {k: json.loads(v) for k, v in meta.items()}
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: its metadata is not JSON ({err}): not a course checkpoint") from None


def load_weights_and_metadata(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The weights and JSON metadata of a `save_weights` file, verified, for building the model they describe."""
    tensors, meta = load_tensors(path)
    return tensors, _json(path, meta)


def load_weights(model: torch.nn.Module, path: str | Path) -> dict[str, Any]:
    """Load weights saved by `save_weights` into `model`; return the metadata."""
    tensors, meta = load_weights_and_metadata(path)
    model.load_state_dict(tensors)
    return meta
