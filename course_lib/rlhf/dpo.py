"""DPO (Rafailov et al. 2023): learn from preference pairs directly, without a reward model or sampling.

The KL-regularised RLHF objective has a closed-form optimum, pi*(y) proportional to pi_ref(y) exp(r(y)/beta).
Turned around, every policy defines an implicit reward r(y) = beta log(pi(y)/pi_ref(y)) (up to a per-prompt
constant that cancels in a comparison). Put that reward into the Bradley-Terry loss and you get

    L = -log sigmoid(beta * [(log pi(y+) - log pi_ref(y+)) - (log pi(y-) - log pi_ref(y-))])

with log-probabilities summed over the response tokens. At the start pi = pi_ref, so the loss is exactly ln 2,
and its gradient is not zero: it pushes log pi(y+) up and log pi(y-) down with weight beta / 2.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..gpt.model import GPT
from .preferences import PreferenceData
from ..core.checks import integer, non_empty, real, same_shape
from ..core.presets import Presets
from .loop import response_logprobs
from ..core.train import History, Trainer, TrainConfig


@dataclass
class DPOConfig(Presets):
    beta: float = 0.1
    epochs: float = 1.0          # one pass over lesson 10's ~5,000 pairs: as many steps as two passes over 2,500
    batch: int = 32
    lr: float = 1e-4             # far above the 1e-6 used for billion-parameter models: this one is tiny
    eval_every: int = 50         # steps

    PRESETS = {
        "smoke": dict(epochs=1.0, batch=16, eval_every=5),
        "lesson": dict(),
        "gpu": dict(epochs=2.0, batch=64, eval_every=100),
    }

    def __post_init__(self):
        real("beta", self.beta, 0, above=True)
        real("epochs", self.epochs, 0, above=True)
        integer("batch", self.batch, 1)
        real("lr", self.lr, 0, above=True)
        integer("eval_every", self.eval_every, 0)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DPO loss from summed response log-probs (B,). Returns (loss, implicit reward of chosen, of rejected).

    The four tensors must have one shape (no broadcasting) and at least one pair; beta must be > 0."""
    same_shape(policy_chosen=policy_chosen, policy_rejected=policy_rejected, ref_chosen=ref_chosen,
               ref_rejected=ref_rejected)
    non_empty("policy_chosen", policy_chosen)
    beta = real("beta", beta, 0, above=True)
    chosen_reward = beta * (policy_chosen - ref_chosen)
    rejected_reward = beta * (policy_rejected - ref_rejected)
    loss = -F.logsigmoid(chosen_reward - rejected_reward).mean()
    return loss, chosen_reward.detach(), rejected_reward.detach()


@torch.no_grad()
def sequence_logprobs(model: GPT, seq: torch.Tensor, prompt_len: int, batch: int = 256) -> torch.Tensor:
    """Summed response log-probability of each row, without gradients (the frozen reference's side)."""
    return torch.cat([response_logprobs(model, s, prompt_len).sum(1) for s in seq.split(batch)])


def train_dpo(policy: GPT, ref: GPT, data: PreferenceData, cfg: DPOConfig, device: torch.device,
              evaluate: Callable[[GPT], dict] | None = None, seed: int = 0) -> tuple[History, list[dict]]:
    """Optimise `policy` in place on `data` with the DPO loss. Returns (history, per-step DPO statistics)."""
    P = data.prompt_len
    data = data.to(device)
    ref_chosen, ref_rejected = sequence_logprobs(ref, data.chosen, P), sequence_logprobs(ref, data.rejected, P)
    steps = max(1, int(cfg.epochs * len(data) / cfg.batch))
    stats: list[dict] = []

    def get_batch(step: int):
        rows = torch.randint(len(data), (cfg.batch,), generator=torch.Generator().manual_seed(seed * 7919 + step))
        return data.chosen[rows], data.rejected[rows], ref_chosen[rows], ref_rejected[rows]

    def loss_fn(model: GPT, batch) -> torch.Tensor:
        chosen, rejected, ref_c, ref_r = batch
        logp = response_logprobs(model, torch.cat([chosen, rejected]), P).sum(1)
        loss, r_c, r_r = dpo_loss(logp[:len(chosen)], logp[len(chosen):], ref_c, ref_r, cfg.beta)
        stats.append({"loss": loss.item(), "reward_chosen": r_c.mean().item(), "reward_rejected": r_r.mean().item(),
                      "reward_accuracy": (r_c > r_r).float().mean().item()})
        return loss

    tcfg = TrainConfig(steps=steps, lr=cfg.lr, warmup=steps // 20, eval_every=cfg.eval_every if evaluate else 0)
    trainer = Trainer(policy, loss_fn, get_batch, tcfg, device=device, eval_fn=evaluate, name="DPO")
    return trainer.fit(), stats
