"""Preferences and the reward model of lesson 10.

People do not give answers a number; they say which of two answers they like better, and they are not
perfectly consistent. The Bradley-Terry model describes such choices: if answer a has quality g(a),

    P(a is preferred to b) = sigmoid((g(a) - g(b)) / tau)

so clear differences are judged reliably and near-ties are a coin flip. Our simulated labeller samples its
choices from exactly this model on the judge's gold score, and, like a real labelling interface with an
"about the same" button, skips pairs whose gold scores differ by less than `tie_margin`.

Because the labels are noisy, even a perfect reward model cannot agree with all of them: its expected
agreement, the mean of sigmoid(|g(a) - g(b)| / tau), is the noise ceiling.

The reward model is the policy's own GPT trunk with a scalar head, averaged over the response positions,
trained with the Bradley-Terry loss -log sigmoid(r(chosen) - r(rejected)), then shifted and scaled so that
reference samples score mean 0, std 1 (so a KL coefficient means the same thing whatever the RM's scale).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..gpt.model import GPT
from ..core.checks import non_empty, same_shape
from ..core.presets import Presets
from .loop import check_rewards, rl_copy, sample_responses
from ..core.train import Trainer, TrainConfig


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """Mean of -log sigmoid(r_chosen - r_rejected) (softplus form: no overflow for large margins).

    One reward per pair: both tensors have one shape (no broadcasting) and at least one element."""
    same_shape(r_chosen=r_chosen, r_rejected=r_rejected)
    non_empty("r_chosen", r_chosen)
    return F.softplus(r_rejected - r_chosen).mean()


def noise_ceiling(gold_a: torch.Tensor, gold_b: torch.Tensor, tau: float = 1.0) -> float:
    """Expected agreement of the best possible reward model (the gold order itself) with sampled labels."""
    return torch.sigmoid((gold_a - gold_b).abs() / tau).mean().item()


def sample_labels(gold_a: torch.Tensor, gold_b: torch.Tensor, tau: float = 1.0, tie_margin: float = 0.0,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The simulated human's choices: (a_preferred, kept), both bool. Skipped pairs (near-ties) have kept=False."""
    if tau <= 0:
        raise ValueError(f"tau={tau}: expected a positive temperature")
    check_rewards(gold_a, "gold score")
    check_rewards(gold_b, "gold score")
    p_a = torch.sigmoid((gold_a - gold_b) / tau)
    a_preferred = torch.rand(p_a.shape, generator=generator) < p_a
    return a_preferred, (gold_a - gold_b).abs() >= tie_margin


@dataclass
class PreferenceData:
    """Labelled pairs, one prompt per pair: chosen/rejected token rows (N, P + G) and their gold scores."""
    prompt_len: int
    chosen: torch.Tensor
    rejected: torch.Tensor
    gold_chosen: torch.Tensor
    gold_rejected: torch.Tensor
    tau: float

    def __len__(self) -> int:
        return len(self.chosen)

    def subset(self, rows: torch.Tensor) -> "PreferenceData":
        return PreferenceData(self.prompt_len, self.chosen[rows], self.rejected[rows], self.gold_chosen[rows],
                              self.gold_rejected[rows], self.tau)

    def to(self, device: torch.device | str) -> "PreferenceData":
        return PreferenceData(self.prompt_len, self.chosen.to(device), self.rejected.to(device),
                              self.gold_chosen, self.gold_rejected, self.tau)

    def split(self, held_out: int) -> tuple["PreferenceData", "PreferenceData"]:
        """(train, test); every pair has its own prompt, so no prompt is shared across the split."""
        if not 0 < held_out < len(self):
            raise ValueError(f"held_out={held_out}: expected between 1 and {len(self) - 1}")
        rows = torch.arange(len(self))
        return self.subset(rows[held_out:]), self.subset(rows[:held_out])

    @property
    def label_agreement(self) -> float:
        """How often the human's label agrees with the noiseless gold order."""
        return (self.gold_chosen > self.gold_rejected).float().mean().item()

    @property
    def ceiling(self) -> float:
        return noise_ceiling(self.gold_chosen, self.gold_rejected, self.tau)


@torch.no_grad()
def collect_preferences(ref: GPT, prompts: torch.Tensor, response_len: int, judge, decode: Callable,
                        tau: float = 1.0, tie_margin: float = 0.0, seed: int = 0) -> PreferenceData:
    """Two reference samples per prompt, labelled by the simulated human (pairs it calls ties are dropped)."""
    gen = torch.Generator().manual_seed(seed)
    a = sample_responses(ref, prompts, response_len, gen)
    b = sample_responses(ref, prompts, response_len, gen)
    gold_a = judge.score([decode(r.tolist()) for r in a])
    gold_b = judge.score([decode(r.tolist()) for r in b])
    a_wins, kept = sample_labels(gold_a, gold_b, tau, tie_margin, gen)
    chosen = torch.where(a_wins[:, None], a, b)[kept].cpu()
    rejected = torch.where(a_wins[:, None], b, a)[kept].cpu()
    gold_c, gold_r = torch.where(a_wins, gold_a, gold_b)[kept], torch.where(a_wins, gold_b, gold_a)[kept]
    return PreferenceData(prompts.shape[1], chosen, rejected, gold_c, gold_r, tau)


# ---- the reward model ----------------------------------------------------------------------------------

@dataclass
class RewardConfig(Presets):
    # prompts offered to the labeller; near-ties are then dropped, leaving a bit under half. The RM is data-bound:
    # 6,000 left it at 0.68-0.74 on held-out pairs over four seeds (lesson 10 asks 0.7); 12,000 gave 0.73-0.76
    pairs: int = 12000
    held_out: int = 500         # labelled pairs kept for testing, never trained on
    tau: float = 1.0            # the labeller's noise: larger = more coin flips
    tie_margin: float = 2.0     # gold differences below this are "about the same" and skipped
    epochs: int = 2
    batch: int = 32
    lr: float = 3e-4

    PRESETS = {
        "smoke": dict(pairs=256, held_out=24, epochs=1, batch=16),
        "lesson": dict(),
        "gpu": dict(pairs=20000, held_out=2000, epochs=2, batch=64),
    }


class RewardModel(nn.Module):
    """r(prompt, response): a GPT trunk, mean-pooled over the response positions, then a linear head."""

    def __init__(self, trunk: GPT, prompt_len: int):
        super().__init__()
        self.trunk, self.prompt_len = rl_copy(trunk), prompt_len
        d = trunk.cfg.n_embd
        self.head = nn.Linear(d, 1)
        nn.init.normal_(self.head.weight, std=1 / math.sqrt(d + 1))   # OpenAI's 2019 reward-head init
        nn.init.zeros_(self.head.bias)
        # set by `normalise`: score = (raw - offset) / scale
        self.register_buffer("offset", torch.zeros(()))
        self.register_buffer("scale", torch.ones(()))

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """Raw reward (B,) of prompt + response rows (B, P + G)."""
        h = self.trunk.hidden(seq)[:, self.prompt_len:]    # every response position has read the prompt
        return self.head(h.mean(1)).squeeze(-1).float()

    @torch.no_grad()
    def score(self, seq: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """Normalised reward, evaluated in eval mode and in chunks."""
        was_training = self.training
        self.eval()
        raw = torch.cat([self(s) for s in seq.split(batch)])
        self.train(was_training)
        return (raw - self.offset) / self.scale

    @torch.no_grad()
    def normalise(self, reference_seq: torch.Tensor) -> None:
        """Shift and scale so that reference samples score mean 0 and std 1."""
        self.offset.zero_()
        self.scale.fill_(1.0)
        raw = self.score(reference_seq)
        self.offset.copy_(raw.mean())
        self.scale.copy_(raw.std().clamp_min(1e-6))


def pair_accuracy(rm: RewardModel, data: PreferenceData) -> dict[str, float]:
    """How often the RM ranks a pair like the human's label, and like the noiseless gold order."""
    margin = (rm.score(data.chosen) - rm.score(data.rejected)).cpu()
    gold_margin = data.gold_chosen - data.gold_rejected
    return {"acc_labels": (margin > 0).float().mean().item(),
            "acc_gold": ((margin > 0) == (gold_margin > 0)).float().mean().item()}


def train_reward_model(trunk: GPT, train: PreferenceData, test: PreferenceData, cfg: RewardConfig,
                       device: torch.device, seed: int = 0) -> tuple[RewardModel, object]:
    """Fit a RewardModel on `train` with the Bradley-Terry loss (Trainer: progress bar, live plot).

    Returns (reward model, training history); the history's evaluations hold held-out accuracies.
    """
    rm = RewardModel(trunk, train.prompt_len).to(device)
    train, test = train.to(device), test.to(device)
    steps = max(1, cfg.epochs * len(train) // cfg.batch)

    def get_batch(step: int):
        rows = torch.randint(len(train), (cfg.batch,), generator=torch.Generator().manual_seed(seed * 7919 + step))
        return train.chosen[rows], train.rejected[rows]

    def loss_fn(model: RewardModel, batch) -> torch.Tensor:
        chosen, rejected = batch
        r = model(torch.cat([chosen, rejected]))            # one forward for both halves
        return bradley_terry_loss(r[:len(chosen)], r[len(chosen):])

    def eval_fn(model: RewardModel) -> dict[str, float]:
        loss = bradley_terry_loss(model.score(test.chosen), model.score(test.rejected)).item()
        return {**pair_accuracy(model, test), "test_loss": loss}

    tcfg = TrainConfig(steps=steps, lr=cfg.lr, warmup=steps // 20, eval_every=max(1, steps // 4))
    history = Trainer(rm, loss_fn, get_batch, tcfg, device=device, eval_fn=eval_fn, name="reward model").fit()
    return rm, history
