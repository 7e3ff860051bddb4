"""The RLHF toy of lesson 10, shared pieces: the policy and its frozen reference, prompts, rollouts with
log-probabilities, KL estimators, whitening, win rates and the held-out evaluation every method is judged by.

The task: lesson 06's character GPT continues a 16-character Shakespeare prompt with exactly 48 characters,
sampled at temperature 1 from the full softmax. Fixed lengths mean no padding and no end-of-text token, which
removes a whole family of RLHF bugs (rewards on pad tokens, masks off by one). Every model here runs with
dropout off: with dropout on, the same text gets a different log-probability each time it is scored.

Stages live in their own files: `judge` (the simulated human), `preferences` (pairs, reward model),
`ppo` (PPO with a KL penalty, RLOO), `dpo` (DPO). Sizes per profile: `RLHFConfig.preset(profile)`.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..core.data import train_val_split
from ..gpt.generation import generate, token_logprobs
from ..gpt.checkpoint import load
from ..gpt.model import GPT, GPTConfig
from ..recipes.gpt import checkpoint_path
from ..text.lm_data import batches_by_step, evaluate_lm, lm_loss
from ..text.tokenizers import CharTokenizer
from ..core.metrics import wilson_interval
from ..core.checks import same_shape
from ..core.presets import Presets
from ..core.train import Trainer, TrainConfig

@dataclass
class RLHFConfig(Presets):
    prompt_len: int = 16
    response_len: int = 48
    eval_prompts: int = 512          # fixed held-out prompts (val split) for every evaluation
    max_val_loss: float = 2.0        # a cached 06 checkpoint worse than this is not used (e.g. a smoke run)
    # the fallback when lesson 06's checkpoint is missing: pretrain a small char GPT here
    pretrain_model: str = "baby"     # a GPTConfig size
    pretrain_steps: int = 800
    pretrain_batch: int = 32
    pretrain_lr: float = 2e-3
    # supervised fine-tuning on the answers the human preferred
    sft_steps: int = 100
    sft_batch: int = 32
    sft_lr: float = 1e-4
    # held-out prompts (the first ones of eval_prompts) that the second judge, SmolLM2-135M, reads
    second_judge_prompts: int = 128

    PRESETS = {
        "smoke": dict(prompt_len=8, response_len=24, eval_prompts=64, pretrain_model="nano",
                      pretrain_steps=60, pretrain_batch=16, sft_steps=5, sft_batch=16, second_judge_prompts=16),
        "lesson": dict(),
        "gpu": dict(eval_prompts=1024, pretrain_steps=3000, pretrain_batch=64, second_judge_prompts=512),
    }

    def sft_config(self) -> TrainConfig:
        """Supervised fine-tuning on the preferred answers: a short run with a small learning rate."""
        return TrainConfig(steps=self.sft_steps, lr=self.sft_lr, warmup=self.sft_steps // 10)


# ---- the policy and its reference ---------------------------------------------------------------------

def rl_copy(model: GPT) -> GPT:
    """A trainable copy of `model` with dropout off (same weights, same device)."""
    device = next(model.parameters()).device
    clone = GPT(dataclasses.replace(model.cfg, dropout=0.0)).to(device)
    clone.load_state_dict(model.state_dict())
    return clone


def frozen_copy(model: GPT) -> GPT:
    """The reference policy: a separate, dropout-free, eval-mode copy that no optimizer can touch."""
    ref = rl_copy(model).eval()
    return ref.requires_grad_(False)


def pretrained_policy(text: str, cfg: RLHFConfig, device: torch.device, use_cache: bool = True,
                      seed: int = 0) -> tuple[GPT, dict]:
    """Lesson 06's char GPT if its checkpoint is under build/ and good enough, else a small one trained here.

    Returns (model, info): info holds "source", "val_loss" and the char "tokenizer".
    """
    train_text, val_text = train_val_split(text)
    path = checkpoint_path("lesson")
    if use_cache and path.exists():
        model, tok, meta = load(path, device)
        val_loss = meta.get("val_loss")
        fits = model.cfg.block_size >= cfg.prompt_len + cfg.response_len and getattr(tok, "kind", "") == "char"
        if fits and val_loss is not None and val_loss <= cfg.max_val_loss:
            return rl_copy(model), {"source": str(path), "val_loss": float(val_loss), "tokenizer": tok}


    tok = CharTokenizer.fit(text)
    train_ids = torch.tensor(tok.encode(train_text))
    val_ids = torch.tensor(tok.encode(val_text))
    gcfg = GPTConfig.sized(cfg.pretrain_model, vocab_size=len(tok), dropout=0.0)
    if gcfg.block_size < cfg.prompt_len + cfg.response_len:
        raise ValueError(f"GPT size {cfg.pretrain_model!r} has block_size {gcfg.block_size} < prompt + response "
                         f"= {cfg.prompt_len + cfg.response_len}")
    model = GPT(gcfg)
    tcfg = TrainConfig(steps=cfg.pretrain_steps, lr=cfg.pretrain_lr, warmup=min(100, cfg.pretrain_steps // 10))
    block = gcfg.block_size
    trainer = Trainer(model, lm_loss, batches_by_step(train_ids, block, cfg.pretrain_batch, seed), tcfg,
                      device=device, name="pretrain (fallback)")
    trainer.fit()
    val_loss = evaluate_lm(model, val_ids, block, device=device)
    return rl_copy(model), {"source": "trained here", "val_loss": val_loss, "tokenizer": tok}


# ---- prompts and samples ------------------------------------------------------------------------------

def make_prompts(text: str, tokenizer, n: int, length: int, seed: int) -> torch.Tensor:
    """`n` prompts of `length` characters from `text`, each starting at the beginning of a word. (n, length)."""
    if length < 1:
        raise ValueError(f"prompt length {length}: expected at least one token (an empty prompt has no context)")
    gen = torch.Generator().manual_seed(seed)
    starts = [i for i in range(1, len(text) - length) if text[i - 1] in " \n" and text[i].isalpha()]
    if not starts:
        raise ValueError("no word starts found in the text: expected ordinary prose")
    picks = torch.randint(len(starts), (n,), generator=gen).tolist()
    return torch.tensor([tokenizer.encode(text[starts[p]:starts[p] + length]) for p in picks])


def sample_responses(policy: GPT, prompts: torch.Tensor, length: int, generator: torch.Generator | None = None,
                     batch: int = 256) -> torch.Tensor:
    """prompt + `length` sampled tokens, temperature 1 from the full softmax (no top-k/top-p, which would make
    the KL estimates biased). (B, P + length)."""
    if prompts.dim() != 2 or prompts.shape[1] == 0:
        raise ValueError(f"prompts must be (batch, P) token ids with P >= 1, got shape {tuple(prompts.shape)}")
    device = next(policy.parameters()).device
    if generator is not None and generator.device != device:
        # sampling on a GPU needs a generator there; seed it from the given one so runs stay reproducible
        generator = torch.Generator(device).manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
    out = [generate(policy, p.to(device), length, temperature=1.0, generator=generator).tokens
           for p in prompts.split(batch)]
    return torch.cat(out)


def response_logprobs(model: GPT, seq: torch.Tensor, prompt_len: int) -> torch.Tensor:
    """log pi(response token t | prompt, earlier response tokens) for every response token: (B, G)."""
    return token_logprobs(model, seq)[:, prompt_len - 1:]


def check_rewards(scores: torch.Tensor, what: str = "reward") -> torch.Tensor:
    """Refuse NaN/inf rewards: one of them would silently turn every weight of the policy into NaN."""
    bad = ~torch.isfinite(scores)
    if bad.any():
        raise ValueError(f"the {what} is NaN or infinite for {int(bad.sum())} of {scores.numel()} responses "
                         f"(e.g. index {int(bad.nonzero()[0, 0])}): expected finite numbers")
    return scores


# ---- KL and friends -------------------------------------------------------------------------------------

def kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor, kind: str = "k1") -> torch.Tensor:
    """Per-token Monte-Carlo estimates of KL(pi || pi_ref) from tokens sampled from pi (Schulman's k1/k2/k3).

    k1 = log pi - log pi_ref        unbiased, can be negative, high variance (the one PPO puts in the reward)
    k2 = (log pi - log pi_ref)^2/2  biased, low variance
    k3 = (r - 1) - log r with r = pi_ref / pi   unbiased and >= 0. expm1 avoids cancellation near r = 1.

    `logp` and `ref_logp` have one shape (no broadcasting).
    """
    same_shape(logp=logp, ref_logp=ref_logp)
    log_ratio = logp - ref_logp
    if kind == "k1":
        return log_ratio
    if kind == "k2":
        return 0.5 * log_ratio ** 2
    if kind == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"kind={kind!r}: expected 'k1', 'k2' or 'k3'")


def exact_kl(logits: torch.Tensor, ref_logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(logits) || softmax(ref_logits)) over the last dimension, exactly."""
    logp, ref_logp = F.log_softmax(logits.float(), -1), F.log_softmax(ref_logits.float(), -1)
    return (logp.exp() * (logp - ref_logp)).sum(-1)


def best_of_n_kl(n: int) -> float:
    """log n - (n - 1)/n nats: the usual formula for KL(best-of-n || pi) (Stiennon et al. 2020), which is an
    upper bound (Beirami et al. 2024), reached when no single answer carries noticeable probability (no ties)."""
    if n < 1:
        raise ValueError(f"n={n}: expected n >= 1")
    return math.log(n) - (n - 1) / n


def whiten(x: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / std over all elements (biased variance); `shift_mean=False` keeps the mean."""
    mean, var = x.mean(), x.var(unbiased=False)
    out = (x - mean) * torch.rsqrt(var + eps)
    return out if shift_mean else out + mean


def win_rate(gold: torch.Tensor, gold_baseline: torch.Tensor) -> tuple[float, float, float]:
    """P(gold > baseline) over paired samples, a tie counting one half; with its 95 % Wilson interval."""
    if gold.shape != gold_baseline.shape or gold.numel() == 0:
        raise ValueError(f"expected two equal, non-empty shapes, got {tuple(gold.shape)} and {tuple(gold_baseline.shape)}")
    wins = (gold > gold_baseline).float().sum() + 0.5 * (gold == gold_baseline).float().sum()
    lo, hi = wilson_interval(float(wins), gold.numel())
    return float(wins) / gold.numel(), lo, hi


# ---- supervised fine-tuning on preferred answers ------------------------------------------------------

def response_nll(prompt_len: int) -> Callable:
    """Loss function for `Trainer`: mean cross-entropy of the response tokens only (the prompt is given)."""
    def loss_fn(model: GPT, seq: torch.Tensor) -> torch.Tensor:
        return -response_logprobs(model, seq, prompt_len).mean()
    return loss_fn


def row_batches(rows: torch.Tensor, batch: int, seed: int = 0) -> Callable[[int], torch.Tensor]:
    """A `get_batch(step)` for `Trainer` that draws `batch` random rows of `rows`, reproducibly per step."""
    def get_batch(step: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
        return rows[torch.randint(len(rows), (batch,), generator=gen)]
    return get_batch


# ---- the held-out evaluation --------------------------------------------------------------------------

class Evaluator:
    """Judges a policy on fixed held-out prompts with a fixed sampling seed (common random numbers), against
    reference samples drawn once. Metrics: gold (the judge), proxy (the reward model), KL to the reference
    (nats per response, summed exactly over the sampled positions), and the gold win rate vs the reference.
    """

    def __init__(self, ref: GPT, prompts: torch.Tensor, response_len: int, judge, decode: Callable,
                 reward_model=None, seed: int = 1234):
        self.ref, self.prompts, self.response_len = ref, prompts, response_len
        self.judge, self.decode, self.reward_model, self.seed = judge, decode, reward_model, seed
        self.ref_seq = self.sample(ref)
        self.ref_gold = self.gold(self.ref_seq)

    def sample(self, policy: GPT) -> torch.Tensor:
        return sample_responses(policy, self.prompts, self.response_len, torch.Generator().manual_seed(self.seed))

    def texts(self, seq: torch.Tensor) -> list[str]:
        return [self.decode(row.tolist()) for row in seq]

    def gold(self, seq: torch.Tensor) -> torch.Tensor:
        return check_rewards(self.judge.score(self.texts(seq)), "judge's score")

    @torch.no_grad()
    def sequence_kl(self, policy: GPT, seq: torch.Tensor, ref: GPT | None = None) -> torch.Tensor:
        """KL(policy || ref) per response, summed exactly over its sampled positions; `ref` defaults to the
        evaluator's reference (pass another model, e.g. the SFT model, to measure the distance from it)."""
        P, ref = self.prompts.shape[1], ref if ref is not None else self.ref
        kl = [exact_kl(policy(s[:, :-1])[:, P - 1:], ref(s[:, :-1])[:, P - 1:]).sum(1) for s in seq.split(256)]
        return torch.cat(kl)

    @torch.no_grad()
    def __call__(self, policy: GPT) -> dict[str, float]:
        seq = self.sample(policy)
        return self.metrics(seq, self.sequence_kl(policy, seq).mean().item())

    @torch.no_grad()
    def metrics(self, seq: torch.Tensor, kl: float) -> dict[str, float]:
        """Metrics of given samples (one per held-out prompt) whose KL to the reference is known."""
        gold = self.gold(seq)
        win, lo, hi = win_rate(gold, self.ref_gold)
        out = {"gold": gold.mean().item(), "kl": kl, "win": win, "win_lo": lo, "win_hi": hi,
               "distinct_words": distinct_fraction(self.texts(seq))}
        if self.reward_model is not None:
            out["proxy"] = self.reward_model.score(seq).mean().item()
        return out


    @torch.no_grad()
    def best_of_n(self, reward_model, ns: Sequence[int]) -> list[dict[str, float]]:
        """Best-of-n with the reward model: for each held-out prompt draw max(ns) reference samples and keep
        the one the RM likes best among the first n. No training at all. "kl" is the bound log n - (n-1)/n
        (`best_of_n_kl`), not a measurement; "repeated_answers" counts, over all prompts, answers among the
        first n that repeat an earlier answer to the same prompt: the bound is tight when that is 0."""
        n_max, B = max(ns), len(self.prompts)
        gen = torch.Generator().manual_seed(self.seed + 1)
        seqs = torch.stack([sample_responses(self.ref, self.prompts, self.response_len, gen) for _ in range(n_max)])
        proxy = reward_model.score(seqs.flatten(0, 1)).view(n_max, B).cpu()
        rows = []
        answers = [[tuple(seqs[i, b].tolist()) for i in range(n_max)] for b in range(B)]
        for n in ns:
            best = proxy[:n].argmax(0)
            repeats = sum(n - len(set(a[:n])) for a in answers)
            rows.append({"n": n, **self.metrics(seqs[best, torch.arange(B)], best_of_n_kl(n)),
                         "repeated_answers": repeats})
        return rows


def distinct_fraction(texts: Sequence[str]) -> float:
    """Distinct words / all words over a set of texts: falls towards 0 when the text degenerates into repeats."""
    ws = [w for t in texts for w in t.lower().split()]
    return len(set(ws)) / max(1, len(ws))


def frozen_params_unchanged(ref: GPT, snapshot: dict[str, torch.Tensor]) -> bool:
    """True when every tensor of `ref` still equals `snapshot` (a state_dict clone taken before training)."""
    return all(torch.equal(v, snapshot[k]) for k, v in ref.state_dict().items())


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}

