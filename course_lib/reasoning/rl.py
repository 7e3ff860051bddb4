"""RL with a verifiable reward (RLVR): the policy samples K answers per prompt, a program checks each one, and the
group's own answers are the baseline (GRPO, DeepSeekMath 2024; RLOO). No reward model, no value head.

    run = rl_with_verifier(start, split, "scratchpad", tok, rl_config(recipe), device, check="exact")
    run.policy          # the trained policy (start stays untouched: a frozen copy is the KL reference)
    run.log             # lesson 10's PPOLog: per iteration the mean reward ("score") and KL; evals with pass@1

The loop itself is lesson 10's `train_ppo` with one epoch of one minibatch per rollout (plain REINFORCE with a
group baseline, so the PPO ratio is exactly 1 and the clip never acts) and the advantage "rloo" or "grpo"
(`course_lib.rlhf.ppo`); the optional KL to the start (`kl_coef`, beta) is folded into each answer's reward.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..gpt.model import GPT
from ..rlhf.loop import frozen_copy, frozen_params_unchanged, rl_copy, snapshot
from ..rlhf.ppo import PPOConfig, PPOLog, train_ppo
from .addition import (ProblemSplit, completion_length, decode_completions, encode_prompts, right_length,
                       sequence_reward, verify)
from .sampling import sample_completions


@dataclass
class RLRun:
    policy: GPT
    log: PPOLog
    check: str
    reference_unchanged: bool

    def rewards(self) -> tuple[list[int], list[float]]:
        """(iteration, mean reward of that iteration's rollout)."""
        return self.log.series("iterations", "score")


def rl_config(recipe, **overrides) -> PPOConfig:
    """Lesson 10's PPOConfig for a `RLVRRecipe`: one epoch of one minibatch (the whole rollout) per iteration, so
    each iteration is one REINFORCE step with the group baseline `recipe.advantage`."""
    batch = recipe.prompts * recipe.k
    fields = dict(iterations=recipe.iterations, batch=batch, minibatch=batch, epochs=1, lr=recipe.lr,
                  kl_coef=recipe.beta, advantage=recipe.advantage, rloo_k=recipe.k, eval_every=recipe.eval_every)
    return PPOConfig(**{**fields, **overrides})


def checked_rates(policy: GPT, problems: torch.Tensor, fmt: str, tok, n: int, seed: int) -> dict[str, float]:
    """On `problems` with `n` samples each at temperature 1 (a fixed sampling seed): the fraction exactly right
    (pass@1) and the fraction whose answer has the right number of digits (what the format-only reward pays)."""
    seq = sample_completions(policy, problems, fmt, tok, n, generator=torch.Generator().manual_seed(seed))
    texts, pairs = decode_completions(seq, tok), problems.repeat_interleave(n, 0).tolist()
    return {"pass1": sum(verify(t, a, b, fmt) for t, (a, b) in zip(texts, pairs)) / len(texts),
            "right_length": sum(right_length(t, a, b, fmt) for t, (a, b) in zip(texts, pairs)) / len(texts)}


def rl_with_verifier(start: GPT, split: ProblemSplit, fmt: str, tok, cfg: PPOConfig, device: torch.device,
                     check: str = "exact", eval_problems: torch.Tensor | None = None, eval_samples: int = 4,
                     seed: int = 0, name: str | None = None) -> RLRun:
    """Optimise a copy of `start` against the program reward `check` ("exact": the verifier; "length": the
    format-only check) on `split.train` prompts. Every `cfg.eval_every` iterations (and at 0 and the end):
    pass@1 and the right-length rate on `eval_problems` (default: the validation problems)."""
    policy, ref = rl_copy(start), frozen_copy(start)
    ref_state = snapshot(ref)
    problems = split.val if eval_problems is None else eval_problems

    def evaluate(p: GPT) -> dict:
        return checked_rates(p, problems, fmt, tok, eval_samples, seed + 17)

    start_metrics = evaluate(policy)
    _, log, _ = train_ppo(policy, ref, sequence_reward(tok, fmt, check), encode_prompts(split.train, tok),
                          completion_length(fmt), cfg, device, evaluate=evaluate, seed=seed,
                          name=name or f"RL ({check} reward)")
    log.evals.insert(0, {"iteration": 0, **start_metrics})
    return RLRun(policy, log, check, frozen_params_unchanged(ref, ref_state))
