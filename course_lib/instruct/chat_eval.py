"""Measuring a chat model on a classification task without training it (lesson 09, part B).

    prompts = [tok.apply_chat_template(sst2_conversation(s, demos)) for s, _ in sentences]
    logp = label_logprobs(model, prompts, sst2_label_tokens(tok))            # (N, 2): negative, positive
    predictions = logp.argmax(-1)

Zero-shot: the instruction and the review, nothing else. Few-shot: worked examples first, as earlier turns
of the same conversation. The model's answer is read from its next-token distribution: which label word it
would start its reply with (label-word log-probabilities: no sampling, no parsing of free text).

Every prompt of one condition starts with the same tokens (system prompt, instruction, the examples), so that
shared prefix goes through the model once and its KV cache is reused by every review: few-shot then costs
about what zero-shot costs. Contextual calibration (Zhao et al. 2021, "Calibrate Before Use") divides out the
model's bias towards one label, measured on content-free inputs ("N/A", "", "[MASK]").
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

# The instruction goes in the system message and the review alone in the user's turn: of the wordings we
# tried on SST-2's first 80 dev sentences, this one was the least biased towards one label for SmolLM2-135M
# (most other wordings made it answer "positive" to almost everything).
SST2_SYSTEM = "You are a sentiment classifier. Reply with exactly one word: positive or negative."
SST2_LABELS = ("negative", "positive")          # SST-2's label 0 and 1
CONTENT_FREE = ("N/A", "", "[MASK]")            # Zhao et al.'s content-free inputs


def sst2_label_tokens(tok) -> list[list[int]]:
    """First tokens of each label word, lower- and capitalised ("negative", "Negative"; ...)."""
    out = []
    for word in SST2_LABELS:
        ids = [tok.encode(w)[0] for w in (word, word.capitalize())]
        out.append(list(dict.fromkeys(ids)))
    return out


def sst2_conversation(sentence: str, demos: Sequence[tuple[str, int]] = ()) -> list[dict]:
    """Chat messages: the instruction as the system message, one user/assistant exchange per worked example,
    then the review to classify."""
    messages = [{"role": "system", "content": SST2_SYSTEM}]
    for text, label in demos:
        messages += [{"role": "user", "content": text}, {"role": "assistant", "content": SST2_LABELS[label]}]
    return messages + [{"role": "user", "content": sentence}]


def common_prefix_length(seqs: Sequence[Sequence[int]]) -> int:
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for s in seqs[1:]:
        k = 0
        while k < n and s[k] == first[k]:
            k += 1
        n = k
    return n


@torch.no_grad()
def label_logprobs(model, prompts: Sequence[Sequence[int]], labels: Sequence[Sequence[int]],
                   batch: int = 16) -> torch.Tensor:
    """log p(label | prompt) for each prompt (token ids) and label, read at the prompt's last position: (N, L).

    `labels[j]` lists the token ids that each start an answer meaning label j (e.g. "negative" and
    "Negative"); their probabilities are added. `model` is a course_lib.gpt.llama.Llama. The prompts' shared
    prefix is computed once and its KV cache is expanded over each batch; the rest is right-padded (a causal
    model never looks at the padding after a position), and each row is read at its own last real token.
    Prompts are batched in order of length, so little compute goes into padding.
    """
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("prompts must be a non-empty list of non-empty token-id lists")
    if not labels or any(len(alt) == 0 for alt in labels):
        raise ValueError("labels must list at least one token id for every label")
    flat = [t for alternatives in labels for t in alternatives]
    if len(set(flat)) != len(flat):
        raise ValueError("two labels share a token: an answer starting with it would count for both")
    device = next(model.parameters()).device
    n = min(common_prefix_length(prompts), min(len(p) for p in prompts) - 1)   # leave each row >= 1 token
    prefix_cache = None
    if n > 0:
        prefix_cache = model.new_cache()
        model.hidden(torch.tensor([list(prompts[0][:n])], device=device), cache=prefix_cache)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))     # similar lengths share a batch
    out = []
    for start in range(0, len(prompts), batch):
        rows = [list(prompts[i][n:]) for i in order[start:start + batch]]
        lengths = torch.tensor([len(r) for r in rows], device=device)
        x = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long, device=device)
        for i, r in enumerate(rows):
            x[i, :len(r)] = torch.tensor(r, device=device)
        cache = prefix_cache.expand(len(rows)) if prefix_cache is not None else None
        h = model.hidden(x, cache=cache)                                       # (B, T, dim)
        last = h[torch.arange(len(rows), device=device), lengths - 1]          # (B, dim)
        logp = torch.log_softmax(model.lm_head(last).float(), dim=-1)
        out.append(torch.stack([torch.logsumexp(logp[:, list(alt)], dim=-1) for alt in labels], dim=-1))
    result = torch.empty(len(prompts), len(labels))
    result[torch.tensor(order)] = torch.cat(out).cpu()
    return result


def calibrate(logp: torch.Tensor, content_free_logp: torch.Tensor) -> torch.Tensor:
    """Contextual calibration (Zhao et al. 2021): divide each label's probability by its probability on
    content-free inputs (averaged over the rows of `content_free_logp`, e.g. "N/A", "" and "[MASK]"), so a
    content-free input would score every label the same. Works in log space; returns calibrated scores (N, L)."""
    def renorm(x):
        return x - torch.logsumexp(x, dim=-1, keepdim=True)
    cf = renorm(content_free_logp.reshape(-1, logp.shape[-1]))
    mean_cf = torch.logsumexp(cf, dim=0) - torch.log(torch.tensor(float(cf.shape[0])))   # log of the mean probability
    return renorm(logp) - mean_cf
