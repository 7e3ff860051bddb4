# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 10 · RLHF in miniature: teaching a Shakespeare bot what people like
#
# | ~1986–2010 | 1997 → 2010s | 2014 | 2015 | 2017 | 2018+ | 2022 |
# |---|---|---|---|---|---|---|
# | RNN | LSTM | Seq2Seq | Attention | Transformer | GPT / BERT | **RLHF ← you are here** |
#
# Lesson 06's GPT learned to *continue* text: give it a Shakespeare fragment and it writes something that
# looks like more Shakespeare. Lesson 07's BERT learned to *judge* text: is this sentence positive or
# negative? Neither of them knows what anybody *wants*. A next-token predictor imitates its training data,
# the good and the bad alike; nothing in "predict the next character" says "and make it pleasant to read".
#
# The step that turned GPT-3 into ChatGPT (2022) was to fine-tune the model on **what people prefer**:
#
# 1. **Pretraining**: learn the language from a mountain of text (lesson 06; we reuse its model).
# 2. **Supervised fine-tuning (SFT)**: show it good answers and train it to imitate them (lesson 09's loss;
#    there the examples were demonstrations of many tasks, here they are the answers people preferred).
# 3. **Reward model (RM)**: people compare pairs of answers ("A is better than B"); a network learns to
#    predict their choices and turns them into a score.
# 4. **Reinforcement learning (PPO)**: the model writes answers, the RM scores them, and the model is nudged
#    towards higher scores, on a leash (a KL penalty) that keeps it close to where it started.
# 5. **DPO** (2023): a shortcut that learns straight from the pairs, with no reward model and no sampling.
#
# **An analogy.** Picture a young actor who has read every play in the library. They can improvise in the
# style of any of them, but nobody has told them what an audience enjoys. SFT is letting them watch
# recordings of the performances that got applause. The reward model is a critic who sat through many
# shows, noted which of two scenes the audience liked better, and can now guess the audience's taste. PPO
# is rehearsal: the actor improvises, the critic scores, the actor adjusts, while the director holds a
# leash ("stay the actor we hired"), because a critic can be fooled, and an actor who only chases the
# critic's score ends up doing something strange that happens to score well. DPO skips the critic and
# learns straight from the audience's comparisons.
#
# **Our toy.** The "model" is lesson 06's character-level GPT. The "people" are a simulated reader who
# likes *cheerful, readable* text (section 2). The task: continue a 16-character Shakespeare prompt with
# exactly 48 characters that the reader likes, without forgetting how to write. Everything runs on a laptop
# CPU in a few minutes, and every claim is measured against the reader, never against our own reward model.
#
# **One departure from InstructGPT's order.** There, PPO starts from the SFT model and uses it as the reference
# π_ref. Here PPO and DPO start from the *pretrained* model (π_ref = lesson 06's GPT), and SFT is run beside them
# as a third, cheaper method on the same map (section 5; the frontier of section 13). Our pretrained model
# already writes the format the task asks for (48 characters of Shakespeare-like text), which is what SFT buys a
# real chat model; starting all three methods from one point keeps their KL distances comparable. Because that is
# a choice, section 10 measures it the other way too: PPO started from the SFT model, leashed to it, with the same
# β and the same budget, and says what the convenience of one starting point costs on this task.

# %% tags=["parameters"]
import os
profile = os.environ.get("COURSE_PROFILE", "lesson")  # smoke | lesson | gpu
seed = 0

# %%
# Outside the course's repository (Colab, a lesson saved alone) this installs its package first.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("course_lib") is None:
    target = os.environ.get("COURSE_LIB_PIP", "course_lib @ git+https://github.com/llm-evolution-course/rnn-to-rlhf@main")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", target])
    importlib.invalidate_caches()

# %%
import dataclasses
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

from course_lib.core import Trainer, data, interactive, plots
from course_lib.gpt import gguf_model as GGUF
from course_lib.harness.lesson import Lesson
from course_lib.rlhf import (DPOConfig, Evaluator, JudgeConfig, LanguageModelJudge, PPOConfig, RLHFConfig, RewardConfig,
                             SentimentJudge, bradley_terry_loss, collect_preferences, dpo_loss,
                             frozen_copy, frozen_params_unchanged, gae, make_prompts, noise_ceiling, pair_accuracy,
                             ppo_policy_loss, pretrained_policy, response_logprobs, response_nll, rl_copy,
                             rloo_advantages, win_rate,
                             row_batches, sample_labels, sample_responses, sequence_logprobs, snapshot, train_dpo,
                             train_ppo, train_reward_model)

lesson = Lesson("10_rlhf", profile, seed)
device, claims = lesson.device, lesson.claims

# %%
cfg = RLHFConfig.preset(profile)
P, G = cfg.prompt_len, cfg.response_len
text = data.load_shakespeare()
train_text, val_text = data.train_val_split(text)
started = time.perf_counter()
print(cfg)

# %% [markdown]
# ## 1. The starting point: a pretrained policy
#
# In RL language the model is a **policy**: given the text so far (the *state*) it picks the next character
# (the *action*). We take lesson 06's trained char GPT if its checkpoint is in `build/`, otherwise we
# pretrain a small one here with the course's `Trainer` (at `smoke` we always train a tiny one, so CI does
# not depend on lesson 06). Dropout is switched off in every copy: with dropout on, the same text would get
# a different probability each time we score it, and several RLHF quantities below compare two scorings of
# the same text.
#
# We also freeze a copy, **π_ref**. It never trains; it is the "actor we hired" that the leash ties to.

# %%
base, info = pretrained_policy(text, cfg, device, use_cache=profile != "smoke", seed=seed)
tok = info["tokenizer"]
ref = frozen_copy(base)
ref_snapshot = snapshot(ref)
print(f"policy from {info['source']} | val loss {info['val_loss']:.3f} nats/char | "
      f"{base.num_params() / 1e6:.2f} M parameters | context {base.cfg.block_size}")

# %% [markdown]
# ## 2. The "human": a judge we can read
#
# We cannot ask people inside a notebook, so we simulate one. Our reader is a bag-of-words logistic
# regression trained on SST-2, the 67,000 movie-review phrases that people labelled positive or negative
# (the data of lesson 07). Each word has one learned weight; a text's sentiment is the sum of the weights of
# its distinct words. On top of that our reader has two pet peeves, because a sentiment model alone would
# happily reward text no person would enjoy:
#
# $$\text{gold}(x) = \underbrace{b + \sum_{w \in \text{distinct words}} \theta_w}_{\text{sentiment}}
#   \;-\; 1.0 \times \#\text{non-words} \;-\; 0.5 \times \#\text{repeated words}$$
#
# A *non-word* is one that appears neither in Shakespeare nor in SST-2 (the char model invents plenty:
# "hencommenter", "Priess"). A word cut off by the 48-character limit is not counted. We call this score
# the **gold** reward. Two rules keep the experiment honest: the gold judge is fixed before any RLHF starts,
# and the policy never sees it directly. PPO only sees a reward model learned from the judge's *pairwise
# choices*; DPO only sees the choices. Every headline number is the gold judge's verdict on held-out prompts.

# %%
judge = SentimentJudge.fit(data.load_sst2("train"), text, JudgeConfig.preset(profile))
dev_acc = judge.accuracy(data.load_sst2("dev"))
pos, neg = judge.top_words(8)
print(f"sentiment accuracy on SST-2 dev: {dev_acc:.3f}")
print("most positive words:", ", ".join(w for w, _ in pos))
print("most negative words:", ", ".join(w for w, _ in neg))
examples = ["O, I do love thee, sweet and gentle friend, my joy. ",
            "Villain, thou shalt die a foul and bloody death. ",
            "good good good good good good ",
            "Thy blorpish frindle is wonderful. "]
for line, score in zip(examples, judge.score(examples).tolist()):
    parts = " ".join(f"{w}({c:+.1f})" for w, c in judge.explain(line))
    print(f"{score:+6.2f}  {line!r}\n        bias {judge.bias:+.2f} {parts}")
happy, grim = judge.score(examples[:2]).tolist()
claims.check("judge_reads_sentiment", dev_acc >= 0.80 and happy > 0 > grim, required_at="always",
             sst2_dev_acc=dev_acc, happy=happy, grim=grim);

# %% [markdown]
# ## 3. The task, and how the starting policy does
#
# Prompts are 16-character windows of Shakespeare that start at a word; responses are exactly 48
# characters, sampled at temperature 1 from the full distribution (no top-k, no top-p: those would make
# the probabilities we compute later disagree with how the text was actually drawn). Fixed lengths mean no
# padding and no end-of-text token, which removes a whole family of classic RLHF bugs.
#
# All evaluations use the **same held-out prompts** (from the validation part of the text) and the **same
# random seed**, so two policies are compared on the same footing. We report three numbers:
# the mean **gold** score; the **KL divergence** from π_ref in nats per response, how far the policy has
# walked from where it started; and the **win rate**: on each prompt, does the policy's answer beat
# π_ref's answer in the gold judge's eyes (a tie counts one half)? π_ref against itself must give
# KL = 0 and a win rate of exactly 0.5.
#
# **KL divergence, from scratch.** For two distributions p and q over the same outcomes,
# $\mathrm{KL}(p\,\|\,q) = \sum_x p(x)\,\log\frac{p(x)}{q(x)}$: the average, over outcomes drawn from p, of how much
# more likely p makes them than q does. Take two coins: a fair one, p = (½, ½), and a bent one, q = (0.9, 0.1).
# Flipping the fair coin, every tail is 5× likelier under p than under q (log 5 ≈ 1.61 nats) and every head a
# little less likely (log(0.5/0.9) ≈ −0.59): on average 0.51 nats. It is zero only when the two distributions
# agree everywhere, it is never negative, and it is *not* symmetric (swap the coins and you get 0.37). For a
# policy and π_ref the outcomes are whole 48-character responses, far too many to list, so we estimate it from
# samples: draw responses from the policy and average log π(response) − log π_ref(response), the sum of the
# per-character log-ratios.

# %%
fair, bent = torch.tensor([0.5, 0.5]), torch.tensor([0.9, 0.1])
kl = lambda p, q: (p * (p / q).log()).sum().item()
oracle = lambda p, q: torch.distributions.kl_divergence(torch.distributions.Categorical(probs=p),
                                                         torch.distributions.Categorical(probs=q)).item()
print(f"KL(fair ‖ bent) = {kl(fair, bent):.3f} nats, KL(bent ‖ fair) = {kl(bent, fair):.3f}, "
      f"KL(fair ‖ fair) = {kl(fair, fair):.3f}")
claims.check("kl_formula_matches_torch", abs(kl(fair, bent) - oracle(fair, bent)) < 1e-6
             and abs(kl(bent, fair) - oracle(bent, fair)) < 1e-6 and kl(fair, fair) == 0.0
             and kl(fair, bent) != kl(bent, fair), required_at="always",
             fair_to_bent=kl(fair, bent), bent_to_fair=kl(bent, fair))

# %%
eval_prompts = make_prompts(val_text, tok, cfg.eval_prompts, P, seed=seed + 1)
evaluator = Evaluator(ref, eval_prompts, G, judge, tok.decode, seed=seed + 2)
start = evaluator(ref)
print({k: round(v, 3) for k, v in start.items()})
for t, g in list(zip(evaluator.texts(evaluator.ref_seq), evaluator.ref_gold.tolist()))[:5]:
    print(f"{g:+6.2f}  {t[:P]!r} -> {t[P:]!r}")
claims.check("reference_vs_itself_is_a_coin_flip", start["kl"] == 0.0 and start["win"] == 0.5,
             required_at="always", kl=start["kl"], win=start["win"], gold=start["gold"]);

# %% [markdown]
# ## 4. Collecting preferences, Bradley–Terry style
#
# People do not hand out scores; they compare. And they are not perfectly consistent: shown two answers
# that are almost equally good, they pick either. The **Bradley–Terry** model (1952, devised for taste tests;
# chess's Elo rating uses the same curve) captures this: if answer $a$ has quality $g(a)$,
#
# $$P(a \succ b) = \sigma\!\big((g(a) - g(b))/\tau\big), \qquad \sigma(z) = 1/(1+e^{-z}).$$
#
# Our simulated labeller draws π_ref's two answers per prompt and *samples* its choice from this formula
# (τ = 1), so its labels are noisy the way people's are. Like a real labelling tool with an "about the
# same" button, it skips pairs whose gold scores differ by less than a margin (2 gold units here; a
# typical pair of π_ref answers differs by about 3). Because of the noise, even a
# perfect reward model cannot agree with every label: its expected agreement, the mean of
# $\sigma(|g(a)-g(b)|/\tau)$ over the pairs, is the **noise ceiling**.
#
# First, the formula by hand, checked against `course_lib`:

# %%
def my_preference_probability(gold_a, gold_b, tau=1.0):
    return 1 / (1 + torch.exp(-(gold_a - gold_b) / tau))


_ga, _gb = torch.randn(100_000) * 2, torch.randn(100_000) * 2
_picks, _ = sample_labels(_ga, _gb, generator=torch.Generator().manual_seed(seed))
_agree = (_picks == (_ga > _gb)).float().mean().item()
_ceiling = my_preference_probability(_ga, _gb).where(_ga > _gb, 1 - my_preference_probability(_ga, _gb)).mean()
print(f"labels that agree with the better answer: {_agree:.4f}; predicted ceiling {_ceiling:.4f}; "
      f"course_lib: {noise_ceiling(_ga, _gb):.4f}")
claims.check("bradley_terry_labels_match_the_formula", abs(_agree - _ceiling.item()) < 0.01
             and abs(_ceiling.item() - noise_ceiling(_ga, _gb)) < 1e-6, required_at="always",
             agreement=_agree, ceiling=_ceiling.item());

# %%
rm_cfg = RewardConfig.preset(profile)
pair_prompts = make_prompts(train_text, tok, rm_cfg.pairs, P, seed=seed + 3)
prefs = collect_preferences(ref, pair_prompts, G, judge, tok.decode, rm_cfg.tau, rm_cfg.tie_margin, seed=seed + 4)
train_pairs, test_pairs = prefs.split(rm_cfg.held_out)
print(f"{len(prefs)} labelled pairs of {rm_cfg.pairs} offered ({rm_cfg.pairs - len(prefs)} called ties); "
      f"{len(train_pairs)} to train on, {len(test_pairs)} held out")
print(f"labels agreeing with the gold order: {prefs.label_agreement:.3f} | noise ceiling: {prefs.ceiling:.3f}")
_c, _r = tok.decode(prefs.chosen[0].tolist()), tok.decode(prefs.rejected[0].tolist())
print(f"example pair, prompt {_c[:P]!r}\n  chosen   {_c[P:]!r} (gold {prefs.gold_chosen[0]:+.2f})"
      f"\n  rejected {_r[P:]!r} (gold {prefs.gold_rejected[0]:+.2f})")

# %%
_gap = (prefs.gold_chosen - prefs.gold_rejected)
_edges = torch.linspace(rm_cfg.tie_margin, max(rm_cfg.tie_margin + 1, _gap.abs().quantile(0.95).item()), 8)
_mid, _rate = [], []
for lo, hi in zip(_edges[:-1], _edges[1:]):
    inside = (_gap.abs() >= lo) & (_gap.abs() < hi)
    if inside.sum() >= 10:
        _mid.append(((lo + hi) / 2).item())
        _rate.append((_gap[inside] > 0).float().mean().item())
_xs = torch.linspace(0, _edges[-1].item(), 50)
plots.lines({"labeller: picked the better answer": (_mid, _rate),
             "Bradley-Terry: sigmoid(|gap| / tau)": (_xs.tolist(), torch.sigmoid(_xs / rm_cfg.tau).tolist())},
            xlabel="|gold(a) - gold(b)|", ylabel="fraction of labels", hline=(0.5, "coin flip"),
            title="Noisy labels: near-ties are coin flips, clear gaps are reliable");

# %% [markdown]
# ## 5. Supervised fine-tuning: imitate the preferred answers
#
# The simplest way to use preferences is to ignore the losers: fine-tune on the winning answers with the
# ordinary next-token loss, counted on the response only (the prompt is given, not learned). This is the
# instruction-tuning stage in miniature; the DPO paper calls it "Preferred-FT". It is cheap and safe, but it
# learns only from what the winners have in common, never from what made the losers lose.

# %%
sft = rl_copy(base)
sft_cfg = cfg.sft_config()
Trainer(sft, response_nll(P), row_batches(train_pairs.chosen.to(device), cfg.sft_batch, seed), sft_cfg,
        device=device, name="SFT").fit()
sft_eval = evaluator(sft)
print({k: round(v, 3) for k, v in sft_eval.items()})

# %% [markdown]
# ## 6. The reward model: a critic learned from comparisons
#
# The reward model reads prompt + response and outputs one number. We build it from the policy's own
# trunk (it already knows the language), average its hidden states over the response positions, and put a
# linear layer on top. It is trained on the pairs with the Bradley–Terry loss: make the chosen answer's
# score higher than the rejected one's,
#
# $$\mathcal{L}_{RM} = -\log\sigma\big(r(x, y^+) - r(x, y^-)\big).$$
#
# Only differences of scores matter, so afterwards we shift and scale the RM so that π_ref's answers score
# mean 0 and standard deviation 1; a KL coefficient then means the same thing whatever scale training
# happened to produce. The loss by hand first:

# %%
def my_bradley_terry_loss(r_chosen, r_rejected):
    return -torch.log(torch.sigmoid(r_chosen - r_rejected)).mean()


_rc, _rr = torch.randn(64), torch.randn(64)
print(f"mine {my_bradley_terry_loss(_rc, _rr):.6f} | course_lib {bradley_terry_loss(_rc, _rr):.6f} | "
      f"hand case r+=2, r-=0: {bradley_terry_loss(torch.tensor([2.0]), torch.tensor([0.0])):.6f} (= log(1+e^-2))")
claims.check("bradley_terry_loss_matches", torch.allclose(my_bradley_terry_loss(_rc, _rr), bradley_terry_loss(_rc, _rr))
             and abs(bradley_terry_loss(torch.tensor([2.0]), torch.tensor([0.0])).item() - math.log1p(math.exp(-2))) < 1e-6,
             required_at="always");

# %%
rm, rm_history = train_reward_model(base, train_pairs, test_pairs, rm_cfg, device, seed=seed)
_norm_prompts = make_prompts(train_text, tok, 512, P, seed=seed + 5)
rm.normalise(sample_responses(ref, _norm_prompts, G, torch.Generator().manual_seed(seed + 6)))
evaluator.reward_model = rm
sft_eval["proxy"] = rm.score(evaluator.sample(sft)).mean().item()   # SFT came before the RM: score it now
rm_acc = pair_accuracy(rm, test_pairs.to(device))
print(f"held-out pairs: agrees with the labeller {rm_acc['acc_labels']:.3f} (noise ceiling {test_pairs.ceiling:.3f}),"
      f" with the noiseless gold order {rm_acc['acc_gold']:.3f}")
claims.check("reward_model_beats_0.7_on_held_out_pairs", rm_acc["acc_labels"] >= 0.7, required_at="lesson",
             acc_labels=rm_acc["acc_labels"], acc_gold=rm_acc["acc_gold"], noise_ceiling=test_pairs.ceiling,
             held_out_pairs=len(test_pairs), train_pairs=len(train_pairs));

# %%
_proxy = rm.score(evaluator.ref_seq).cpu()
start["proxy"] = _proxy.mean().item()          # the starting point's RM score, now that there is an RM
_rank = lambda v: v.argsort().argsort().float()
spearman = torch.corrcoef(torch.stack([_rank(_proxy), _rank(evaluator.ref_gold)]))[0, 1].item()

fig, ax = plt.subplots(figsize=(5, 3.6))
ax.scatter(evaluator.ref_gold, _proxy, s=6, alpha=0.5)
ax.set_xlabel("gold (the judge)")
ax.set_ylabel("reward model (normalised)")
ax.set_title(f"The critic agrees with the judge only roughly (Spearman {spearman:.2f})")
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# The scatter is the most important picture of this lesson. The reward model is a *proxy*: it agrees with
# the judge on average, but on any single answer it can be far off. Whatever we optimise against it, we
# optimise against its mistakes too.
#
# ## 7. Rehearse against the critic, on a leash: REINFORCE, then PPO
#
# The policy writes 48 characters, one action per character, and gets the RM's score at the end. The idea under
# every method of this section fits in one sentence: **make the sampled answers that scored better than
# expected more likely, in proportion to how much better they scored.** That is REINFORCE (Williams, 1992).
# "Than expected" needs a baseline; the simplest good one is the other answers to the same prompt: draw k answers
# per prompt, and each answer's *advantage* is its reward minus the mean reward of the other k − 1
# (REINFORCE leave-one-out, RLOO). The reward is the RM's score minus β times the answer's KL sample, the sum of
# log π − log π_ref over its characters (the leash, below). Five lines:

# %%
def reinforce_loss(logp_tokens, rewards, k):
    """logp_tokens: (B, G) log-probabilities of the sampled characters; rewards: (B,), k answers per prompt in a row."""
    grouped = rewards.view(-1, k)
    baseline = (grouped.sum(1, keepdim=True) - grouped) / (k - 1)        # mean reward of the *other* answers
    advantage = (grouped - baseline).reshape(-1, 1).detach()              # better than expected: > 0
    return -(advantage * logp_tokens).mean()                              # gradient raises log p where A > 0


# course_lib's RL loop with advantage="rloo" computes the same gradient (its PPO ratio is exactly 1 on a batch's
# first step): check it on random numbers.
_logits = torch.randn(8, 5, 7, requires_grad=True)
_actions, _rewards = torch.randint(7, (8, 5)), torch.randn(8)
_logp = lambda: F.log_softmax(_logits, -1).gather(-1, _actions[..., None]).squeeze(-1)   # a fresh graph each call
_ours = torch.autograd.grad(reinforce_loss(_logp(), _rewards, 4), _logits)[0]
_lib_loss, _, _ = ppo_policy_loss(_logp(), _logp().detach(), rloo_advantages(_rewards, 4)[:, None].expand(8, 5))
_lib = torch.autograd.grad(_lib_loss, _logits)[0]
claims.check("reinforce_loss_matches_course_lib", torch.allclose(_ours, _lib, atol=1e-7), required_at="always",
             max_abs_diff=(_ours - _lib).abs().max().item())

# %% [markdown]
# REINFORCE uses each batch of samples for **one** gradient step and throws it away: sampling is the expensive
# part, so that is wasteful. PPO is the same idea with machinery to *reuse* each batch safely for several steps:
#
# * **The leash (KL penalty).** Each character also costs $\beta\,(\log\pi(a_t) - \log\pi_{ref}(a_t))$:
#   the policy pays for every nat of surprise relative to π_ref. Summed over the response this is a sample
#   of $\beta\,\mathrm{KL}(\pi\,\|\,\pi_{ref})$, so the policy maximises *score − β·KL*. The penalty goes into
#   the reward, per token, and the RM score is added at the last token only.
# * **Credit assignment (GAE).** A value head (a linear layer on the policy's trunk, starting at exactly 0)
#   predicts the reward still to come from each position. The *advantage* of a character is how much better
#   things went than predicted: $\delta_t = r_t + V_{t+1} - V_t$, blended over future steps with weight
#   λ = 0.95 (generalised advantage estimation), then whitened over the batch.
# * **Small steps (the clip).** Each batch of samples is reused for several epochs of minibatch steps. The
#   ratio $\rho_t = \pi_\theta(a_t)/\pi_{old}(a_t)$ measures how much a step changed the policy; PPO's loss
#   $\max(-A\rho, -A\,\mathrm{clip}(\rho, 0.8, 1.2))$ stops rewarding a change once it passes 20 %.
#
# GAE on a three-step toy and the clipped loss on a hand case, written out and checked against `course_lib`:

# %%
def my_gae(rewards, values, gamma=1.0, lam=0.95):
    advantages, running = [0.0] * len(rewards), 0.0
    for t in reversed(range(len(rewards))):
        next_value = values[t + 1] if t + 1 < len(rewards) else 0.0
        running = rewards[t] + gamma * next_value - values[t] + gamma * lam * running
        advantages[t] = running
    return advantages


def my_ppo_loss(ratio, advantage, clip=0.2):
    return torch.max(-advantage * ratio, -advantage * ratio.clamp(1 - clip, 1 + clip)).mean()


_mine = my_gae([0.0, 0.0, 1.0], [0.5, 0.6, 0.7])
_lib, _ = gae(torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([[0.5, 0.6, 0.7]]))
_ratio, _adv = torch.tensor([1.5, 1.5, 0.5, 0.5]), torch.tensor([1.0, -1.0, 2.0, -2.0])
_loss, _clipfrac, _ = ppo_policy_loss(_ratio.log(), torch.zeros(4), _adv)
print(f"GAE mine {[round(a, 5) for a in _mine]} | course_lib {[round(a, 5) for a in _lib[0].tolist()]}")
print(f"PPO loss mine {my_ppo_loss(_ratio, _adv):.4f} | course_lib {_loss:.4f}, clip fraction {_clipfrac:.2f}")
claims.check("gae_and_ppo_loss_match_hand_values", torch.allclose(_lib[0], torch.tensor(_mine))
             and abs(_lib[0, 0].item() - 0.46575) < 1e-6 and abs(_loss.item() - 0.225) < 1e-6
             and abs(my_ppo_loss(_ratio, _adv).item() - 0.225) < 1e-6 and _clipfrac.item() == 0.5,
             required_at="always", gae=_lib[0].tolist(), ppo_loss=_loss.item(), clipfrac=_clipfrac.item());

# %% [markdown]
# Now the real thing, with a small β, first REINFORCE (RLOO: one step per batch, no value head), then PPO on
# the same number of samples. `train_ppo` runs both on the course's `Trainer`: its "batch source" collects a
# fresh rollout at the first step of each iteration and hands out minibatches after that. Before training, and
# every few iterations, the evaluator asks the gold judge.

# %%
ppo_cfg = PPOConfig.preset(profile)
rl_prompts = make_prompts(train_text, tok, 4096, P, seed=seed + 7)
BETA_SMALL, BETA_LARGE = ppo_cfg.kl_coef, 4 * ppo_cfg.kl_coef
runs = {}


def run_ppo(beta: float, label: str, **overrides):
    policy = rl_copy(base)
    t0 = time.perf_counter()
    _, log, _ = train_ppo(policy, ref, rm.score, rl_prompts, G, dataclasses.replace(ppo_cfg, kl_coef=beta, **overrides),
                          device, evaluate=evaluator, seed=seed, name=label)
    log.evals.insert(0, {"iteration": 0, **start})      # iteration 0 is π_ref itself, evaluated above
    runs[label] = {"policy": policy, "log": log, "seconds": time.perf_counter() - t0}
    return log


reinforce = f"REINFORCE (RLOO) β={BETA_SMALL:g}"
with torch.random.fork_rng():     # the runs after this one draw the same random numbers as if it had not run
    log_reinforce = run_ppo(BETA_SMALL, reinforce, advantage="rloo", epochs=1, minibatch=ppo_cfg.batch,
                            eval_every=2 * ppo_cfg.eval_every)     # half as many held-out evaluations: time
small = f"PPO β={BETA_SMALL:g}"
log_small = run_ppo(BETA_SMALL, small)

# %%
def training_curves(log, title):
    fig, axes = plt.subplots(1, 4, figsize=(14, 3))
    for ax, (rows, key, label) in zip(axes, [("iterations", "score", "RM score of samples"),
                                             ("iterations", "kl", "KL to π_ref (nats/response)"),
                                             ("minibatches", "clipfrac", "clip fraction"),
                                             ("minibatches", "entropy", "entropy (nats/char)")]):
        xs, ys = log.series(rows, key)
        ax.plot(xs, ys, lw=1)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    plt.show()


training_curves(log_small, small)
final_small = log_small.evals[-1]
first_ratios = [m["first_ratio_dev"] for m in log_small.minibatches if "first_ratio_dev" in m]
clipfrac = sum(m["clipfrac"] for m in log_small.minibatches) / len(log_small.minibatches)
print({k: round(v, 3) for k, v in final_small.items()})
# exact on CPU; under bf16 autocast on a GPU, kernels may round differently between the two passes
claims.check("ppo_first_minibatch_ratio_is_exactly_one",
             max(first_ratios) <= (0.0 if device.type == "cpu" else 1e-2), required_at="always",
             iterations=len(first_ratios), max_deviation=max(first_ratios), mean_clipfrac=clipfrac)
claims.check("reference_stays_frozen", frozen_params_unchanged(ref, ref_snapshot), required_at="always")
final_reinforce = log_reinforce.evals[-1]
plots.lines({label: runs[label]["log"].series("evals", "gold") for label in (reinforce, small)},
            xlabel="iteration (the same samples per iteration for both)", ylabel="gold score (held-out prompts)",
            title="REINFORCE vs PPO on the same samples");
# Reported: PPO's several steps per batch should buy more gold from the same samples. Fails if REINFORCE's
# final gold is as high as PPO's. Measured on one seed per run; not required.
claims.check("ppo_gets_more_from_the_same_samples", final_small["gold"] > final_reinforce["gold"],
             required_at="never", ppo_gold=final_small["gold"], reinforce_gold=final_reinforce["gold"],
             ppo_win=final_small["win"], reinforce_win=final_reinforce["win"], ppo_kl=final_small["kl"],
             reinforce_kl=final_reinforce["kl"], samples=ppo_cfg.iterations * ppo_cfg.batch,
             steps_per_batch={"ppo": ppo_cfg.epochs * ppo_cfg.batch // ppo_cfg.minibatch, "reinforce": 1})
claims.check("ppo_beats_the_starting_policy", final_small["win"] >= 0.6 and final_small["win_lo"] > 0.5
             and final_small["gold"] > start["gold"], required_at="lesson",
             beta=BETA_SMALL, win=final_small["win"], win_ci=(final_small["win_lo"], final_small["win_hi"]),
             kl=final_small["kl"], gold_start=start["gold"], gold_end=final_small["gold"],
             prompts=cfg.eval_prompts)
print(f"PPO at beta={BETA_SMALL} trained in {runs[small]['seconds']:.0f} s on this machine");

# %% [markdown]
# ## 8. Reward hacking: take the leash off
#
# Now β = 0: nothing ties the policy to π_ref, and it is free to chase the reward model wherever it leads.
# The RM was trained on π_ref's answers only; far from them it has never been corrected, and the policy
# finds the places where the critic is wrong. Watch the two lines separate: the **learned** reward keeps
# climbing while the **gold** judge, our stand-in for what we care about, turns down. (Section 14 asks whether the
# gold judge itself can be trusted.)

# %%
free = "PPO β=0"
log_free = run_ppo(0.0, free)
_it, _gold = log_free.series("evals", "gold")
_, _proxy_curve = log_free.series("evals", "proxy")
_, _kl = log_free.series("evals", "kl")
plots.lines({"reward model, what PPO optimises (RM std units)": (_it, [p - _proxy_curve[0] for p in _proxy_curve]),
             "gold judge, our stand-in for what we want (judge units)": (_it, [g - _gold[0] for g in _gold])},
            xlabel="PPO iteration", ylabel="change since π_ref (held-out prompts)", hline=(0.0, "π_ref"),
            title="β = 0: the reward model keeps rising, the gold judge turns down");
_policy_free = runs[free]["policy"]
for t in evaluator.texts(evaluator.sample(_policy_free))[:4]:
    print(repr(t[P:]))

# %%
peak = max(range(len(_gold)), key=_gold.__getitem__)
final_free = log_free.evals[-1]
claims.check("reward_hacking_without_kl_penalty",
             final_free["proxy"] > log_free.evals[peak]["proxy"] and final_free["gold"] < _gold[peak] - 0.5
             and final_free["distinct_words"] < start["distinct_words"], required_at="lesson",
             proxy_at_gold_peak=log_free.evals[peak]["proxy"], proxy_end=final_free["proxy"],
             gold_peak=_gold[peak], gold_end=final_free["gold"], peak_iteration=_it[peak], kl_end=final_free["kl"],
             distinct_words_start=start["distinct_words"], distinct_words_end=final_free["distinct_words"]);

# %% [markdown]
# ## 9. A tight leash
#
# With a large β every nat of KL costs a lot, so the policy stays close to π_ref: safe, but it cannot
# improve much either. β is the knob between "learns nothing" and "games the critic".
#
# How far a policy walks depends on how much the critic offers as well as on β: a sharper reward model gives
# PPO more to climb, and the same β then ends further out. So the check below compares leashes with each
# other, all three runs after the same number of iterations on the same critic: the tighter leash must end
# nearer π_ref, and the small one well inside the distance the unleashed run covered.

# %%
tight = f"PPO β={BETA_LARGE:g}"
log_tight = run_ppo(BETA_LARGE, tight, eval_every=2 * ppo_cfg.eval_every)     # fewer evaluations: time
final_tight = log_tight.evals[-1]
print({k: round(v, 3) for k, v in final_tight.items()})
# the leash, measured: after the same number of iterations, a larger β ends closer to π_ref, and even the small
# one keeps the policy within a quarter of the distance the unleashed run walked
claims.check("kl_penalty_sets_the_distance", final_tight["kl"] < final_small["kl"] < final_free["kl"] / 4,
             required_at="lesson", iterations=ppo_cfg.iterations, betas=[BETA_LARGE, BETA_SMALL, 0.0],
             kl_tight=final_tight["kl"], kl_small=final_small["kl"], kl_free=final_free["kl"]);

# %% [markdown]
# Three leashes, one map. Each point below is one PPO iteration of one run: across, how far that iteration's
# samples have drifted from π_ref (KL, nats per response); up, the reward model's mean score on them, the number
# PPO is paid to raise. The colour counts iterations, from dark (the start) to light (the end). All three paths
# start together, because at iteration 0 every policy is still π_ref. Follow each one from there: how much reward
# does it buy for each step to the right, and which leash lets it wander furthest? Hover over a point for its
# iteration and numbers; click a name in the legend to hide that run.

# %%
reward_vs_kl = None
ppo_runs = {label: run for label, run in runs.items() if label != reinforce}      # the three PPO leashes
for (label, run), symbol, colour in zip(ppo_runs.items(), ("circle", "diamond", "square"),
                                        ("#4c72b0", "#c44e52", "#55a868")):
    its, scores = run["log"].series("iterations", "score")
    _, kls = run["log"].series("iterations", "kl")
    _, penalised = run["log"].series("iterations", "rlhf_reward")
    every = max(1, math.ceil(len(its) / 60))          # at most ~60 points a run (the gpu profile runs 200 iterations)
    keep = list(range(0, len(its), every))
    path = interactive.scatter_path(
        [kls[i] for i in keep], [scores[i] for i in keep], color=[its[i] for i in keep], color_title="iteration",
        labels=[f"{label}, iteration {its[i]}<br>KL {kls[i]:.2f} nats, RM score {scores[i]:+.2f}, "
                f"score − β·KL {penalised[i]:+.2f}" for i in keep],
        title="reward bought with drift: one point per PPO iteration",
        xlabel="KL(π ‖ π_ref) of the iteration's samples (nats per response)",
        ylabel="reward-model score of the samples (mean)")
    path.data[0].update(name=label, showlegend=True, marker_symbol=symbol, line_color=colour,
                        hovertemplate="%{text}<extra></extra>")
    if reward_vs_kl is None:
        reward_vs_kl = path
    else:
        path.data[0].marker.showscale = False
        reward_vs_kl.add_trace(path.data[0])
reward_vs_kl.update_layout(legend={"x": 0.01, "y": 0.99})
interactive.show(reward_vs_kl)

# %% [markdown]
# ## 10. The pipeline in order: PPO from the SFT model
#
# InstructGPT ran the stages one after another: PPO started from the SFT model and was leashed to it (π_ref =
# SFT), not to the pretrained model. We chose otherwise (see the introduction); here is the measurement that tells
# whether the choice matters. One run, the same β, the same number of iterations, the same prompts, reward model
# and seed as the β = 0.1 run of section 7; only the starting point and the leash's anchor change. Everything is
# still judged on the held-out prompts against the *pretrained* π_ref's answers, so the numbers sit in the same
# table; we also measure how far the run ends from its own anchor, the SFT model.

# %%
sft_ref = frozen_copy(sft)
from_sft = f"PPO β={BETA_SMALL:g} from SFT"
_policy = rl_copy(sft)
_t0 = time.perf_counter()
with torch.random.fork_rng():     # as for REINFORCE: the runs after this one see the same random numbers as before
    _, log_from_sft, _ = train_ppo(_policy, sft_ref, rm.score, rl_prompts, G,
                                   dataclasses.replace(ppo_cfg, eval_every=ppo_cfg.iterations), device, seed=seed,
                                   name=from_sft)
_seq = evaluator.sample(_policy)
final_from_sft = evaluator.metrics(_seq, evaluator.sequence_kl(_policy, _seq).mean().item())
final_from_sft["kl_to_sft"] = evaluator.sequence_kl(_policy, _seq, ref=sft_ref).mean().item()
runs_from_sft = {"policy": _policy, "log": log_from_sft, "seconds": time.perf_counter() - _t0}
_rows = ["| run | starts from, leashed to | gold | win vs π_ref (95 % CI) | KL to π_ref | KL to its anchor |",
         "|---|---|---|---|---|---|"]
for label, m, anchor, kl_anchor in [("SFT (section 5)", sft_eval, "π_ref, no leash", sft_eval["kl"]),
                                    (small, final_small, "π_ref", final_small["kl"]),
                                    (from_sft, final_from_sft, "SFT", final_from_sft["kl_to_sft"])]:
    _rows.append(f"| {label} | {anchor} | {m['gold']:+.2f} | {m['win']:.3f} ({m['win_lo']:.2f}–{m['win_hi']:.2f}) "
                 f"| {m['kl']:.2f} | {kl_anchor:.2f} |")
display(Markdown("\n".join(_rows)))
_same = final_small["win_lo"] <= final_from_sft["win"] <= final_small["win_hi"]
_better = final_from_sft["win"] > final_small["win_hi"]
display(Markdown(
    f"SFT moved the model {sft_eval['kl']:.2f} nats from π_ref; PPO from π_ref walked {final_small['kl']:.2f}. "
    f"Started from SFT, PPO ends at gold {final_from_sft['gold']:+.2f} and a "
    f"win rate of {final_from_sft['win']:.3f}, against {final_small['gold']:+.2f} and {final_small['win']:.3f} from "
    f"the pretrained model: " + ("inside the interval of the run from π_ref, so on this task the order of the stages "
    "does not change the result, and starting every method from one point costs nothing." if _same else
    ("above" if _better else "below") + " the interval of the run from π_ref, so on this task the order of the "
    "stages changes the result" + (": SFT first, then PPO, reaches further than PPO alone, as InstructGPT's order "
    "intends, and the frontier's methods, all started from π_ref, understate what the full pipeline buys."
    if _better else ": here the SFT start hurt PPO.")) + f" The run from SFT ended {final_from_sft['kl']:.2f} nats "
    f"from π_ref (the run from π_ref {final_small['kl']:.2f}), so part of any difference is distance; the frontier "
    "of section 13 shows gold against distance for every method."))
# Reported: the choice to start from the pretrained model is harmless only if PPO from SFT lands where PPO from
# π_ref does. Fails if its win rate against π_ref falls outside the 95 % interval of the run from π_ref.
claims.check("ppo_from_sft_lands_where_ppo_from_base_does", _same, required_at="never", beta=BETA_SMALL,
             iterations=ppo_cfg.iterations, sft_kl=sft_eval["kl"], base_win=final_small["win"],
             base_win_ci=(final_small["win_lo"], final_small["win_hi"]), base_gold=final_small["gold"],
             base_kl=final_small["kl"], from_sft_win=final_from_sft["win"], from_sft_gold=final_from_sft["gold"],
             from_sft_kl_to_base=final_from_sft["kl"], from_sft_kl_to_sft=final_from_sft["kl_to_sft"])
print(f"PPO from SFT trained in {runs_from_sft['seconds']:.0f} s on this machine")

# %% [markdown]
# ## 11. DPO: no critic, no rehearsal
#
# The KL-leashed objective "maximise reward − β·KL" has an exact solution:
# $\pi^*(y) \propto \pi_{ref}(y)\, e^{r(y)/\beta}$. (Why: reward − β·KL equals −β·KL(π ‖ π*) plus a constant
# that does not depend on π, so it is largest, exactly, when π = π*: the π_ref answers, each reweighted by
# $e^{r/\beta}$.) Read backwards, any policy *defines* a reward,
# $r(y) = \beta \log \frac{\pi(y)}{\pi_{ref}(y)}$ (plus a constant per prompt, which cancels when two
# answers to the same prompt are compared). Put this implicit reward into the Bradley–Terry loss and the
# reward model disappears (Rafailov et al., 2023):
#
# $$\mathcal{L}_{DPO} = -\log\sigma\Big(\beta\big[\log\tfrac{\pi(y^+)}{\pi_{ref}(y^+)} - \log\tfrac{\pi(y^-)}{\pi_{ref}(y^-)}\big]\Big)$$
#
# with log-probabilities summed over the response. It is supervised learning on the same pairs; no sampling
# during training. At the start π = π_ref, both log-ratios are 0 and the loss is exactly ln 2. One favour our toy
# does DPO: its pairs were sampled from π_ref itself, the policy it starts from. DPO learns only from the pairs it
# is given, so when they come from another model (off-policy data, the usual case in practice) it works less well
# than here.

# %%
def my_dpo_loss(logp_chosen, logp_rejected, ref_chosen, ref_rejected, beta):
    margin = beta * ((logp_chosen - ref_chosen) - (logp_rejected - ref_rejected))
    return -torch.nn.functional.logsigmoid(margin).mean()


dpo_cfg = DPOConfig.preset(profile)
dpo_policy = rl_copy(base)
_pairs = test_pairs.subset(torch.arange(min(64, len(test_pairs)))).to(device)
with torch.no_grad():
    _lc = response_logprobs(dpo_policy, _pairs.chosen, P).sum(1)
    _lr = response_logprobs(dpo_policy, _pairs.rejected, P).sum(1)
    _rc, _rr = sequence_logprobs(ref, _pairs.chosen, P), sequence_logprobs(ref, _pairs.rejected, P)
_init_loss = dpo_loss(_lc, _lr, _rc, _rr, dpo_cfg.beta)[0].item()
print(f"DPO loss at initialisation: mine {my_dpo_loss(_lc, _lr, _rc, _rr, dpo_cfg.beta):.6f}, "
      f"course_lib {_init_loss:.6f}, ln 2 = {math.log(2):.6f}")
claims.check("dpo_loss_is_ln2_at_init", abs(_init_loss - math.log(2)) < 1e-6, required_at="always",
             loss=_init_loss);

# %%
dpo_evals = [{"step": 0, **start}]


def evaluate_dpo(policy):
    metrics = evaluator(policy)
    dpo_evals.append(metrics)
    return metrics


_t0 = time.perf_counter()
_, dpo_stats = train_dpo(dpo_policy, ref, train_pairs, dpo_cfg, device, evaluate=evaluate_dpo, seed=seed)
dpo_seconds = time.perf_counter() - _t0
final_dpo = dpo_evals[-1]
print({k: round(v, 3) for k, v in final_dpo.items()})
print(f"last steps: loss {dpo_stats[-1]['loss']:.3f}, implicit-reward accuracy {dpo_stats[-1]['reward_accuracy']:.2f}")
claims.check("dpo_beats_the_starting_policy", final_dpo["win"] >= 0.6, required_at="lesson",
             beta=dpo_cfg.beta, win=final_dpo["win"], win_ci=(final_dpo["win_lo"], final_dpo["win_hi"]),
             kl=final_dpo["kl"], gold_end=final_dpo["gold"])
print(f"DPO trained in {dpo_seconds:.0f} s on this machine")
display(Markdown(f"DPO's win rate ({final_dpo['win']:.3f}) is to be read beside its distance: it ended "
                 f"{final_dpo['kl']:.1f} nats from π_ref, PPO β={BETA_SMALL:g} {final_small['kl']:.1f}. A similar win "
                 "rate at a different drift is not the same result; the frontier of section 13 puts both on one map."))
claims.check("reference_stays_frozen_after_dpo", frozen_params_unchanged(ref, ref_snapshot), required_at="always");

# %% [markdown]
# **DPO's implicit reward, drawn.** Every policy carries a reward inside it: $r(y) = \beta\log\frac{\pi(y)}{\pi_{ref}(y)}$,
# how much more likely the policy makes an answer than π_ref did, in units of β. DPO's loss looks only at the
# *margin* between the two answers of a pair, $r(y^+) - r(y^-)$, and charges $-\log\sigma(\text{margin})$: ln 2 at a
# margin of 0, falling towards 0 as the chosen answer pulls ahead, rising steeply when the rejected one does. Below,
# the held-out pairs of section 6 (DPO never trained on them; their labels are the judge's noisy choices), before
# and after training. Before, π = π_ref, so every pair sits at the same point: both rewards 0, margin 0, loss ln 2.
# After, read each dot: on the right, above the diagonal means the trained policy's implicit reward ranks the pair
# the way its label does.

# %%
with torch.no_grad():     # one forward pass over the pairs; nothing is trained or sampled here
    _reward_chosen = (dpo_cfg.beta * (response_logprobs(dpo_policy, _pairs.chosen, P).sum(1) - _rc)).cpu()
    _reward_rejected = (dpo_cfg.beta * (response_logprobs(dpo_policy, _pairs.rejected, P).sum(1) - _rr)).cpu()
_margin = _reward_chosen - _reward_rejected
fig, (ax_loss, ax_pairs) = plt.subplots(1, 2, figsize=(11, 4))
_grid = torch.linspace(min(-3.0, _margin.min().item() - 0.5), max(3.0, _margin.max().item() + 0.5), 200)
ax_loss.plot(_grid.numpy(), (-F.logsigmoid(_grid)).numpy(), color="black", lw=1.2, label="loss = −log σ(margin)")
ax_loss.scatter(_margin.numpy(), (-F.logsigmoid(_margin)).numpy(), s=14, alpha=0.6, color="#4c72b0", zorder=3,
                label="after training: one dot per held-out pair")
ax_loss.scatter([0.0], [math.log(2)], s=120, marker="*", color="#c44e52", zorder=2,
                label="before training: every pair (loss ln 2)")
ax_loss.axvline(0.0, color="grey", lw=0.6)
ax_loss.set_xlabel("margin = r(chosen) − r(rejected)")
ax_loss.set_ylabel("DPO loss of the pair")
ax_loss.set_title("what the loss asks: push the margin to the right", fontsize=10)
ax_loss.legend(fontsize=8)
_lim = max(_reward_chosen.abs().max().item(), _reward_rejected.abs().max().item(), 0.1) * 1.1
ax_pairs.plot([-_lim, _lim], [-_lim, _lim], color="grey", lw=0.8, label="equal rewards (margin 0)")
ax_pairs.scatter(_reward_rejected.numpy(), _reward_chosen.numpy(), s=14, alpha=0.6, color="#4c72b0", zorder=3,
                 label="after training")
ax_pairs.scatter([0.0], [0.0], s=120, marker="*", color="#c44e52", zorder=2, label="before training: every pair")
ax_pairs.set_xlabel("implicit reward of the rejected answer, β·log π/π_ref")
ax_pairs.set_ylabel("implicit reward of the chosen answer")
ax_pairs.set_title("above the diagonal: the pair is ranked like its label", fontsize=10)
ax_pairs.legend(fontsize=8)
fig.tight_layout()
plt.show()
display(Markdown(
    f"On these {len(_margin)} held-out pairs the trained policy's margin is above 0 for "
    f"{(_margin > 0).float().mean().item():.0%} of them (a coin would manage half; the labels themselves are noisy, "
    f"section 4's noise ceiling), and their mean DPO loss is {(-F.logsigmoid(_margin)).mean().item():.3f}, against "
    f"ln 2 = {math.log(2):.3f} before training. Chosen answers moved by {_reward_chosen.mean().item():+.2f} on "
    f"average and rejected ones by {_reward_rejected.mean().item():+.2f}: the loss only asks for the gap, so both "
    "may rise or fall together."))

# %% [markdown]
# ## 12. Best-of-n: the baseline that needs no training at all
#
# Draw n answers from π_ref and keep the one the reward model likes best. Its distance from π_ref is often
# quoted as log n − (n−1)/n nats, whatever the reward; Beirami et al. (2024) showed that formula is only an
# **upper bound**. It is reached when no answer is ever drawn twice: then the best of n is the top of n
# different answers, and each answer's probability is multiplied by n·F^(n−1), F being the share of π_ref's
# answers it beats. When some answer carries real probability (a short reply like "Yes."), it often appears
# several times among the n draws, best-of-n cannot move as far from π_ref, and the true KL is smaller. So we do
# not print the formula beside itself; we measure the condition: how many of the n answers drawn for a prompt
# repeat another one. If none do, we plot best-of-n at the bound. It is a strong baseline: OpenAI's
# reward-model-overoptimisation study (Gao et al., 2022) found it more KL-efficient than RL; its price is
# n samples at every use instead of one trained model.

# %%
ns = [1, 2, 4, 8]
bon = evaluator.best_of_n(rm, ns)
for row in bon:
    print(f"n={row['n']:2d}  KL ≤ {row['kl']:.3f} (the upper bound)  gold {row['gold']:+.3f}  win {row['win']:.3f}  "
          f"answers repeating another of the same prompt: {row['repeated_answers']} of {row['n'] * len(eval_prompts)}")
# Reported: plotting best-of-n at log n − (n−1)/n is right only if no answer repeats among a prompt's n draws.
# Fails if any of the n_max · prompts answers repeats another answer to the same prompt.
claims.check("best_of_n_answers_never_repeat", bon[-1]["repeated_answers"] == 0, required_at="never",
             n=bon[-1]["n"], prompts=len(eval_prompts), repeated_answers=bon[-1]["repeated_answers"])

# %% [markdown]
# ## 13. The frontier: how much gold per unit of drift?
#
# Every method pays for its improvement with distance from π_ref. Plotting gold against $\sqrt{KL}$ (the
# scale on which Gao et al. found reward curves to be simple) puts them all on one map. Higher and further
# left is better. Look for where the β = 0 curve bends down: that is reward hacking, seen from above.
# Two cautions. Gao et al. themselves warn that KL is an imperfect common currency: two methods can spend the
# same nats in very different directions, so a method that looks better per nat here is not proven better in
# general. And the "gold" judge is a proxy too, only a better-hidden one (section 14 asks a second judge).

# %%
frontier = {}
for label, run in runs.items():
    its, golds = run["log"].series("evals", "gold")
    _, kls = run["log"].series("evals", "kl")
    frontier[label] = ([math.sqrt(max(k, 0.0)) for k in kls], golds)
frontier[f"DPO β={dpo_cfg.beta:g}"] = ([math.sqrt(max(e["kl"], 0.0)) for e in dpo_evals], [e["gold"] for e in dpo_evals])
frontier["best-of-n (n=1..8)"] = ([math.sqrt(r["kl"]) for r in bon], [r["gold"] for r in bon])
frontier["SFT"] = ([0.0, math.sqrt(max(sft_eval["kl"], 0.0))], [start["gold"], sft_eval["gold"]])
frontier[from_sft] = ([math.sqrt(max(sft_eval["kl"], 0.0)), math.sqrt(max(final_from_sft["kl"], 0.0))],
                      [sft_eval["gold"], final_from_sft["gold"]])
plots.lines(frontier, xlabel="√KL(π ‖ π_ref)  (√nats per response)", ylabel="gold score (held-out prompts)",
            hline=(start["gold"], "π_ref"), title="Gold reward vs distance from the starting policy");

# %%
table = [("π_ref (start)", start)] + [(label, run["log"].evals[-1]) for label, run in runs.items()]
table += [(from_sft, final_from_sft), (f"DPO β={dpo_cfg.beta:g}", final_dpo), ("SFT", sft_eval),
          (f"best-of-{ns[-1]}", bon[-1])]
rows = ["| method | gold | win vs π_ref (95 % CI) | KL (nats) | RM score | distinct words |", "|---|---|---|---|---|---|"]
for label, m in table:
    rows.append(f"| {label} | {m['gold']:+.2f} | {m['win']:.3f} ({m['win_lo']:.2f}–{m['win_hi']:.2f}) | {m['kl']:.2f} "
                f"| {m.get('proxy', float('nan')):+.2f} | {m['distinct_words']:.2f} |")
display(Markdown("\n".join(rows)))
# Preferred-FT (SFT on the winners) beside PPO: what share of PPO's win-rate gain over a coin flip, at what share of
# its drift. Worded for every outcome: PPO may not have gained (smoke), SFT may have gained nothing or more than PPO.
_ppo_gain, _sft_gain = final_small["win"] - 0.5, sft_eval["win"] - 0.5
_ppo = f"PPO β={BETA_SMALL:g}"
_wins = f"SFT's win rate {sft_eval['win']:.3f}, {_ppo}'s {final_small['win']:.3f}"
if _ppo_gain <= 0:
    _bought = f"{_ppo} itself did not beat π_ref in this run, so there is no gain to take a share of ({_wins})"
elif _sft_gain <= 0:
    _bought = f"it bought none of {_ppo}'s gain over a coin flip ({_wins})"
elif _sft_gain >= _ppo_gain:
    _bought = f"it gained at least as much over a coin flip as {_ppo} did ({_wins})"
else:
    _bought = f"it bought {_sft_gain / _ppo_gain:.0%} of {_ppo}'s gain over a coin flip ({_wins})"
_drift = f"{sft_eval['kl']:.2f} nats from π_ref against {_ppo}'s {final_small['kl']:.2f}" + (
    f" ({sft_eval['kl'] / final_small['kl']:.0%} of its drift)" if final_small["kl"] > 0 else "")
display(Markdown(f"**The cheapest method.** SFT on the winners (Preferred-FT: no reward model, no sampling while "
                 f"training) moved {_drift}, and {_bought}. Both win rates carry the intervals in the table."))

# %% [markdown]
# **A leash or a stopwatch?** Without a leash, the gold score of the β = 0 run rose before it fell. Had we stopped
# that run at its best evaluation, would it have done as well as the leash? Gao et al. (2022) found that, in their
# runs, the KL penalty did not improve the gold-versus-KL frontier: it acted much like stopping early. Earlier runs
# of this lesson disagreed with each other on this, so here is this run's answer, read from its own numbers. (Note
# the unfair advantage of the stopwatch: to stop at the peak we had to ask the gold judge during training, which a
# real system cannot do; the leash needs no such peek.)

# %%
_peak_eval = log_free.evals[peak]
leash_wins = final_small["gold"] > _peak_eval["gold"]
display(Markdown(
    f"Stopped at its best evaluation (iteration {_it[peak]}), the unleashed run had gold {_peak_eval['gold']:+.2f} at "
    f"KL {_peak_eval['kl']:.1f} nats; the β = {BETA_SMALL:g} run ended at gold {final_small['gold']:+.2f} at KL "
    f"{final_small['kl']:.1f}. " + ("In this run the leash bought more than the best stopwatch could." if leash_wins
    else "In this run the stopwatch did at least as well as the leash, as Gao et al. found.")
    + " Evaluations came every few iterations, so the true peak may lie between two of them."))
# Reported: does the KL penalty beat early stopping? Fails if the β = 0 run's best held-out gold (found by peeking
# at the gold judge) is at least the leashed run's final gold.
claims.check("kl_penalty_beats_early_stopping", leash_wins, required_at="never", beta=BETA_SMALL,
             leashed_gold_end=final_small["gold"], leashed_kl_end=final_small["kl"],
             unleashed_gold_peak=_peak_eval["gold"], unleashed_kl_at_peak=_peak_eval["kl"],
             peak_iteration=_it[peak], eval_every=ppo_cfg.eval_every)

# %% [markdown]
# And what the numbers look like as text: the same held-out prompts, the same sampling seed, before and
# after. (⏎ marks a line break.)

# %%
_samples = {"π_ref": evaluator.ref_seq, small: evaluator.sample(runs[small]["policy"]),
            free: evaluator.sample(runs[free]["policy"]), "DPO": evaluator.sample(dpo_policy)}
_show = lambda s: s.replace("\n", "⏎").replace("|", "\\|")
rows = ["| prompt | " + " | ".join(_samples) + " |", "|---" * (len(_samples) + 1) + "|"]
for i in range(4):
    cells = []
    for seq in _samples.values():
        t = tok.decode(seq[i].tolist())
        cells.append(f"{_show(t[P:])} ({judge.score([t]).item():+.1f})")
    rows.append(f"| {_show(tok.decode(eval_prompts[i].tolist()))} | " + " | ".join(cells) + " |")
display(Markdown("\n".join(rows)))
print(f"whole notebook so far: {time.perf_counter() - started:.0f} s")

# %% [markdown]
# ## 14. Every judge is a proxy: a second opinion
#
# Read the β = 0 column above again. Our gold judge, the one we called "what we want", is a formula we wrote:
# sentiment, minus 1 per invented word, minus ½ per repeated word. A stutter of real words ("thou … thou …
# world thou") costs only the repeats, so it can outscore π_ref's more varied, half-invented Shakespeare: in some
# runs of this lesson the unleashed policy's stutter beat π_ref under the gold judge on most prompts, text no
# reader would choose. **Every judge is a proxy** for what we actually want, the gold judge and human raters
# included; the defences are more than one judge, and reading the samples.
#
# So we ask a second judge that knows nothing of ours: **SmolLM2-135M**, the small chat model of lesson 09,
# trained by someone else on trillions of words. Its verdict is the *log-likelihood* it gives the whole text
# (prompt and answer, in nats): how much the text looks like language it has read. It is a proxy too: it measures
# fluency, not pleasantness, and language models are known to like repetition (Holtzman et al., 2020, found that
# each repeat of a phrase makes the next repeat *more* likely to a language model). On the first held-out
# prompts, each policy's answer is compared with π_ref's answer to the same prompt, under both judges.

# %%
smol, smol_tok, _smol_info = GGUF.load_gguf(device=device)
second_judge = LanguageModelJudge(smol, smol_tok)
n2 = min(cfg.second_judge_prompts, len(eval_prompts))
_judged = {"π_ref": evaluator.ref_seq, tight: evaluator.sample(runs[tight]["policy"]), small: _samples[small],
           free: _samples[free], f"DPO β={dpo_cfg.beta:g}": _samples["DPO"]}
_t0 = time.perf_counter()
fluency = {label: second_judge.score(evaluator.texts(seq[:n2])) for label, seq in _judged.items()}
second = {}
rows = ["| policy | gold: win vs π_ref (95 % CI) | SmolLM2: log-likelihood, change vs π_ref (nats) "
        "| SmolLM2: win vs π_ref (95 % CI) |", "|---|---|---|---|"]
for label, seq in _judged.items():
    g_win = win_rate(evaluator.gold(seq[:n2]), evaluator.ref_gold[:n2])
    f_win = win_rate(fluency[label], fluency["π_ref"])
    second[label] = {"gold_win": g_win, "fluency_win": f_win,
                     "fluency_change": (fluency[label] - fluency["π_ref"]).mean().item()}
    rows.append(f"| {label} | {g_win[0]:.3f} ({g_win[1]:.2f}–{g_win[2]:.2f}) | {second[label]['fluency_change']:+.1f} "
                f"| {f_win[0]:.3f} ({f_win[1]:.2f}–{f_win[2]:.2f}) |")
display(Markdown(f"On the first {n2} held-out prompts (π_ref against itself is 0.5 by construction):\n\n"
                 + "\n".join(rows)))
print(f"SmolLM2 loaded in {_smol_info.seconds:.1f} s, read {n2 * len(_judged)} texts in {time.perf_counter() - _t0:.0f} s")

# %%
_free, _leashed = second[free], [second[tight], second[small]]
caught = _free["fluency_win"][2] < 0.5 and all(r["fluency_win"][2] >= 0.5 for r in _leashed)
display(Markdown(
    f"Under the gold judge the unleashed policy beats π_ref on {_free['gold_win'][0]:.0%} of these prompts; under "
    f"SmolLM2 on {_free['fluency_win'][0]:.0%}. The leashed runs: {second[small]['fluency_win'][0]:.0%} "
    f"(β = {BETA_SMALL:g}) and {second[tight]['fluency_win'][0]:.0%} (β = {BETA_LARGE:g}) under SmolLM2. "
    + ("The second judge sees what the first one missed: the unleashed policy's text is less like language than "
       "π_ref's, while the leashed policies' text is not worse by that measure." if caught else
       "The second judge does not separate them as hoped (the claim below fails)"
       + (": SmolLM2 *prefers* the unleashed policy's stutter to π_ref's text. Repeated words are exactly what a "
          "language model finds likely, so this judge shares the gold judge's blind spot instead of covering it."
          if _free["fluency_win"][1] > 0.5 else ".")
       + f" The policy it ranks lowest against π_ref is "
         f"{min((k for k in second if k != 'π_ref'), key=lambda k: second[k]['fluency_win'][0])}. A fluency score "
       "is one more proxy with blind spots of its own; two judges that fail in different ways are worth more than "
       "one, and reading the samples stays necessary.")))
# Reported: a second, independent judge should catch the degenerate text. Fails if the unleashed policy is not
# below a coin flip against π_ref under SmolLM2 (upper end of its 95 % interval >= 0.5), or if a leashed PPO run is
# (upper end < 0.5).
claims.check("second_judge_catches_the_unleashed_policy", caught, required_at="never", prompts=n2,
             **{f"{key}_{name}": second[label][f"{name}_win"][0]
                for key, label in (("free", free), ("small", small), ("tight", tight), ("dpo", f"DPO β={dpo_cfg.beta:g}"))
                for name in ("gold", "fluency")},
             free_fluency_ci=second[free]["fluency_win"][1:], small_fluency_ci=second[small]["fluency_win"][1:],
             tight_fluency_ci=second[tight]["fluency_win"][1:],
             fluency_change={label: r["fluency_change"] for label, r in second.items()});

# %% [markdown]
# **One answer taken apart.** The gold judge is a sum of per-word numbers, so any verdict can be read off. Here is
# the first held-out prompt on which the unleashed policy beat π_ref under the gold judge, with each policy's
# answer: the judge's bias, then every word of prompt and answer with what it added (a repeat costs ½, an invented
# word 1; the judge reads the prompt too, as it did all along), and the second judge's log-likelihood beside it.

# %%
_gold_free = evaluator.gold(_samples[free][:n2])
_i = next((i for i in range(n2) if _gold_free[i] > evaluator.ref_gold[i]), 0)
print(f"prompt {tok.decode(eval_prompts[_i].tolist())!r}")
for label in ("π_ref", small, free):
    _t = tok.decode(_judged[label][_i].tolist())
    _parts = " ".join(f"{w}({c:+.1f})" for w, c in judge.explain(_t))
    print(f"\n{label:>10}: {_t[P:]!r}\n            gold {judge.score([_t]).item():+.2f} = bias {judge.bias:+.2f} "
          f"{_parts}\n            SmolLM2 log-likelihood of prompt + answer {fluency[label][_i]:.1f} nats")

# %% [markdown]
# ## 15. What still breaks
#
# This is the last lesson of the timeline, and RLHF is where the field still argues most.
#
# 1. **The critic is the weak link.** Our reward model agrees with held-out labels about three times in four
#    (section 6 prints this run's figure), where a perfect critic would reach the noise ceiling of the
#    labels, and PPO without a leash found its blind spots within a few dozen iterations. Real
#    systems fight this with far more comparisons, larger reward models, ensembles and fresh labels on
#    the policy's *new* answers (iterated RLHF).
# 2. **The leash is a trade, not a fix.** β buys safety with lost improvement; there is no β that is right
#    for every prompt, and the KL only measures distance, not whether the drift is harmful.
# 3. **Our "human" is a toy.** Positive sentiment is a stand-in for "helpful, honest and harmless". People
#    disagree with each other, reward length and confident tone, and can be fooled by fluent nonsense: the
#    real reward is much harder to pin down than any judge we could write. Section 14 showed our gold judge
#    has blind spots of its own, so every win rate in this lesson is a win rate *under that judge*: read each one
#    beside the samples it came from.
# 4. **What came next.** DPO and its relatives (IPO, KTO) made preference tuning cheap; RLAIF and
#    Constitutional AI replace some human labels with a model's judgement; GRPO (2024) drops PPO's value head
#    and, like RLOO (`course_lib.rlhf.ppo` with `advantage="rloo"`), uses other samples of the same prompt as the
#    baseline; and for tasks with checkable answers (maths, code), the "human" becomes a verifier (lesson 11).
# 5. **Where this course's map ends.** You have not chatted with a model *you* trained end to end, and that is a
#    choice of budget, not of principle: the stages were each run where they are cheap enough to measure (06's
#    Shakespeare model, 09's tasks, this lesson's critic and judge), and the real chat model came ready-made in
#    09. nanochat runs the whole pipeline (tokenizer, pretraining, SFT, RL) on one rented 8-GPU machine in a few
#    hours; this course's `gpu` profile runs the same lessons with larger budgets, still far from that. Also off the map:
#    safety training (refusals, harmlessness data, red-teaming) beyond the one clause above; standard benchmarks
#    (MMLU, GSM8K, HumanEval) and the contamination that haunts them; and training at scale (mixed precision
#    across many GPUs, sharded optimisers such as ZeRO/FSDP, FlashAttention's tiling, mixtures of experts, and
#    the data curation that decides most of a model's quality). Stanford's CS336 and nanochat are good next steps.

# %%
lesson.finish()

# %% [markdown]
# ## Exercises
#
# **Exercise 1 (2 points): predict, then measure. Two ways to estimate a KL from samples.**
# Section 3 defined $\mathrm{KL}(\pi\,\|\,\pi_{ref}) = \sum_x \pi(x)\log\frac{\pi(x)}{\pi_{ref}(x)}$, and section 7's
# leash charges every sampled character $\beta\,(\log\pi - \log\pi_{ref})$. That charge is one *sample* of the KL: draw
# x from π, and the average of $\log\pi(x) - \log\pi_{ref}(x)$ over many draws is the KL. It is not the only
# single-sample estimator. With the ratio $r = \pi_{ref}(x)/\pi(x)$, John Schulman's note *Approximating KL
# divergence* (2020) compares
#
# $$k_1 = -\log r = \log\pi(x) - \log\pi_{ref}(x) \quad\text{(the leash's)}, \qquad k_3 = (r - 1) - \log r .$$
#
# An analogy: two thermometers that both read the right temperature *on average*; you want the one whose single
# readings jump around less, and you would like a thermometer that never shows a negative distance.
#
# 1. *Predict first.* Before you run anything, answer in `my_predictions`: which of the two can come out **negative
#    on a single sample** (`"k1"`, `"k3"`, `"both"` or `"neither"`)? And when π and π_ref are **close**, which one
#    has the **smaller spread** from sample to sample (`"k1"` or `"k3"`)? Only the format is graded: the point is to
#    commit before the measurement can sway you.
# 2. *Then write* `kl_estimates(logp, logp_ref)`. Its inputs are two tensors of the same shape: for samples x drawn
#    from π, `logp` holds $\log\pi(x)$ and `logp_ref` holds $\log\pi_{ref}(x)$ (one value per sample, or per character
#    of a batch of responses). Return `(k1, k3)`, two tensors of that same shape, one estimate per sample. If the
#    shapes differ, raise a `ValueError` whose message names `logp_ref`: PyTorch would otherwise *broadcast* a
#    `(4,)` against a `(4, 1)` into 16 meaningless pairs without a word.
#
# The cell after the tests draws samples from two pairs of distributions, one close and one far apart, and prints
# your predictions next to what it measures.

# %% nbgrader={"grade": false, "grade_id": "ex1_kl_estimates", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
my_predictions = {"negative_on_one_sample": "k1", "smaller_spread_when_close": "k3"}
### END SOLUTION


def kl_estimates(logp, logp_ref):
    """k1 and k3 of KL(π ‖ π_ref), one per sample, from log π(x) and log π_ref(x) of samples x drawn from π."""
    ### BEGIN SOLUTION
    if logp.shape != logp_ref.shape:
        raise ValueError(f"logp_ref has shape {tuple(logp_ref.shape)} but logp has shape {tuple(logp.shape)}: "
                         "they must hold one value each per sample")
    log_r = logp_ref - logp
    return -log_r, torch.expm1(log_r) - log_r          # expm1(u) = e^u − 1, exact even for tiny u
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex1_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
assert isinstance(my_predictions, dict) and set(my_predictions) == {"negative_on_one_sample", "smaller_spread_when_close"}
assert my_predictions["negative_on_one_sample"] in ("k1", "k3", "both", "neither")
assert my_predictions["smaller_spread_when_close"] in ("k1", "k3")
_k1, _k3 = kl_estimates(torch.tensor([-1.0, -2.0]), torch.tensor([-2.0, -1.0]))
assert torch.allclose(_k1, torch.tensor([1.0, -1.0]))                        # log π − log π_ref
assert torch.allclose(_k3, torch.tensor([math.exp(-1), math.e - 2]))         # r = 1/e, then r = e
### BEGIN HIDDEN TESTS
_gen = torch.Generator().manual_seed(1)
# by hand, on random per-character log-probabilities of a batch of responses
_lp, _lq = -4 * torch.rand(8, 48, generator=_gen), -4 * torch.rand(8, 48, generator=_gen)
_k1, _k3 = kl_estimates(_lp, _lq)
_r = (_lq - _lp).exp()
assert _k1.shape == _k3.shape == _lp.shape
assert torch.allclose(_k1, -_r.log(), atol=1e-5) and torch.allclose(_k3, _r - 1 - _r.log(), atol=1e-5)
assert (_k3 >= -1e-6).all() and (_k1 < 0).any()
# unbiased: both means within 4 standard errors of the exact KL, for a close and a far pair
_p = torch.softmax(torch.randn(30, generator=_gen), 0)
for _shift in (0.3, 1.0):
    _q = torch.softmax(_p.log() + _shift * torch.randn(30, generator=_gen), 0)
    _x = torch.multinomial(_p, 200_000, replacement=True, generator=_gen)
    _k1, _k3 = kl_estimates(_p.log()[_x], _q.log()[_x])
    _exact = (_p * (_p / _q).log()).sum().item()
    for _k in (_k1, _k3):
        assert abs(_k.mean().item() - _exact) < 4 * _k.std().item() / len(_k) ** 0.5, (_shift, _k.mean(), _exact)
    assert (_k3 >= -1e-6).all()
    if _shift == 0.3:
        assert _k3.var() < _k1.var()                 # close distributions: k3 is the steadier thermometer
# mismatched shapes: a clear error, never a silent broadcast
for _a, _b in ((torch.zeros(4), torch.zeros(4, 1)), (torch.zeros(3), torch.zeros(2))):
    try:
        kl_estimates(_a, _b)
        raise AssertionError("kl_estimates accepted logp and logp_ref of different shapes")
    except ValueError as _e:
        assert "logp_ref" in str(_e)
### END HIDDEN TESTS

# %%
# The measurement: π over 20 outcomes, and two π_ref (a close one and a far one); 100,000 samples from π each,
# drawn with a generator of their own so the lesson's random numbers stay untouched. The exact KL is section 3's `kl`.
_gen = torch.Generator().manual_seed(seed + 100)
_pi = torch.softmax(torch.randn(20, generator=_gen), 0)
_measured, _rows = {}, ["| π_ref | exact KL | k1: mean ± 2 s.e. | k3: mean ± 2 s.e. | samples with k1 < 0 "
                        "| with k3 < 0 | spread (std) k1 | spread (std) k3 |", "|---|---|---|---|---|---|---|---|"]
fig, axes = plt.subplots(1, 2, figsize=(11, 3))
for ax, (name, shift) in zip(axes, (("close", 0.1), ("far apart", 1.0))):
    _ref = torch.softmax(_pi.log() + shift * torch.randn(20, generator=_gen), 0)
    _x = torch.multinomial(_pi, 100_000, replacement=True, generator=_gen)
    _k1, _k3 = kl_estimates(_pi.log()[_x], _ref.log()[_x])
    _measured[name] = {"k1": _k1, "k3": _k3, "exact": kl(_pi, _ref)}
    _se = lambda k: 2 * k.std().item() / len(k) ** 0.5
    _rows.append(f"| {name} | {kl(_pi, _ref):.5f} | {_k1.mean():.5f} ± {_se(_k1):.5f} | {_k3.mean():.5f} ± "
                 f"{_se(_k3):.5f} | {(_k1 < 0).float().mean():.0%} | {(_k3 < 0).float().mean():.0%} "
                 f"| {_k1.std():.4f} | {_k3.std():.4f} |")
    _bins = torch.linspace(min(_k1.min(), _k3.min()).item(), max(_k1.max(), _k3.max()).item(), 60)
    ax.hist(_k1.numpy(), bins=_bins.numpy(), alpha=0.6, label="k1 = log π − log π_ref")
    ax.hist(_k3.numpy(), bins=_bins.numpy(), alpha=0.6, label="k3 = (r − 1) − log r")
    ax.axvline(kl(_pi, _ref), color="black", lw=1, label="exact KL")
    ax.set_title(f"π_ref {name} (exact KL {kl(_pi, _ref):.3f} nats)", fontsize=10)
    ax.set_xlabel("one sample's estimate (nats)")
    ax.set_yticks([])
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
display(Markdown("\n".join(_rows)))
_negative = [k for k in ("k1", "k3") if any((m[k] < 0).any() for m in _measured.values())]
_steadier = min(("k1", "k3"), key=lambda k: _measured["close"][k].std().item())
_share_below = {k: torch.cat([m[k] for m in _measured.values()]).lt(0).float().mean().item() for k in ("k1", "k3")}
display(Markdown(
    f"Can one sample's estimate be negative? You predicted **{my_predictions['negative_on_one_sample']}**; measured: "
    f"**{'both' if len(_negative) == 2 else _negative[0] if _negative else 'neither'}** (samples below zero, both "
    f"pairs together: k1 {_share_below['k1']:.0%}, k3 {_share_below['k3']:.0%}). Which is steadier when π and π_ref "
    f"are close? You predicted **{my_predictions['smaller_spread_when_close']}**; measured: **{_steadier}** (there, "
    f"k1's standard deviation is {_measured['close']['k1'].std() / _measured['close']['k3'].std():.1f} times k3's)."))

# %% [markdown]
# **Reading your result.**
#
# * **k1 can be negative on one sample, k3 never.** k1 = log π(x) − log π_ref(x) is negative whenever π_ref likes the
#   sample more than π does, and while the two differ such samples always exist: both add up to 1, so where π has
#   less mass than π_ref somewhere, it has more elsewhere. Only k1's *average* is guaranteed to be ≥ 0. For k3, the
#   logarithm lies below its tangent line at 1: $\log r \le r - 1$ for every $r > 0$, with equality only at r = 1. So
#   $k_3 = (r - 1) - \log r \ge 0$ on every single sample, and is 0 only where the two distributions agree.
# * **Both are right on average (unbiased).** For x drawn from π, $E_\pi[r] = \sum_x \pi(x)\,\frac{\pi_{ref}(x)}{\pi(x)}
#   = \sum_x \pi_{ref}(x) = 1$ (whenever π gives every outcome some probability, as a softmax always does). So
#   $E[k_1] = E_\pi[\log\pi - \log\pi_{ref}] = \mathrm{KL}$ by section 3's definition, and $k_3 = k_1 + (r - 1)$ adds a
#   term whose average is exactly 0: $E[k_3] = \mathrm{KL}$ too. So each mean in the table should land within its
#   error bar (two standard errors) of the exact KL, about 19 times in 20; a biased one would fall further outside
#   its error bar as the samples grow and the bar shrinks.
# * **Why k3 is steadier when the two are close.** Write $r = 1 + \varepsilon$ with ε small. Then
#   $k_1 = -\log(1+\varepsilon) \approx -\varepsilon + \varepsilon^2/2$ swings by about ε either way, while
#   $k_3 \approx \varepsilon^2/2$: the added $r - 1 = \varepsilon$ cancels k1's big first-order swing, leaving only
#   the small second-order part. The KL itself is of order ε², so one k1 sample is mostly noise around a small
#   number. (Statisticians call such a zero-mean helper term a *control variate*.) When the distributions are far
#   apart, r can be huge on rare samples and k3's advantage shrinks or can vanish: compare the two panels.
#
# Who uses which: our PPO puts k1, per character, into the reward (Ziegler et al., 2019; InstructGPT), so a
# character π_ref likes more than π earns a small bonus, harmless on average. GRPO (DeepSeekMath, 2024) puts k3,
# per token, into its loss, and cites Schulman's note for it. The lesson's evaluator uses neither: at every
# position of a sampled response it sums section 3's formula exactly over all characters, and samples only the
# prefixes.

# %% [markdown]
# **Exercise 2 (2 points).** The implicit reward of DPO. Write the DPO loss for one batch from summed
# response log-probabilities, and check for yourself that it equals ln 2 when the policy is the reference.
# Then: by how many nats must the policy prefer `y+` over `y−` (relative to π_ref) for the loss to fall to
# 0.1 at β = 0.1? Return that margin from `margin_for_loss(loss, beta)`.

# %% nbgrader={"grade": false, "grade_id": "ex2_dpo", "locked": false, "schema_version": 3, "solution": true}
def dpo(logp_chosen, logp_rejected, ref_chosen, ref_rejected, beta):
    ### BEGIN SOLUTION
    z = beta * ((logp_chosen - ref_chosen) - (logp_rejected - ref_rejected))
    return torch.nn.functional.softplus(-z).mean()
    ### END SOLUTION


def margin_for_loss(loss, beta):
    ### BEGIN SOLUTION
    # loss = -log sigmoid(beta * m)  =>  beta * m = log(1 / (e^loss - 1))
    return -math.log(math.exp(loss) - 1) / beta
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex2_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_z = torch.zeros(4)
assert abs(dpo(_z - 3, _z - 5, _z - 3, _z - 5, 0.1).item() - math.log(2)) < 1e-6
### BEGIN HIDDEN TESTS
_lc, _lr, _rc, _rr = (torch.randn(16) * 5 for _ in range(4))
for _beta in (0.05, 0.1, 0.5):
    assert torch.allclose(dpo(_lc, _lr, _rc, _rr, _beta), dpo_loss(_lc, _lr, _rc, _rr, _beta)[0], atol=1e-6)
for _loss in (0.1, 0.3, 0.6):
    _m = margin_for_loss(_loss, 0.1)
    assert abs(dpo_loss(torch.tensor([_m]), torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([0.0]), 0.1)[0].item()
               - _loss) < 1e-5
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (2 points).** RLOO, the value-free baseline. For `k` answers per prompt, laid out as `k`
# consecutive entries of `rewards`, each answer's advantage is its reward minus the mean reward of the
# *other* `k − 1` answers to the same prompt. Return the advantages (same shape as `rewards`).

# %% nbgrader={"grade": false, "grade_id": "ex3_rloo", "locked": false, "schema_version": 3, "solution": true}
def leave_one_out(rewards, k):
    ### BEGIN SOLUTION
    grouped = rewards.view(-1, k)
    return (grouped - (grouped.sum(1, keepdim=True) - grouped) / (k - 1)).view_as(rewards)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex3_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
assert torch.allclose(leave_one_out(torch.tensor([1.0, 3.0]), 2), torch.tensor([-2.0, 2.0]))
### BEGIN HIDDEN TESTS
from course_lib.rlhf.ppo import rloo_advantages

assert torch.allclose(leave_one_out(torch.tensor([1.0, 2.0, 3.0, 6.0]), 4), torch.tensor([-8 / 3, -4 / 3, 0.0, 4.0]))
_r = torch.randn(24)
for _k in (2, 3, 4, 6):
    assert torch.allclose(leave_one_out(_r, _k), rloo_advantages(_r, _k), atol=1e-6)
    assert torch.allclose(leave_one_out(_r, _k), _k / (_k - 1) * (_r.view(-1, _k) - _r.view(-1, _k).mean(1, keepdim=True)).view(-1), atol=1e-5)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 4 (2 points): read the samples. Which policy is reward hacking?**
# Three policies have written answers to the same held-out prompts: π_ref, the PPO run on a leash (section 7) and
# the one without (section 8). *Reward hacking* is not "the text got worse"; it is two numbers parting ways: the
# score the policy was trained to raise (the reward model's, the **proxy**) goes *up*, while a signal it never saw
# goes *down*. Two such signals are at hand: the **share of distinct words** among all the words the policy wrote (a
# stutter repeats itself, section 8's table), and a **second judge** (section 14's SmolLM2 log-likelihood; higher
# is better). An analogy: a student whose marks on the practice test soar while their essays turn into the same
# sentence over and over has learned the practice test, not the subject.
#
# 1. *Predict first.* Before you run anything, answer in `my_hacking_predictions`: on this run's samples, which
#    policy will your detector flag (`"leashed"`, `"unleashed"`, `"both"` or `"neither"`)? And could the reward
#    model's score *alone* single out the hacking policy (`True` or `False`)? Only the format is graded.
# 2. *Then write* `distinct_share(texts)`: the number of distinct words divided by the number of words, counting
#    all the words of all the texts together (lower-case them, split on whitespace). A single string instead of a
#    list, or texts with no words at all, raise a `ValueError` whose message names `texts` (iterating over one
#    string would silently treat each character as a text).
# 3. *And* `hacking_suspects(table, ref="π_ref", tol=0.05)`. `table` maps each policy's name to a dict with
#    `"proxy"`, `"distinct"` and `"second"` (higher is better for all three). Return, in the table's order, the
#    names other than `ref` whose proxy is **higher** than ref's **and** that are worse than ref on at least one
#    independent signal: a distinct share lower than ref's by **more than** `tol`, or a `"second"` **lower** than
#    ref's. If `ref` is not in the table, raise a `ValueError` whose message names `ref`.
#
# The cell after the tests builds the table from the lesson's own samples, shows the three answers to two prompts
# with the gold judge's word-by-word breakdown (of prompt and answer: the judge reads both), and runs your detector
# beside your prediction.

# %% nbgrader={"grade": false, "grade_id": "ex4_read_the_samples", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
my_hacking_predictions = {"flagged": "unleashed", "proxy_alone_tells": False}
### END SOLUTION


def distinct_share(texts):
    """Distinct words / all words, over all the texts together (lower-cased, split on whitespace)."""
    ### BEGIN SOLUTION
    if isinstance(texts, str):
        raise ValueError("texts must be a list of texts, got a single string: wrap it in a list")
    all_words = [w for t in texts for w in t.lower().split()]
    if not all_words:
        raise ValueError("texts holds no words, so the share of distinct words is undefined")
    return len(set(all_words)) / len(all_words)
    ### END SOLUTION


def hacking_suspects(table, ref="π_ref", tol=0.05):
    """Names (table order) whose proxy beat ref's while their distinct share fell by more than tol or their
    second judge's score fell below ref's."""
    ### BEGIN SOLUTION
    if ref not in table:
        raise ValueError(f"ref {ref!r} is not a row of the table (rows: {list(table)})")
    base = table[ref]
    return [name for name, row in table.items() if name != ref and row["proxy"] > base["proxy"]
            and (row["distinct"] < base["distinct"] - tol or row["second"] < base["second"])]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex4_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
assert isinstance(my_hacking_predictions, dict) and set(my_hacking_predictions) == {"flagged", "proxy_alone_tells"}
assert my_hacking_predictions["flagged"] in ("leashed", "unleashed", "both", "neither")
assert my_hacking_predictions["proxy_alone_tells"] in (True, False)
assert distinct_share(["good good good good"]) == 0.25
assert hacking_suspects({"π_ref": {"proxy": 0.0, "distinct": 0.5, "second": -60.0},
                         "stutter": {"proxy": 3.0, "distinct": 0.2, "second": -70.0}}) == ["stutter"]
### BEGIN HIDDEN TESTS
from course_lib.rlhf.loop import distinct_fraction

assert distinct_share(["To be or not to be"]) == 4 / 6                 # lower-cased: "To" and "to" are one word
assert distinct_share(["a b", "a b"]) == 0.5                          # pooled over the texts, not a mean per text
assert distinct_share(("one  two\nthree",)) == 1.0                    # any whitespace splits; a tuple is a list too
for _bad in ("good good", [], ["", "  \n"]):
    try:
        distinct_share(_bad)
        raise AssertionError(f"distinct_share accepted {_bad!r}")
    except ValueError as _e:
        assert "texts" in str(_e)
# by construction: a stutter of words the proxy pays for, against varied text
_stutter = ["good good good good good good", "joy joy joy joy joy"]
_varied = ["a good day to walk in the park", "sweet joy of this spring morning"]
_proxy = lambda ts: sum(w in ("good", "joy") for t in ts for w in t.split()) / len(ts)
assert distinct_share(_stutter) == 2 / 11 and distinct_share(_varied) == 14 / 14
_table = {"varied": {"proxy": _proxy(_varied), "distinct": distinct_share(_varied), "second": -50.0},
          "stutter": {"proxy": _proxy(_stutter), "distinct": distinct_share(_stutter), "second": -45.0},   # 2nd judge fooled
          "honest": {"proxy": 1.5, "distinct": 0.97, "second": -48.0},      # proxy up, a small dip inside tol
          "broken": {"proxy": -1.0, "distinct": 0.2, "second": -90.0},      # worse everywhere, but gained nothing
          "fluent_hack": {"proxy": 2.0, "distinct": 1.0, "second": -55.0},  # varied words, second judge down
          "flat": {"proxy": 1.0, "distinct": 0.3, "second": -40.0}}         # proxy equal to ref's: not higher
assert hacking_suspects(_table, ref="varied") == ["stutter", "fluent_hack"]
assert hacking_suspects(_table, ref="varied", tol=0.9) == ["fluent_hack"]   # a drop of 0.82 is within tol 0.9
assert hacking_suspects({"r": {"proxy": 0.0, "distinct": 0.5, "second": 0.0},
                         "edge": {"proxy": 1.0, "distinct": 0.25, "second": 0.0}}, ref="r", tol=0.25) == []  # not more
assert hacking_suspects({"r": {"proxy": 0.0, "distinct": 0.5, "second": 0.0},
                         "edge": {"proxy": 1.0, "distinct": 0.25, "second": 0.0}}, ref="r", tol=0.125) == ["edge"]
try:
    hacking_suspects(_table)                                          # the default ref, π_ref, is not a row here
    raise AssertionError("hacking_suspects accepted a table without its ref")
except ValueError as _e:
    assert "ref" in str(_e)
# on the lesson's own samples, only what holds whatever the run: the share is the lesson's metric, and a policy
# identical to π_ref is never a suspect
for _seq in _samples.values():
    assert abs(distinct_share(evaluator.texts(_seq)) - distinct_fraction(evaluator.texts(_seq))) < 1e-12
_row = {"proxy": rm.score(_samples["π_ref"]).mean().item(), "distinct": distinct_share(evaluator.texts(_samples["π_ref"])),
        "second": fluency["π_ref"].mean().item()}
assert hacking_suspects({"π_ref": _row, "twin": dict(_row)}) == []
### END HIDDEN TESTS

# %%
# The lesson's three policies in one table: proxy and distinct share on all the held-out prompts, the second judge
# (SmolLM2 log-likelihood, section 14) on the first of them. Nothing is sampled here: these are section 13's samples.
_three = {"π_ref": _samples["π_ref"], small: _samples[small], free: _samples[free]}
_table5 = {label: {"proxy": rm.score(seq).mean().item(), "distinct": distinct_share(evaluator.texts(seq)),
                   "second": fluency[label].mean().item(), "gold": evaluator.gold(seq).mean().item()}
           for label, seq in _three.items()}
_rows5 = [f"| policy | proxy: RM score | distinct words | second judge (first {n2} prompts) | gold (for reference) |",
          "|---|---|---|---|---|"]
_rows5 += [f"| {label} | {r['proxy']:+.2f} | {r['distinct']:.2f} | {r['second']:.1f} | {r['gold']:+.2f} |"
           for label, r in _table5.items()]
display(Markdown("\n".join(_rows5)))
for _i5 in range(2):
    print(f"prompt {tok.decode(eval_prompts[_i5].tolist())!r}")
    for label, seq in _three.items():
        _t = tok.decode(seq[_i5].tolist())
        print(f"  {label:>9}: {_t[P:]!r}\n             gold {judge.score([_t]).item():+.2f}: "
              + " ".join(f"{w}({c:+.1f})" for w, c in judge.explain(_t)))
_flagged5 = hacking_suspects(_table5)
_word5 = {small: "leashed", free: "unleashed"}
_verdict5 = "both" if len(_flagged5) == 2 else "neither" if not _flagged5 else _word5[_flagged5[0]]
_top5 = max((k for k in _table5 if k != "π_ref"), key=lambda k: _table5[k]["proxy"])
display(Markdown(
    f"You predicted **{my_hacking_predictions['flagged']}**; your detector flags **{_verdict5}** on this run. "
    f"Both trained policies were paid by the same reward model; the higher proxy belongs to {_top5} "
    f"({_table5[_top5]['proxy']:+.2f}, π_ref {_table5['π_ref']['proxy']:+.2f}). You said the proxy alone "
    f"{'could' if my_hacking_predictions['proxy_alone_tells'] else 'could not'} single out the hacker."))

# %% [markdown]
# **Reading your result.** The proxy alone cannot tell: an honest improvement and a hack both raise the number the
# policy was paid for, and a hacked policy usually raises it *more*, so "highest reward" points at the hacker and the
# best policy alike. What tells them apart is a signal the optimiser never saw, moving the other way. That is also
# why the detector needs the proxy to have risen: a policy that got worse on every count without gaining on its own
# objective is broken, not hacking. Each independent signal can be fooled in its own way (section 14: a language
# model may *like* a stutter, so the distinct share catches what it misses), which is why the rule takes any one of
# them. The tolerance is a choice, and at `smoke` the runs are too short for any policy to drift far, so
# "neither" can be the right answer there. Whatever the detector says, read the answers above: a few lines of text
# settle what a table of averages only suggests.
