"""PPO with a KL penalty (and RLOO, its simpler cousin) for the RLHF toy of lesson 10.

One iteration: sample responses from the current policy, score them with the reward model, then take several
epochs of minibatch gradient steps on that fixed batch. Per token t of a response of G tokens:

    reward_t    = -beta * (log pi_old(a_t) - log pi_ref(a_t))     (+ RM score at t = G-1 only)
    delta_t     = reward_t + gamma V(s_{t+1}) - V(s_t)              (V(s_G) = 0)
    advantage_t = delta_t + gamma lambda advantage_{t+1}           (GAE, then whitened over the batch)
    ratio_t     = pi_theta(a_t) / pi_old(a_t)                      (exactly 1 on the first minibatch)
    loss        = mean max(-A ratio, -A clip(ratio, 1 +- eps)) + vf_coef * clipped value loss

The KL sits in the reward (not in the loss) so that the policy is rewarded for the whole objective
E[score] - beta KL(pi || pi_ref). The value head is a zero-initialised linear layer on the policy's trunk.
RLOO (`advantage="rloo"`) drops the value head: it samples k answers per prompt and uses the mean reward of
the other k-1 as each one's baseline, with a single gradient step per batch (plain REINFORCE). GRPO
(`advantage="grpo"`, DeepSeekMath 2024) does the same with the group's mean as the baseline and divides by the
group's standard deviation (lesson 11 uses both, with a program as the reward).

The loop is `course_lib.core.train.Trainer`: `PPORollouts` is its `get_batch`, collecting a fresh rollout at the
first step of every iteration and handing out minibatches after that.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..gpt.model import GPT
from ..core.checks import integer, non_empty, real, same_shape
from ..core.presets import Presets
from .loop import check_rewards, kl_estimate, response_logprobs, sample_responses, whiten
from ..core.runtime import autocast
from ..core.train import History, Trainer, TrainConfig


@dataclass
class PPOConfig(Presets):
    iterations: int = 40
    batch: int = 64               # responses per rollout
    minibatch: int = 32
    epochs: int = 4               # passes over each rollout; 1 epoch of 1 minibatch = plain policy gradient
    lr: float = 5e-5
    kl_coef: float = 0.1          # beta: the price of one nat of KL, in reward-model standard deviations
    clip: float = 0.2
    clip_value: float = 0.2
    vf_coef: float = 0.1
    gamma: float = 1.0
    lam: float = 0.95
    advantage: str = "gae"        # "gae" (PPO), "rloo" (leave-one-out baseline) or "grpo" (group z-score);
                                  # the last two need no value head
    rloo_k: int = 4               # samples per prompt for "rloo" and "grpo"
    eval_every: int = 10          # iterations between held-out evaluations

    PRESETS = {
        "smoke": dict(iterations=4, batch=16, minibatch=8, epochs=2, eval_every=2),
        "lesson": dict(),
        "gpu": dict(iterations=200, batch=256, minibatch=64, eval_every=20),
    }

    def __post_init__(self):
        if self.advantage not in ("gae", "rloo", "grpo"):
            raise ValueError(f"advantage={self.advantage!r}: expected 'gae', 'rloo' or 'grpo'")
        for name in ("iterations", "batch", "minibatch", "epochs"):
            integer(name, getattr(self, name), 1)
        integer("rloo_k", self.rloo_k, 2)      # a leave-one-out baseline needs another sample to leave in
        integer("eval_every", self.eval_every, 0)
        for name in ("lr", "clip", "clip_value"):
            real(name, getattr(self, name), 0, above=True)
        for name in ("kl_coef", "vf_coef", "gamma", "lam"):
            real(name, getattr(self, name), 0)
        if self.batch % self.minibatch or (self.advantage != "gae" and self.batch % self.rloo_k):
            raise ValueError(f"batch={self.batch} must be a multiple of minibatch={self.minibatch} (and of rloo_k)")


# ---- the pure pieces (known-answer tested) -------------------------------------------------------------

def kl_penalised_rewards(scores: torch.Tensor, logp: torch.Tensor, ref_logp: torch.Tensor,
                         kl_coef: float) -> torch.Tensor:
    """Per-token rewards (B, G): -beta * k1 everywhere, plus the sequence score on the last token."""
    rewards = -kl_coef * kl_estimate(logp, ref_logp, "k1")
    rewards[:, -1] += scores
    return rewards


def gae(rewards: torch.Tensor, values: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over (B, T) tensors. Returns (advantages, returns = A + V)."""
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        advantages[:, t] = running
    return advantages, advantages + values


def ppo_policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                    clip: float = 0.2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate. Returns (loss, fraction of tokens where the clip is active, ratio).

    `logp`, `old_logp` and `advantages` share one shape, e.g. (B, G) per token (no broadcasting)."""
    same_shape(logp=logp, old_logp=old_logp, advantages=advantages)
    non_empty("logp", logp)
    ratio = torch.exp(logp - old_logp)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - clip, 1 + clip)
    return torch.max(unclipped, clipped).mean(), (clipped > unclipped).float().mean(), ratio


def ppo_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
                   clip: float = 0.2) -> torch.Tensor:
    """Half the squared error, pessimistic over the value clipped to old_values +- clip (one shape for all three)."""
    same_shape(values=values, old_values=old_values, returns=returns)
    non_empty("values", values)
    clipped = old_values + (values - old_values).clamp(-clip, clip)
    return 0.5 * torch.max((values - returns) ** 2, (clipped - returns) ** 2).mean()


def rloo_advantages(rewards: torch.Tensor, k: int) -> torch.Tensor:
    """Leave-one-out advantages for rewards laid out as k consecutive samples per prompt: R_i - mean_{j!=i} R_j."""
    if k < 2 or rewards.numel() % k:
        raise ValueError(f"k={k}: expected k >= 2 dividing the {rewards.numel()} rewards")
    grouped = rewards.view(-1, k)
    baseline = (grouped.sum(1, keepdim=True) - grouped) / (k - 1)
    return (grouped - baseline).view_as(rewards)


def group_advantages(rewards: torch.Tensor, k: int, scale: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """GRPO's group-relative advantages for k consecutive samples per prompt: (R_i - group mean) / (group std +
    eps), the std unbiased (as TRL's GRPOTrainer); `scale=False` keeps only the mean baseline (Dr. GRPO). A group
    whose rewards are all equal gets advantage 0: nothing to learn from it. RLOO is k/(k-1) times the unscaled form."""
    if k < 2 or rewards.numel() % k:
        raise ValueError(f"k={k}: expected k >= 2 dividing the {rewards.numel()} rewards")
    grouped = rewards.view(-1, k)
    centred = grouped - grouped.mean(1, keepdim=True)
    if scale:
        centred = centred / (grouped.std(1, keepdim=True) + eps)
    return centred.view_as(rewards)


# ---- the agent and the rollouts -----------------------------------------------------------------------

class PolicyWithValue(nn.Module):
    """The policy GPT plus a value head on its last hidden state (zero-initialised: V = 0 at the start)."""

    def __init__(self, policy: GPT):
        super().__init__()
        self.policy = policy
        self.value_head = nn.Linear(policy.cfg.n_embd, 1)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)

    def forward(self, seq: torch.Tensor, prompt_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, values) at the G positions that choose the response tokens: (B, G, V), (B, G)."""
        h = self.policy.hidden(seq[:, :-1])[:, prompt_len - 1:]
        return self.policy.lm_head(h).float(), self.value_head(h).squeeze(-1).float()


@dataclass
class PPOLog:
    iterations: list[dict] = field(default_factory=list)    # one row per rollout
    minibatches: list[dict] = field(default_factory=list)   # one row per gradient step
    evals: list[dict] = field(default_factory=list)         # held-out evaluations, with "iteration"

    def series(self, rows: str, key: str) -> tuple[list[int], list[float]]:
        table = getattr(self, rows)
        return [r["iteration"] for r in table if key in r], [r[key] for r in table if key in r]


class PPORollouts:
    """PPO's data. `collect_if_due` is a Trainer "on_step_start" callback: at the first step of each iteration
    it samples a fresh rollout with the current policy. Calling the object is `get_batch`: that iteration's
    minibatches, epoch after epoch.

    Old log-probs and values are computed in the same minibatch chunks (same shapes, same mode) that the
    first epoch trains on, so the first minibatch's ratio is exactly 1, bit for bit.
    """

    def __init__(self, agent: PolicyWithValue, ref: GPT, reward_fn: Callable, prompts: torch.Tensor,
                 response_len: int, cfg: PPOConfig, log: PPOLog, seed: int = 0):
        self.agent, self.ref, self.reward_fn, self.prompts = agent, ref, reward_fn, prompts
        self.response_len, self.cfg, self.log, self.seed = response_len, cfg, log, seed
        self.chunks = cfg.batch // cfg.minibatch
        self.steps_per_iteration = cfg.epochs * self.chunks
        self.data: dict[str, torch.Tensor] = {}
        self.order: list[torch.Tensor] = []     # row order of each epoch; epoch 0 in collection order

    def collect_if_due(self, trainer) -> None:
        iteration, k = divmod(trainer.step, self.steps_per_iteration)
        if k == 0:
            self.collect(iteration)

    def __call__(self, step: int) -> dict:
        iteration, k = divmod(step, self.steps_per_iteration)
        if not self.data:
            raise RuntimeError("no rollout collected: attach collect_if_due as the Trainer's on_step_start callback")
        epoch, m = divmod(k, self.chunks)
        rows = self.order[epoch].view(self.chunks, -1)[m]
        return {**{name: t[rows] for name, t in self.data.items()}, "first": k == 0, "iteration": iteration}

    @torch.no_grad()
    def collect(self, iteration: int) -> None:
        cfg, P = self.cfg, self.prompts.shape[1]
        gen = torch.Generator().manual_seed(self.seed * 100_003 + iteration)
        per_prompt = cfg.rloo_k if cfg.advantage != "gae" else 1
        pick = torch.randint(len(self.prompts), (cfg.batch // per_prompt,), generator=gen)
        prompts = self.prompts[pick].repeat_interleave(per_prompt, 0)
        device = next(self.agent.parameters()).device
        seq = sample_responses(self.agent.policy, prompts, self.response_len, gen).to(device)
        self.order = [torch.arange(cfg.batch)] + [torch.randperm(cfg.batch, generator=gen)
                                                  for _ in range(cfg.epochs - 1)]
        logp = torch.empty(cfg.batch, self.response_len, device=device)
        values = torch.empty_like(logp)
        with autocast(device):
            for rows in self.order[0].view(self.chunks, -1):
                logits, v = self.agent(seq[rows], P)
                logp[rows] = F.log_softmax(logits, -1).gather(-1, seq[rows, P:, None]).squeeze(-1)
                values[rows] = v
            ref_logp = response_logprobs(self.ref, seq, P).float()
        scores = check_rewards(self.reward_fn(seq).float(), "reward model's score")
        kl = kl_estimate(logp, ref_logp, "k1").sum(1)
        if cfg.advantage == "gae":
            advantages, returns = gae(kl_penalised_rewards(scores, logp, ref_logp, cfg.kl_coef), values,
                                      cfg.gamma, cfg.lam)
            advantages = whiten(advantages)
        else:
            sequence_reward = scores - cfg.kl_coef * kl
            group = rloo_advantages(sequence_reward, per_prompt) if cfg.advantage == "rloo" \
                else group_advantages(sequence_reward, per_prompt)
            advantages = group[:, None].expand_as(logp).contiguous()
            returns = torch.zeros_like(values)
        self.data = {"seq": seq, "old_logp": logp, "old_values": values, "advantages": advantages,
                     "returns": returns}
        self.log.iterations.append({
            "iteration": iteration, "score": scores.mean().item(), "kl": kl.mean().item(),
            "kl_k3": kl_estimate(logp, ref_logp, "k3").sum(1).mean().item(),
            "rlhf_reward": (scores - cfg.kl_coef * kl).mean().item(),
            "sampled_entropy": -logp.sum(1).mean().item()})


def ppo_objective(cfg: PPOConfig, prompt_len: int, log: PPOLog) -> Callable:
    """Loss function for Trainer: clipped policy loss + vf_coef * clipped value loss, logging each step."""
    def loss_fn(agent: PolicyWithValue, batch: dict) -> torch.Tensor:
        seq = batch["seq"]
        logits, values = agent(seq, prompt_len)
        logp_all = F.log_softmax(logits, -1)
        logp = logp_all.gather(-1, seq[:, prompt_len:, None]).squeeze(-1)
        pg_loss, clipfrac, ratio = ppo_policy_loss(logp, batch["old_logp"], batch["advantages"], cfg.clip)
        loss = pg_loss
        row = {"iteration": batch["iteration"], "pg_loss": pg_loss.item(), "clipfrac": clipfrac.item(),
               "approxkl": 0.5 * ((logp - batch["old_logp"]) ** 2).mean().item(),
               "entropy": -(logp_all.exp() * logp_all).sum(-1).mean().item()}
        if cfg.advantage == "gae":
            vf_loss = ppo_value_loss(values, batch["old_values"], batch["returns"], cfg.clip_value)
            loss = loss + cfg.vf_coef * vf_loss
            row["vf_loss"] = vf_loss.item()
        if batch["first"]:
            row["first_ratio_dev"] = (ratio - 1).abs().max().item()
        log.minibatches.append(row)
        return loss
    return loss_fn


def train_ppo(policy: GPT, ref: GPT, reward_fn: Callable, prompts: torch.Tensor, response_len: int,
              cfg: PPOConfig, device: torch.device, evaluate: Callable[[GPT], dict] | None = None,
              seed: int = 0, name: str = "PPO") -> tuple[PolicyWithValue, PPOLog, History]:
    """Optimise `policy` in place against `reward_fn(seq) -> (B,) scores`; `ref` stays frozen.

    `evaluate(policy) -> metrics` runs every `cfg.eval_every` iterations and at the end (not before: the
    starting policy is the reference, whose metrics the caller already has).
    """
    prompt_len = prompt_length(prompts)
    agent = PolicyWithValue(policy).to(device)
    log = PPOLog()
    rollouts = PPORollouts(agent, ref, reward_fn, prompts, response_len, cfg, log, seed)
    steps = cfg.iterations * rollouts.steps_per_iteration
    tcfg = TrainConfig(steps=steps, lr=cfg.lr, schedule="constant", grad_clip=1.0,
                       eval_every=cfg.eval_every * rollouts.steps_per_iteration, log_every=1)

    def eval_fn(model: PolicyWithValue) -> dict:
        metrics = evaluate(model.policy)
        log.evals.append({"iteration": len(log.iterations), **metrics})
        return metrics

    trainer = Trainer(agent, ppo_objective(cfg, prompt_len, log), rollouts, tcfg, device=device,
                      eval_fn=eval_fn if evaluate is not None else None, name=name)
    trainer.add_callback("on_step_start", rollouts.collect_if_due)
    return agent, log, trainer.fit()


def prompt_length(prompts: torch.Tensor) -> int:
    if prompts.dim() != 2 or prompts.shape[1] == 0:
        raise ValueError(f"prompts must be (N, P) token ids with P >= 1, got shape {tuple(prompts.shape)}")
    return prompts.shape[1]
