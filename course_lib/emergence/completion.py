"""Smooth and sharp metrics (lesson 08; Schaeffer et al. 2023): a fixed-length answer (`answer_correct`: section
5's written-out sums) scored position by position, and exact match read off that table (`exact_from_correct`).
Exact match is a product of per-character successes, which is why it can look like a sudden jump while the
per-character figures climb smoothly.
"""
from __future__ import annotations


import torch



def exact_from_correct(correct: torch.Tensor, lengths: torch.Tensor) -> float:
    """Exact match from a per-character correctness table: a word counts when all its characters do."""
    inside = torch.arange(correct.shape[1])[None] < lengths[:, None]
    return float((correct | ~inside).all(dim=1).float().mean())


@torch.no_grad()
def answer_correct(model, rows: torch.Tensor, prompt_len: int, batch: int = 512) -> torch.Tensor:
    """(N, answer length) bool, teacher-forced: is the model's top guess for each answer token right, given the
    prompt and the answer's earlier tokens? `rows` (N, T) hold prompt + correct answer, all of one length.

    Greedy decoding writes a row's whole answer if and only if its row of this table is all True, so exact
    match (`.all(1).mean()`) and per-token accuracy (`.mean()`) come from one forward pass.
    """
    if rows.dim() != 2 or not 0 < prompt_len < rows.shape[1]:
        raise ValueError(f"rows must be (N, T) with 0 < prompt_len < T, got shape {tuple(rows.shape)} and "
                         f"prompt_len={prompt_len}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(rows), batch):
        chunk = rows[i:i + batch].to(device)
        logits = model(chunk[:, :-1])[:, prompt_len - 1:]          # the guesses for tokens prompt_len .. T-1
        out.append((logits.argmax(-1) == chunk[:, prompt_len:]).cpu())
    model.train(was_training)
    return torch.cat(out)
