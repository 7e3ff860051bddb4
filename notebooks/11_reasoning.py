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
# # 11 · Reasoning: thinking out loud, sampling more, and learning from a checker
#
# | 2017 | 2018–2020 | 2022 | 2022 | 2024 | 2025 |
# |---|---|---|---|---|---|
# | Transformer | GPT, GPT-3 | RLHF (lesson 10) | chain of thought, self-consistency | o1; GRPO (DeepSeekMath) | **DeepSeek-R1: RL with verifiable rewards ← you are here** |
#
# **Where we are.** Lesson 10 ended with a model tuned towards what a (simulated) person likes, through a reward
# model that guesses their taste. The next chapter of the story is about questions that have a *right answer*:
# sums, proofs, programs. In 2022, Wei et al. noticed that large models answer such questions far better when
# the prompt shows worked examples that **write the steps out** ("chain of thought"), and Wang et al. that
# sampling many chains and taking the **most common answer** (self-consistency) is better still. In 2024
# OpenAI's o1 and in 2025 DeepSeek-R1 went one step further: train the model with **reinforcement learning
# whose reward is a program that checks the answer**. No reward model to fool, no human in the loop: the sum is
# right or it is not.
#
# **What "reasoning models" are, and are not.** They are ordinary next-token predictors, the same Transformer as
# lesson 06, that were trained to produce a long stretch of intermediate text before the answer, and to
# make that text useful. They are not a new architecture, not a symbolic solver bolted on, and not guaranteed
# correct: the intermediate text is more samples from the same distribution, and a checker only exists where
# someone could write one.
#
# **What we do here**, on a laptop CPU, with controls, on a task small enough to see everything: 3-digit
# addition by a 150-thousand-parameter GPT.
#
# 1. *Thinking out loud helps, and why*: the same model trained to answer directly, or to write its work first.
# 2. *Test-time compute*: sample more, and check (pass@k) or vote (majority).
# 3. *RL with a verifiable reward*: the GRPO loop, and **what it changes**: does RL teach new skills, or does it
#    make the model pick, more often, answers it could already find?
# 4. *Verifier hacking*: a checker that only checks the format gets gamed, as lesson 10's reward model did.
#
# **An analogy.** A pupil adding 478 + 365 in their head has to hold the carries in memory while producing the
# first digit of the answer, which is the last one they can work out. On paper they write each column and its
# carry as they go, and the answer falls out. Reinforcement learning with a checker is the teacher who marks only
# the final answer: it cannot show the pupil a method, it can only tell them which of their own attempts worked.

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
import itertools
import math
import time

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from course_lib.core.diagrams import cycle_diagram
from course_lib.gpt import GPT, generate
from course_lib.harness.lesson import Lesson
from course_lib.recipes import FormatRecipe, RLVRRecipe
from course_lib.reasoning import (FORMATS, PROMPT_LEN, ProblemSplit, addition_tokenizer, completion, greedy_accuracy,
                                  majority_vote_accuracy, never_solved, parse_answer, pass_at_k, pass_curve, prompt,
                                  right_length, rl_config, rl_with_verifier, sample_answers, sample_completions,
                                  decode_completions, train_format, verify)
from course_lib.rlhf import group_advantages, rloo_advantages

lesson = Lesson("11_reasoning", profile, seed)
device, claims = lesson.device, lesson.claims

# %%
fr, rr = FormatRecipe.preset(profile), RLVRRecipe.preset(profile)
tok = addition_tokenizer()
split = ProblemSplit.draw(fr.train_problems, fr.val_problems, fr.test_problems, seed=seed)
print(fr)
print(rr)
print(f"{len(split.train)} training problems, {len(split.val)} validation, {len(split.test)} test (disjoint); "
      f"vocabulary {''.join(tok.itos)!r}")

# %% [markdown]
# ## 1. One question, three ways to answer it
#
# Every problem is the prompt `abc+def=` (leading zeros keep it 8 characters). The model learns to continue it in
# one of three **formats**:
#
# * **direct**: the sum, as we write numbers, most significant digit first;
# * **reversed**: the same digits, least significant first: the order in which carries are produced;
# * **scratchpad**: for each column, from the right, the column's digit and its carry (`3c1` = "digit 3, carry
#   1"), then `>` and the sum.
#
# Every answer ends with `$` and is padded with `$` to one length per format, so sampled answers all have the same
# length and nothing needs masking. The **verifier** is a few lines of Python: read what follows the last `>` (or
# the start) up to the first `$`, and compare it with `a + b`. It checks the *outcome* only, as DeepSeek-R1's
# rule-based reward does: a scratchpad with a wrong column but the right sum passes.

# %%
for fmt in FORMATS:
    print(f"{fmt:10s} {prompt(478, 365)}{completion(478, 365, fmt)}")
known = [("843$$", "direct", True), ("844$$", "direct", False), ("348$$", "reversed", True),
         ("843$$", "reversed", False), ("3c1,4c1,8c0>843$$", "scratchpad", True),
         ("3c1,4c1,8c0>834$$", "scratchpad", False), ("0c0,0c0,0c0>843$$", "scratchpad", True),
         ("3c1,4c1,8c0843$$", "scratchpad", False), ("843", "direct", False), ("8a3$$", "direct", False)]
verdicts = [verify(text, 478, 365, fmt) for text, fmt, _ in known]
for (text, fmt, want), got in zip(known, verdicts):
    print(f"  {fmt:10s} {text!r:22s} verifier says {got!s:5s} (expected {want})")
round_trip = all(parse_answer(completion(a, b, f), f) == a + b for a, b in split.test.tolist() for f in FORMATS)
claims.check("verifier_is_right_on_known_cases", verdicts == [w for _, _, w in known] and round_trip,
             required_at="always", cases=len(known), round_trip_problems=len(split.test) * len(FORMATS));

# %% [markdown]
# ### Why writing the work out buys computation
#
# Lesson 05 counted **sequential steps**: the length of the chain of computations that must run one after another.
# A Transformer's chain within one forward pass is its number of layers, however long the input. Our model has
# three. To write the *first* digit of a direct answer it gets one forward pass: three layers to find the carry
# out of the units column, push it through the tens, then through the hundreds. A scratchpad answer's first digit
# comes after twelve characters of work, and **each generated character is another full forward pass that can
# read everything written before**: the carry of each column is sitting in the context, already computed, by the
# time it is needed. The count below hooks every Transformer block and generates up to the first digit of the
# answer.

# %%
def chain_before_answer(model, fmt):
    """Block calls (each one waits for the previous) before the first answer digit is written, by greedy decoding."""
    text = completion(478, 365, fmt)
    first_digit = text.index(">") + 1 if fmt == "scratchpad" else 0
    calls = [0]
    hooks = [b.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1)) for b in model.h]
    try:
        generate(model, torch.tensor(tok.encode(prompt(478, 365))), first_digit + 1, temperature=0.0)
    finally:
        for h in hooks:
            h.remove()
    return calls[0], first_digit


_probe = GPT(fr.model_config(vocab_size=len(tok))).to(device)
chain = {fmt: chain_before_answer(_probe, fmt) for fmt in FORMATS}
for fmt, (steps, before) in chain.items():
    print(f"{fmt:10s} {before:2d} characters before the answer's first digit -> {steps:3d} sequential block steps")
claims.check("scratchpad_buys_sequential_steps",
             all(steps == (before + 1) * fr.n_layer for steps, before in chain.values())
             and chain["scratchpad"][0] > 10 * chain["direct"][0], required_at="always",
             layers=fr.n_layer, steps={f: s for f, (s, _) in chain.items()});

# %% [markdown]
# ## 2. Thinking out loud helps: the same model, three formats
#
# The experiment: the same GPT (same shape, same number of parameters), the same training problems, the same steps,
# batch and learning rate; only the *format of the answer* changes. The loss counts the completion only (lesson 10's
# `response_nll`). Every few steps we decode the test problems greedily and count exact matches. Several seeds per
# format (three at `lesson`), because how fast a small model finds a trick varies from one initialisation to the
# next.

# %%
fmt_runs = {fmt: [] for fmt in FORMATS}
fmt_seconds = {fmt: 0.0 for fmt in FORMATS}
seeds = list(range(seed, seed + fr.seeds))
for s in seeds:
    for fmt in FORMATS:
        t0 = time.perf_counter()
        run = train_format(split, fmt, tok, fr, device, seed=s,
                           catch=fr.catch if (fmt == "scratchpad" and s == seed) else None)
        fmt_seconds[fmt] += time.perf_counter() - t0
        fmt_runs[fmt].append(run)
        print(f"seed {s} {fmt:10s} test exact match {run.final:.3f}  ({time.perf_counter() - t0:.0f} s)")
print("parameters:", fmt_runs["direct"][0].model.num_params())

# %%
fig, ax = plt.subplots(figsize=(7.5, 4))
for i, fmt in enumerate(FORMATS):
    for j, run in enumerate(fmt_runs[fmt]):
        steps, acc = zip(*run.curve)
        ax.plot(steps, acc, color=f"C{i}", lw=1.5, alpha=0.85, marker="o", ms=2.5,
                label=fmt if j == 0 else None, ls=("-", "--", ":", "-.", "-")[j % 5])
ax.set_xlabel("training step (same batch, same learning rate)")
ax.set_ylabel(f"exact match, {len(split.test)} test problems (greedy)")
ax.set_title("Same model, same steps: the format of the answer decides (one line per seed)")
ax.grid(alpha=0.3)
ax.legend()
plt.show()

finals = {fmt: [r.final for r in fmt_runs[fmt]] for fmt in FORMATS}
rows = ["| seed | " + " | ".join(FORMATS) + " |", "|---" * (len(FORMATS) + 1) + "|"]
for j, s in enumerate(seeds):
    rows.append(f"| {s} | " + " | ".join(f"{finals[f][j]:.3f}" for f in FORMATS) + " |")
display(Markdown("\n".join(rows)))

# %%
margin = min(sp - d for sp, d in zip(finals["scratchpad"], finals["direct"]))
claims.check("scratchpad_beats_direct_answer", margin >= 0.3, required_at="lesson", steps=fr.steps,
             seeds=seeds, direct=finals["direct"], reversed=finals["reversed"], scratchpad=finals["scratchpad"],
             smallest_margin=margin)
claims.check("reversed_digits_beat_direct", all(r > d for r, d in zip(finals["reversed"], finals["direct"])),
             required_at="never", direct=finals["direct"], reversed=finals["reversed"]);

# %% [markdown]
# **The control: is it just more training signal?** A scratchpad answer is longer, so at equal steps the scratchpad
# model reads (and is corrected on) more tokens: 25 per example against 13. If that were the whole story, the
# scratchpad model should lose its edge at equal *tokens*. So compare the direct model at the end of training with
# the scratchpad model at the step where it had processed no more tokens than that (a FLOP count, never a
# clock). And notice the reversed format: exactly as many tokens as direct, only the order changes. When it
# works (its cliff comes at a seed-dependent step), it is because the carries come out in the order they are
# needed, not because there are more of them.

# %%
len_direct, len_scratch = PROMPT_LEN + len(completion(0, 0, "direct")), PROMPT_LEN + len(completion(0, 0, "scratchpad"))
equal_step = fr.steps * len_direct // len_scratch
at_equal_step = max(s for s, _ in fmt_runs["scratchpad"][0].curve if s <= equal_step)
at_equal = [dict(run.curve)[at_equal_step] for run in fmt_runs["scratchpad"]]
print(f"tokens per example: direct {len_direct}, scratchpad {len_scratch}; scratchpad at step {at_equal_step} "
      f"(<= {equal_step}) has seen no more tokens than direct at step {fr.steps}")
print(f"exact match at equal tokens: scratchpad {[round(a, 3) for a in at_equal]} vs direct "
      f"{[round(a, 3) for a in finals['direct']]}")
claims.check("scratchpad_wins_at_equal_training_tokens", all(a > d for a, d in zip(at_equal, finals["direct"])),
             required_at="never", scratchpad_step=at_equal_step, direct_step=fr.steps, scratchpad=at_equal,
             direct=finals["direct"])
claims.check("format_training_seconds", True, required_at="never",
             seconds={f: round(v / len(seeds), 1) for f, v in fmt_seconds.items()});

# %% [markdown]
# ## 3. Test-time compute: sample more, then check or vote
#
# Now take a model that is only partly trained: the scratchpad run of the first seed, caught the first time its
# greedy exact match on the *validation* problems reached a threshold. (The test problems are kept for the numbers
# below.) Sampling at temperature 1, it gets some problems right some of the time. Two ways to spend more
# compute at test time, without any training:
#
# * **pass@k** (Chen et al. 2021): draw k answers; the problem counts as solved if *any* is right. This needs an
#   oracle that can check, here our verifier (for code: unit tests).
# * **majority vote @k** (self-consistency, Wang et al. 2022): draw k answers and output the most common one. No
#   oracle needed: different reasoning paths that reach the *same* answer are evidence for it.
#
# Drawing exactly k samples per problem and checking gives a noisy estimate of pass@k. Chen et al.'s trick: draw
# n ≥ k samples once, count the c right ones, and compute the probability that a random k-subset of them holds at
# least one right answer, $1 - \binom{n-c}{k} / \binom{n}{k}$: unbiased, and much less noisy. First, by brute force
# on a small case (enumerate every subset), against `course_lib`'s product formula:

# %%
start_run = fmt_runs["scratchpad"][0]
start = start_run.caught if start_run.caught is not None else start_run.model
print(f"RL start: scratchpad model at step {start_run.caught_step} "
      f"(validation greedy exact match first >= {fr.catch})")
problems = split.test[:rr.eval_problems]
truth = problems.sum(1)
before_correct, before_answers = sample_answers(start, problems, "scratchpad", tok, n=rr.eval_samples,
                                                generator=torch.Generator().manual_seed(seed + 100))


def brute_force_pass_at_k(flags, k):
    subsets = list(itertools.combinations(flags, k))
    return sum(any(s) for s in subsets) / len(subsets)


small_n = min(10, rr.eval_samples)
checks = [(brute_force_pass_at_k(row[:small_n].tolist(), k), pass_at_k(small_n, row[:small_n].sum()[None], k).item())
          for row in before_correct[:20] for k in range(1, small_n + 1)]
worst = max(abs(a - b) for a, b in checks)
print(f"{len(checks)} (problem, k) cases with n = {small_n}: largest difference brute force vs formula {worst:.2e}")
claims.check("pass_at_k_estimator_equals_brute_force", worst < 1e-12, required_at="always", cases=len(checks),
             n=small_n, largest_difference=worst);

# %%
ks = [k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256) if k <= rr.eval_samples]
greedy_before = greedy_accuracy(start, problems, "scratchpad", tok)
pass_before = pass_curve(before_correct, ks)
vote_before = {k: majority_vote_accuracy(before_answers, truth, k).mean().item() for k in ks}
plt.figure(figsize=(7, 3.8))
plt.plot(ks, [pass_before[k] for k in ks], "o-", label="pass@k (an oracle checks each answer)")
plt.plot(ks, [vote_before[k] for k in ks], "s-", label="majority vote of k samples (no oracle)")
plt.axhline(greedy_before, color="gray", ls=":", label="greedy (one answer, temperature 0)")
plt.xscale("log", base=2)
plt.xlabel("samples per problem, k")
plt.ylabel(f"fraction of {len(problems)} test problems solved")
plt.title("Test-time compute: more samples, more problems solved")
plt.grid(alpha=0.3)
plt.legend(fontsize=8)
plt.show()
k_vote = max(k for k in ks if k <= 32)
print(f"pass@1 {pass_before[1]:.3f} | majority vote @{k_vote} {vote_before[k_vote]:.3f} | greedy {greedy_before:.3f} | "
      f"pass@{ks[-1]} {pass_before[ks[-1]]:.3f}")
claims.check("majority_vote_beats_one_sample", vote_before[k_vote] >= pass_before[1] + 0.1, required_at="lesson",
             k=k_vote, pass_at_1=pass_before[1], majority_vote=vote_before[k_vote], greedy=greedy_before,
             problems=len(problems), samples=rr.eval_samples);

# %% [markdown]
# Majority voting works because the model's *mistakes are scattered* (a wrong carry here, a slip there) while its
# right answers all agree. The gap between the vote and pass@k is the value of an oracle: with a checker you can
# keep any right answer, even a rare one; without one you need it to be the most common. And compare the vote with
# greedy decoding, which also picks "the most likely", one token at a time and at no extra cost:

# %%
_greedy_wins = greedy_before >= vote_before[k_vote]
display(Markdown(
    f"Here greedy decoding solves {greedy_before:.0%} of the problems and the vote of {k_vote} samples "
    f"{vote_before[k_vote]:.0%}: " + (
        "on this small model, taking the most likely character at every step already finds the most common answer, "
        f"without sampling {k_vote} times. Self-consistency pays when there are many different reasoning paths to "
        "one answer, as in a large model's chains of thought; our scratchpad has only one way to be written."
        if _greedy_wins else
        "the vote beats greedy decoding too: different samples make different mistakes, and the right answer is "
        "what they agree on.")))

# %% [markdown]
# ## 4. RL with a verifiable reward: the GRPO loop
#
# pass@k says the right answer is *often in there*. Reinforcement learning with a verifiable reward (RLVR) tries to
# make the model produce it *first time*. The loop (DeepSeekMath's GRPO, 2024; RLOO is the same idea):

# %%
cycle_diagram([("prompts", f"{rr.prompts} problems per step\n'478+365='"),
               ("sample K answers", f"K = {rr.k} each, temperature 1"),
               ("the program checks", "reward 1 if the sum is right,\nelse 0"),
               ("group-relative advantage", "reward minus the mean of\nthe other answers to that prompt"),
               ("policy-gradient step", "raise log p of every token of\nbetter-than-average answers")],
              title="RL with a verifiable reward (GRPO / RLOO)", centre="no reward model\nno value head\n(lesson 10 needed both)");

# %% [markdown]
# Three differences from lesson 10's PPO. **The reward is a program**: nothing learned, nothing to over-optimise
# (as long as the program checks the right thing; section 5). **No value head**: the baseline for an answer is the
# other answers to the *same prompt*. If all K are right, or all wrong, every advantage is 0 and that prompt teaches
# nothing; the signal comes from prompts the model *sometimes* solves. RLOO subtracts the mean of the other K − 1;
# GRPO subtracts the group's mean and divides by its standard deviation. Both live in `course_lib.rlhf.ppo`,
# lesson 10's file: one definition each. **One gradient step per batch**: each iteration samples fresh answers and
# takes a single REINFORCE step, so PPO's ratio is exactly 1 and its clip never acts; we reuse lesson 10's loop
# with one epoch of one minibatch. First, the advantages on a hand case:

# %%
def my_group_advantages(rewards, k, scale=True):
    out = []
    for g in rewards.view(-1, k):
        centred = g - g.mean()
        out.append(centred / (g.std() + 1e-6) if scale else centred)
    return torch.cat(out)


_r = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
print("rewards       ", _r.tolist())
print("GRPO (mine)   ", [round(x, 3) for x in my_group_advantages(_r, 4).tolist()])
print("GRPO (lib)    ", [round(x, 3) for x in group_advantages(_r, 4).tolist()])
print("RLOO (lib)    ", [round(x, 3) for x in rloo_advantages(_r, 4).tolist()])
_x = torch.randn(64)
claims.check("group_advantages_match_by_hand",
             torch.allclose(my_group_advantages(_x, 8), group_advantages(_x, 8), atol=1e-5)
             and torch.allclose(group_advantages(_r, 4)[:4], torch.tensor([1.5, -0.5, -0.5, -0.5]), atol=1e-4)
             and group_advantages(_r, 4)[4:].abs().max().item() == 0.0
             and torch.allclose(8 / 7 * group_advantages(_x, 8, scale=False), rloo_advantages(_x, 8), atol=1e-5),
             required_at="always", hand_case=group_advantages(_r, 4).tolist());

# %% [markdown]
# Now the run: RLOO advantages, no KL penalty, the learning rate of the recipe. During training we watch the mean
# reward of each batch and, every few iterations, pass@1 on the validation problems.

# %%
t0 = time.perf_counter()
rl_run = rl_with_verifier(start, split, "scratchpad", tok, rl_config(rr), device, check="exact",
                          eval_samples=rr.curve_samples, seed=seed, name="RL (the verifier)")
rl_seconds = time.perf_counter() - t0
policy = rl_run.policy
its, rewards = rl_run.rewards()
eval_its = [e["iteration"] for e in rl_run.log.evals]
fig, ax = plt.subplots(figsize=(7.5, 3.6))
ax.plot(its, rewards, lw=0.8, alpha=0.5, label="reward of each training batch (fraction right)")
ax.plot(eval_its, [e["pass1"] for e in rl_run.log.evals], "o-", label="pass@1 on validation problems")
ax.set_xlabel("RL iteration (one batch of answers, one gradient step)")
ax.set_ylabel("fraction right")
ax.set_title("RL with a program as the reward")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
plt.show()
print(f"RL: {rr.iterations} iterations in {rl_seconds:.0f} s on this machine")
claims.check("rl_seconds", True, required_at="never", seconds=rl_seconds, iterations=rr.iterations)
claims.check("reference_stays_frozen", rl_run.reference_unchanged, required_at="always");

# %% [markdown]
# ### What did RL change?
#
# The same test problems, the same number of samples, before and after. Yue et al. (2025) measured this on real
# reasoning models and found something that surprised many: RL-trained models win at pass@1, but at large k the
# *base* model catches up, and sometimes solves more problems. Their reading: RL with verifiable rewards mostly
# **sharpens** the distribution towards answers the model could already sample; it does not open up new ones.
# Others (e.g. with much longer RL) report new solutions appearing. The question is open; here is what our run says.
#
# And a control: is RL just a cheaper way to **lower the temperature**? Sampling the supervised model at a lower
# temperature also makes it pick its most likely answers more often, with no training at all.

# %%
after_correct, after_answers = sample_answers(policy, problems, "scratchpad", tok, n=rr.eval_samples,
                                              generator=torch.Generator().manual_seed(seed + 100))
cool_correct, _ = sample_answers(start, problems, "scratchpad", tok, n=rr.eval_samples,
                                 temperature=rr.cool_temperature, generator=torch.Generator().manual_seed(seed + 100))
pass_after, pass_cool = pass_curve(after_correct, ks), pass_curve(cool_correct, ks)
greedy_after = greedy_accuracy(policy, problems, "scratchpad", tok)
never = {"before": never_solved(before_correct), "after RL": never_solved(after_correct),
         f"T={rr.cool_temperature:g}": never_solved(cool_correct)}
plt.figure(figsize=(7, 3.8))
plt.plot(ks, [pass_before[k] for k in ks], "o-", label="supervised start, T=1")
plt.plot(ks, [pass_after[k] for k in ks], "s-", label="after RL, T=1")
plt.plot(ks, [pass_cool[k] for k in ks], "^--", label=f"supervised start, T={rr.cool_temperature:g} (no RL)")
plt.xscale("log", base=2)
plt.xlabel("samples per problem, k")
plt.ylabel("pass@k (test problems)")
plt.title("RL lifts pass@1 much more than pass@k")
plt.grid(alpha=0.3)
plt.legend(fontsize=8)
plt.show()
rows = ["| model | greedy | pass@1 | pass@" + " | pass@".join(str(k) for k in ks[1:]) + f" | never solved in {ks[-1]} |",
        "|---" * (len(ks) + 3) + "|"]
for label, curve, greedy, nv in [("supervised start", pass_before, greedy_before, never["before"]),
                                 ("after RL", pass_after, greedy_after, never["after RL"]),
                                 (f"start at T={rr.cool_temperature:g}", pass_cool, float("nan"),
                                  never[f"T={rr.cool_temperature:g}"])]:
    shown = "—" if math.isnan(greedy) else f"{greedy:.3f}"
    rows.append(f"| {label} | {shown} | " + " | ".join(f"{curve[k]:.3f}" for k in ks) + f" | {nv:.1%} |")
display(Markdown("\n".join(rows)))

# %%
gain_1, gain_k = pass_after[1] - pass_before[1], pass_after[ks[-1]] - pass_before[ks[-1]]
claims.check("rl_raises_pass_at_1", gain_1 >= 0.15, required_at="lesson", pass_at_1_before=pass_before[1],
             pass_at_1_after=pass_after[1], greedy_before=greedy_before, greedy_after=greedy_after,
             iterations=rr.iterations, problems=len(problems), samples=rr.eval_samples)
claims.check("rl_sharpens_more_than_it_widens", gain_1 > 0.1 and gain_k < gain_1 / 2, required_at="never",
             k=ks[-1], pass_at_1_gain=gain_1, pass_at_k_before=pass_before[ks[-1]], pass_at_k_after=pass_after[ks[-1]],
             pass_at_k_gain=gain_k, never_solved_before=never["before"], never_solved_after=never["after RL"])
claims.check("rl_is_not_just_a_lower_temperature", pass_after[1] > pass_cool[1], required_at="never",
             temperature=rr.cool_temperature, pass_at_1_rl=pass_after[1], pass_at_1_cool=pass_cool[1],
             pass_at_k_rl=pass_after[ks[-1]], pass_at_k_cool=pass_cool[ks[-1]],
             never_solved_rl=never["after RL"], never_solved_cool=never[f"T={rr.cool_temperature:g}"]);

# %% [markdown]
# **RL cannot sharpen what is never sampled.** The same RL, from the *direct* model of section 2 (same seed, end of
# its training). It rarely samples a right answer, so most groups are all-wrong and carry no signal at all.

# %%
direct_start = fmt_runs["direct"][0].model
direct_before, _ = sample_answers(direct_start, problems, "direct", tok, n=rr.eval_samples,
                                  generator=torch.Generator().manual_seed(seed + 100))
direct_rl = rl_with_verifier(direct_start, split, "direct", tok, rl_config(rr), device, check="exact",
                             eval_samples=rr.curve_samples, seed=seed, name="RL on the direct format")
direct_after, _ = sample_answers(direct_rl.policy, problems, "direct", tok, n=rr.eval_samples,
                                 generator=torch.Generator().manual_seed(seed + 100))
d_before, d_after = pass_curve(direct_before, ks), pass_curve(direct_after, ks)
print(f"direct format: pass@1 {d_before[1]:.3f} -> {d_after[1]:.3f}, pass@{ks[-1]} {d_before[ks[-1]]:.3f} -> "
      f"{d_after[ks[-1]]:.3f}; scratchpad: pass@1 {pass_before[1]:.3f} -> {pass_after[1]:.3f}")
claims.check("rl_gains_little_where_right_answers_are_rare", d_after[1] - d_before[1] < gain_1 / 2,
             required_at="never", direct_before=d_before[1], direct_after=d_after[1],
             scratchpad_gain=gain_1, direct_pass_at_k_before=d_before[ks[-1]], direct_pass_at_k_after=d_after[ks[-1]]);

# %% [markdown]
# ## 5. Verifier hacking: when the program checks the wrong thing
#
# A verifier is only as good as what it checks. Suppose we had written a lazier one that only checks the **format**:
# the answer is a number with as many digits as the true sum. It looks reasonable: a model that writes the right
# sum always passes it. But so does a model that writes *any* number of the right length. Same RL, this reward, no
# KL penalty; then the control, the same run with lesson 10's leash, a KL penalty β to the starting model.
# Predict before you run: what happens to the reward, and what happens to exact-match accuracy?

# %%
hack_runs = {}
for beta in (0.0, rr.leash_beta):
    hack_runs[beta] = rl_with_verifier(start, split, "scratchpad", tok, rl_config(rr, kl_coef=beta), device,
                                       check="length", eval_samples=rr.curve_samples, seed=seed,
                                       name=f"RL (format-only reward, beta={beta:g})")
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
for ax, (beta, run) in zip(axes, hack_runs.items()):
    e_its = [e["iteration"] for e in run.log.evals]
    ax.plot(e_its, [e["right_length"] for e in run.log.evals], "o-", label="format reward (what RL is paid for)")
    ax.plot(e_its, [e["pass1"] for e in run.log.evals], "s-", label="exact match (what we wanted)")
    ax.set_title(f"format-only reward, β = {beta:g}")
    ax.set_xlabel("RL iteration")
    ax.grid(alpha=0.3)
axes[0].set_ylabel("fraction of samples (validation)")
axes[0].legend(fontsize=8)
plt.show()
hacked = decode_completions(sample_completions(hack_runs[0.0].policy, problems[:6], "scratchpad", tok, 1,
                                               generator=torch.Generator().manual_seed(seed)), tok)
for (a, b), text in zip(problems[:6].tolist(), hacked):
    print(f"{prompt(a, b)}{text}   true sum {a + b}  format ok: {right_length(text, a, b, 'scratchpad')}  "
          f"right: {verify(text, a, b, 'scratchpad')}")

# %%
h0, h1 = hack_runs[0.0].log.evals, hack_runs[rr.leash_beta].log.evals
# Hacked: what RL is paid for stays at its ceiling (>= 0.9, and no lower than at the start minus 0.02) while what we
# wanted falls to half or less. It fails if the reward drops, or accuracy holds. Reported, not required: on a second
# CPU (AMD, 2026-12-08, lesson seed 0) the format reward went 0.961 -> 0.925 while exact match fell 0.43 -> 0.003;
# a drop of 0.02 is only about 1.3 standard errors of the difference of two rates near 0.95 measured on a few hundred
# samples, so the bar sits inside the sampling noise. It needs a bar set from that noise, checked on 3 seeds x both
# CPU numeric paths, before it is required again.
claims.check("format_reward_is_hacked", h0[-1]["right_length"] >= max(0.9, h0[0]["right_length"] - 0.02)
             and h0[-1]["pass1"] <= h0[0]["pass1"] / 2, required_at="never",
             format_reward_start=h0[0]["right_length"], format_reward_end=h0[-1]["right_length"],
             exact_start=h0[0]["pass1"], exact_end=h0[-1]["pass1"], iterations=rr.iterations)
claims.check("kl_leash_limits_the_hack", h1[-1]["pass1"] > h0[-1]["pass1"] + 0.05, required_at="never",
             beta=rr.leash_beta, exact_end_free=h0[-1]["pass1"], exact_end_leashed=h1[-1]["pass1"],
             format_reward_end_leashed=h1[-1]["right_length"], exact_start=h1[0]["pass1"]);

# %% [markdown]
# This is lesson 10's reward hacking again, with a program in the reward model's place. The program is exact about
# what it checks; the trouble is that what it checks is a **proxy**. RL found the cheapest way to satisfy it, and
# forgetting how to add cost nothing. The leash helps, but only by holding the model near where it started: it buys
# no accuracy, it limits the damage. Real RLVR pipelines fight this with verifiers that check the answer itself
# (unit tests that run the code, a symbolic comparison of the maths), and still find models that special-case
# the tests.
#
# ## 6. A glimpse of a real model
#
# Does "think step by step" help a real, if tiny, chat model? SmolLM2-135M-Instruct, loaded from its 4-bit file
# into lesson 09's Llama code, gets generated two-digit sums, asked two ways: for the number only, and step by step
# ending with `Answer: <number>`. A program reads the final number and checks it. Greedy decoding, a small sample on
# CPU, so the numbers are a glimpse, not a benchmark (reported, never required). Chain-of-thought prompting was
# found to help mainly *large* models (Wei et al. saw it hurt small ones); whether it helps at 135 M parameters is
# exactly what this measures. At `gpu`, the natural next step is this lesson's RL loop on the real model with LoRA
# (lesson 07); it is not part of this notebook yet.

# %%
from course_lib.gpt import gguf_model
from course_lib.reasoning import ask_all, chat_questions, read_final_number, two_digit_problems
from course_lib.recipes import GlimpseRecipe

gr = GlimpseRecipe.preset(profile)
smol, smol_tok, _ = gguf_model.load_gguf(gguf_model.smollm2_path(), device=device)
smol_problems = two_digit_problems(gr.problems, seed=seed)
smol_right, smol_replies = {}, {}
for style, budget in (("direct", gr.direct_tokens), ("step_by_step", gr.step_tokens)):
    smol_replies[style] = ask_all(smol, smol_tok, chat_questions(smol_problems, style), budget)
    smol_right[style] = [read_final_number(r) == a + b for r, (a, b) in zip(smol_replies[style], smol_problems.tolist())]
    print(f"{style:13s} exact match {sum(smol_right[style])}/{len(smol_problems)}")
for style in smol_replies:
    a, b = smol_problems[0].tolist()
    print(f"\n{style}, {a} + {b} = {a + b}:\n  {smol_replies[style][0][:400]!r}")
claims.check("smollm2_step_by_step_vs_direct", True, required_at="never", problems=len(smol_problems),
             direct=sum(smol_right["direct"]) / len(smol_problems),
             step_by_step=sum(smol_right["step_by_step"]) / len(smol_problems))
del smol

# %% [markdown]
# ## 7. What this run says
#
# The numbers below are this notebook's own, on this run's seed.

# %%
_sharpened = gain_k < gain_1 / 2
display(Markdown(f"""
* **Thinking out loud.** At {fr.steps} steps and equal parameters, answering directly reached exact match
  {min(finals['direct']):.2f}–{max(finals['direct']):.2f} over {len(seeds)} seed(s); writing a scratchpad first reached
  {min(finals['scratchpad']):.2f}–{max(finals['scratchpad']):.2f}. Each character of work is another forward pass
  ({chain['scratchpad'][0]} sequential block steps before the first answer digit, against {chain['direct'][0]}).
* **Test-time compute.** From the partly trained model: one sample is right {pass_before[1]:.0%} of the time; the
  majority of {k_vote} samples {vote_before[k_vote]:.0%}; at least one of {ks[-1]} samples {pass_before[ks[-1]]:.0%}.
* **RL with a verifier** moved pass@1 from {pass_before[1]:.0%} to {pass_after[1]:.0%} (greedy {greedy_before:.0%} →
  {greedy_after:.0%}), while pass@{ks[-1]} moved from {pass_before[ks[-1]]:.0%} to {pass_after[ks[-1]]:.0%}, and the
  problems never solved in {ks[-1]} samples went from {never['before']:.1%} to {never['after RL']:.1%}.
  {"So on this run RL mostly **sharpened** what the model could already sample (the Yue et al. side of the debate): "
   "large gains where one sample must be right, little or none where many tries are allowed."
   if _sharpened else
   "On this run RL raised pass@k at large k as well, so it did more than sharpen (the other side of the debate)."}
  Lowering the temperature to {rr.cool_temperature:g} instead gave pass@1 {pass_cool[1]:.0%} and left
  {never[f'T={rr.cool_temperature:g}']:.1%} of the problems never solved: at pass@1 RL is
  {"more than" if pass_after[1] > pass_cool[1] else "no better than"} a sharper temperature here, and it
  {"kept more" if never['after RL'] < never[f'T={rr.cool_temperature:g}'] else "did not keep more"} problems within
  reach.
* **A format-only reward** went from {h0[0]['right_length']:.0%} to {h0[-1]['right_length']:.0%} satisfied while exact
  match went from {h0[0]['pass1']:.0%} to {h0[-1]['pass1']:.0%}; with the KL leash (β = {rr.leash_beta:g}) exact match
  ended at {h1[-1]['pass1']:.0%}.
* **The real model** (SmolLM2-135M, {len(smol_problems)} two-digit sums, greedy): asked for the number only it got
  {sum(smol_right['direct'])}, asked to work step by step {sum(smol_right['step_by_step'])}.
"""))

# %% [markdown]
# **Why RL comes after supervised training, not instead of it.** RL with a 0/1 reward learns only from groups in
# which some answers are right and some wrong. A model that never samples a right answer (the direct model above,
# or any model trained from scratch) gets a reward of 0 everywhere and an advantage of 0 everywhere: no gradient at
# all. Supervised training (or pretraining on text full of worked solutions) puts the right answers *in reach*; RL
# then makes them *likely*. DeepSeek-R1-Zero did skip supervised fine-tuning, but not pretraining: its base model
# could already sample long chains of thought, sometimes right.
#
# **Reward design.** The reward is the only thing RL sees. It should check the outcome itself (the sum, the
# program's output), be cheap enough to run K times per prompt, and be hard to satisfy any other way. Every gap
# between "what the checker accepts" and "what we want" is a place RL will look, as section 5 showed.
#
# **The open debate.** Does RL with verifiable rewards teach a model new skills, or teach it to choose, among the
# skills it has, the ones that work? Yue et al. (2025) argue mostly the second: pass@k at large k does not grow, and
# the set of problems the model can solve at all can shrink. The section above measured both sides on this run:
# how much pass@1 rose, what happened at large k, and whether problems that were solvable before became unsolvable.
# A toy cannot settle the question for large models, but it shows exactly what to measure.
#
# ## 8. What still breaks
#
# 1. **No checker, no RLVR.** Essays, advice and most of what people ask have no program that says "right"; there,
#    we are back to lesson 10's learned reward models and their blind spots.
# 2. **Outcome rewards are blind to the reasoning.** Our verifier passes a scratchpad with a wrong column and a right
#    sum. Real reasoning traces can be right for the wrong reasons; process rewards (checking steps) are an active
#    research area, and they bring back a learned judge.
# 3. **Thinking costs tokens.** Every scratchpad character is a forward pass at inference time, for every user, for
#    ever. Reasoning models spend thousands of tokens per answer; how much thinking a question deserves is open.
# 4. **Coverage.** If RL mostly sharpens, the ceiling is set by what pretraining and supervised training put in reach,
#    which is why the largest gains still come from better base models.
#
# **References.** Wei et al., *Chain-of-thought prompting elicits reasoning in large language models* (2022). Wang et
# al., *Self-consistency improves chain of thought reasoning in language models* (2022). Chen et al., *Evaluating
# large language models trained on code* (2021; the unbiased pass@k). Shao et al., *DeepSeekMath* (2024; GRPO).
# DeepSeek-AI, *DeepSeek-R1* (2025). Yue et al., *Does reinforcement learning really incentivize reasoning capacity
# in LLMs beyond the base model?* (2025). Ahmadian et al., *Back to basics: revisiting REINFORCE style optimization*
# (2024; RLOO).

# %%
lesson.finish()

# %% [markdown]
# ## Exercises
#
# **Exercise 1 (2 points).** The unbiased pass@k estimator. Given `n` samples of which `c` are right, return the
# probability that `k` of them, drawn without replacement, contain at least one right answer, as a Python float.
# Make it work for n = 1000 (hint: `math.comb` is exact; or write the ratio of binomials as a product).

# %% nbgrader={"grade": false, "grade_id": "ex1_pass_at_k", "locked": false, "schema_version": 3, "solution": true}
def my_pass_at_k(n, c, k):
    ### BEGIN SOLUTION
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex1_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
assert abs(my_pass_at_k(10, 3, 1) - 0.3) < 1e-9
### BEGIN HIDDEN TESTS
assert my_pass_at_k(5, 5, 3) == 1.0 and my_pass_at_k(5, 0, 3) == 0.0 and my_pass_at_k(4, 2, 3) == 1.0
for _n, _c, _k in [(10, 2, 3), (64, 5, 16), (1000, 7, 100), (256, 1, 64), (20, 19, 20)]:
    assert abs(my_pass_at_k(_n, _c, _k) - pass_at_k(_n, torch.tensor([_c]), _k).item()) < 1e-9
_flags = [True, False, False, True, False, False, False]
for _k in range(1, 8):
    _subsets = list(itertools.combinations(_flags, _k))
    assert abs(my_pass_at_k(7, 2, _k) - sum(any(s) for s in _subsets) / len(_subsets)) < 1e-12
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (2 points).** Group-relative advantages. `rewards` holds `k` consecutive answers per prompt. Return
# each answer's reward minus the mean reward of its group, divided by the group's standard deviation (unbiased,
# `torch.std`'s default) plus `eps` when `scale=True`, and not divided when `scale=False`. Then think: compare
# the advantage of a right answer in a group where 1 of 8 answers is right with one in a group where 4 of 8 are
# right, with and without scaling. Which prompts does GRPO's division by the standard deviation weight up? (Liu et
# al.'s "Dr. GRPO", 2025, argue that this, and dividing by the answer's length, bias what the model learns.)

# %% nbgrader={"grade": false, "grade_id": "ex2_advantages", "locked": false, "schema_version": 3, "solution": true}
def my_advantages(rewards, k, scale=True, eps=1e-6):
    ### BEGIN SOLUTION
    g = rewards.view(-1, k)
    centred = g - g.mean(1, keepdim=True)
    if scale:
        centred = centred / (g.std(1, keepdim=True) + eps)
    return centred.view_as(rewards)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex2_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
assert torch.allclose(my_advantages(torch.tensor([1.0, 0.0]), 2, scale=False), torch.tensor([0.5, -0.5]))
### BEGIN HIDDEN TESTS
_x = torch.randn(48)
for _k in (2, 4, 8, 12):
    assert torch.allclose(my_advantages(_x, _k), group_advantages(_x, _k), atol=1e-5)
    assert torch.allclose(my_advantages(_x, _k, scale=False), group_advantages(_x, _k, scale=False), atol=1e-6)
    assert torch.allclose(_k / (_k - 1) * my_advantages(_x, _k, scale=False), rloo_advantages(_x, _k), atol=1e-5)
assert my_advantages(torch.ones(8), 4).abs().max().item() == 0.0
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (2 points): predict, then run.** Section 5's format-only reward pays for an answer with as many digits
# as the true sum. (a) Write `hack(a, b)`: a scratchpad completion (ending in `$`) that the format check
# `right_length` accepts and the verifier `verify` rejects, for *every* problem. (b) Before running the test cell,
# predict the format reward and the exact-match reward of the five completions of 478 + 365 below: fill in
# `predicted` as a list of five `(format_ok, exact_ok)` pairs of booleans. Then run the cell and see.

# %% nbgrader={"grade": false, "grade_id": "ex3_hack", "locked": false, "schema_version": 3, "solution": true}
candidates = ["3c1,4c1,8c0>843$$", "3c1,4c1,8c0>999$$", "0c0,0c0,0c0>843$$", "3c1,4c1,8c0>0843$", "843$$$$$$$$$$$$$$"]


def hack(a, b):
    ### BEGIN SOLUTION
    digits = len(str(a + b))
    wrong = str((a + b + 1) % 10 ** digits).zfill(digits)
    if wrong[0] == "0" and digits > 1:
        wrong = "1" + wrong[1:]
    if int(wrong) == a + b:
        wrong = str(int(wrong) ^ 1).zfill(digits)
    return "0c0,0c0,0c0>" + wrong + "$"
    ### END SOLUTION


### BEGIN SOLUTION
predicted = [(True, True), (True, False), (True, True), (False, True), (False, False)]
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex3_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
assert right_length(hack(478, 365), 478, 365, "scratchpad") and not verify(hack(478, 365), 478, 365, "scratchpad")
### BEGIN HIDDEN TESTS
for _a, _b in [(0, 0), (999, 999), (500, 500), (1, 8), (999, 1), (0, 9)] + split.test[:200].tolist():
    _h = hack(_a, _b)
    assert right_length(_h, _a, _b, "scratchpad") and not verify(_h, _a, _b, "scratchpad"), (_a, _b, _h)
assert [tuple(p) for p in predicted] == [(right_length(t, 478, 365, "scratchpad"), verify(t, 478, 365, "scratchpad"))
                                         for t in candidates]
### END HIDDEN TESTS
