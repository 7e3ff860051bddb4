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
# # 08 · What emerges: in-context learning, induction heads, and what "emergence" measures
#
# | ~1986–2010 | 1997 → 2010s | 2014 | 2015 | 2017 | 2018 | 2020–2022 | 2022 |
# |---|---|---|---|---|---|---|---|
# | RNN | LSTM | Seq2Seq | Attention | Transformer | GPT / BERT | **in-context learning ← you are here** | instructions, RLHF |
#
# **Where we are.** Lesson 06 trained a GPT to do one thing: guess the next character. In 2020, OpenAI's GPT-3
# paper (*Language Models are Few-Shot Learners*) reported something nobody had trained for. Show the model a
# handful of solved examples in its prompt, say three English words followed by their French translations, then a
# fourth English word and a blank, and it fills in the blank, with no change to a single weight. The model had
# picked up a new task *from its context*. In 2022 two lines of work tried to explain where this comes from:
# Anthropic's *In-context Learning and Induction Heads* (Olsson et al.) found a small attention circuit that
# appears suddenly during training, and Wei et al.'s *Emergent Abilities of Large Language Models* catalogued
# skills that seem to switch on only past some model size. A year later Schaeffer, Miranda and Koyejo asked
# whether those switches were in the models or in the way we score them (*Are Emergent Abilities of Large
# Language Models a Mirage?*). This lesson reproduces each of these arguments at toy scale, with numbers.
#
# **What.** Three words to keep apart:
# * **zero-shot**: the prompt describes the task and gives no example ("Translate to French: cheese →").
# * **few-shot**: the prompt holds a few solved examples, then the question. Take a review classifier: two
#   reviews with their verdicts ("a gorgeous, moving film → positive", "two hours I will never get back →
#   negative"), then "the plot was fine, I suppose →". The model continues with a verdict.
# * **in-context learning (ICL)**: the general ability behind few-shot prompting, getting better at predicting
#   text the more of it you have read in the current window. Nothing is stored: close the window and it is gone.
#
# **Why it matters.** Before GPT-3, a new task meant a new labelled dataset and a round of fine-tuning (lesson 07).
# A model that learns from its prompt turns one pretrained network into a tool for thousands of tasks, steered
# by examples in plain text.
#
# **How (the short answer this lesson builds).** Inside a Transformer, two attention heads can team up into an
# **induction head**: "find the earlier place where the current token appeared, look at what came right after
# it, and predict that". It is the simplest way to copy from context, and Olsson et al. argue it is the seed
# of in-context learning in large models.
#
# **When to rely on it.** When you have a few examples but no time or data to fine-tune; when the task changes
# from one request to the next. It is fragile (example order and label balance change the answers), and it
# is no substitute for training when the task is fixed and data is plentiful.
#
# **An analogy.** A crossword solver meets a clue they have seen earlier in the same puzzle book. They do not
# work it out again: they flip back, find the earlier clue, read the answer written next to it, and copy it.
# That is an induction head: "where did I see this before, and what came next?". Now give the solver a card
# game whose rules are never explained, only shown in a few example rounds at the top of the page. A solver who
# flips back to the examples plays well on the first try; one who cannot flip back is stuck guessing. That is
# few-shot learning in context.
#
# **The plan.** (1) Does lesson 06's GPT read its context? (2) Build the smallest model that can learn induction
# heads and watch one appear, suddenly. (3) Learn a classification task from examples in the prompt,
# Transformer against LSTM. (4) Is "emergence" a property of models or of metrics?

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
import string

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

from course_lib import emergence as em
from course_lib import gpt
from course_lib.core import Trainer, count_parameters, data, interactive, plots
from course_lib.emergence import AttnOnlyTransformer
from course_lib.gpt import GPT, generate
from course_lib.harness.lesson import Lesson
from course_lib.recipes import FewShotRecipe, InductionRecipe, LMFamilyRecipe, checkpoint_path
from course_lib.recurrent import CharLM, RecurrentConfig
from course_lib.text import CharTokenizer, lm_data

lesson = Lesson("08_emergence", profile, seed)
device, claims = lesson.device, lesson.claims

# %%
ind, few, fam = InductionRecipe.preset(profile), FewShotRecipe.preset(profile), LMFamilyRecipe.preset(profile)
print(ind, few, fam, sep="\n")

# %% [markdown]
# ## 1 · Does a GPT read its context?
#
# A language model trained on next-token prediction gets a fresh window of text for every prediction. If it
# uses what it has read, its guesses should improve the further it is into the window: at position 3 it knows
# three characters, at position 100 it knows a whole speech, the speaker's name, the words already used.
#
# We need GPTs. Section 4 needs a *family* of them, built like lesson 06's scaling experiment (the same shape
# at growing widths, each trained for the same number of steps on the same batches; shallower and shorter
# here, to fit this lesson's budget), so we train that family now.
# For this section we study the biggest one, or lesson 06's own model if its checkpoint is in `build/`
# (a better model: it trained on several times as much text, with a 128-character window).

# %%
text = data.load_shakespeare()
train_text, val_text = data.train_val_split(text)
chars = CharTokenizer.fit(text)
train_ids, val_ids = torch.tensor(chars.encode(train_text)), torch.tensor(chars.encode(val_text))

family = {}
for width in fam.widths:
    torch.manual_seed(seed)
    model = GPT(fam.model_config(width, len(chars))).to(device)
    Trainer(model, lm_data.lm_loss, lm_data.batches_by_step(train_ids, fam.block, fam.batch, seed),
            fam.train_config(), device=device, name=f"GPT width {width}").fit()
    family[width] = model.eval()
    print(f"width {width:4d}: {model.num_params():>8,} parameters, validation loss "
          f"{lm_data.evaluate_lm(model, val_ids, fam.block, device=device):.3f}")

# %%
subject, source = family[fam.widths[-1]], f"the width-{fam.widths[-1]} GPT trained above"
path = checkpoint_path("lesson")
if fam.use_lesson_06 and path.exists():
    loaded = gpt.load(path, device)
    good = loaded.meta.get("val_loss", math.inf) <= fam.max_val_loss_06
    if good and loaded.tokenizer is not None and loaded.tokenizer.itos == chars.itos:
        subject, source = loaded.model.eval(), "lesson 06's model (its checkpoint)"
block = subject.cfg.block_size
print(f"studying {source}: {subject.num_params():,} parameters, a {block}-character window")

# %% [markdown]
# Below: the mean loss at each position of the window, over random windows of the validation text.

# %%
loss_by_pos = em.per_position_loss(subject, val_ids, block, windows=fam.icl_windows, seed=seed)
icl = em.icl_score(loss_by_pos)
early, late = round(block * 50 / 512), min(round(block * 500 / 512), block - 3)
fig, ax = plt.subplots(figsize=(7, 3.6))
ax.plot(range(block), loss_by_pos.tolist(), lw=1.5)
for p, name in ((early, "early"), (late, "late")):
    ax.axvline(p, color="gray", ls=":", lw=1)
    ax.text(p, ax.get_ylim()[1], f" {name}", va="top", fontsize=8)
ax.set(xlabel="position in the window (characters already read - 1)", ylabel="loss (nats)",
       title="the more it has read, the better it guesses")
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# Olsson et al. turned that curve into one number, the **in-context learning score**: the loss at the 500th
# token of a window minus the loss at the 50th. Negative means "reading more helps". Our window is shorter, so we
# keep their proportions (positions 50/512 and 500/512 of the window, each averaged with its two neighbours on
# either side).

# %%
display(Markdown(f"In-context learning score of {source}: **{icl:+.3f} nats** "
                 f"(loss {loss_by_pos[max(0, early - 2):early + 3].mean():.3f} around position {early}, "
                 f"{loss_by_pos[late - 2:late + 3].mean():.3f} around position {late})."))
claims.check("gpt_uses_its_context", icl < 0, required_at="never", icl_score=icl, early=early, late=late,
             window=block, model=source)

# %% [markdown]
# Most of the drop happens in the first few characters: a word is much easier to finish once you have seen its
# start. That is "using the context" only in a weak sense. A sharper test: a string of **random** letters, shown
# twice. Nothing in Shakespeare predicts the first copy, and no amount of pretraining can: the letters are
# random. The second copy, though, is predictable by anyone who can look back and copy. A model that can do that
# has learned something about its *window*, not about English.

# %%
n_rep = min(fam.repeat_len, block // 2)
letters = torch.tensor(chars.encode(string.ascii_lowercase))
g = torch.Generator().manual_seed(seed)
random_strings = letters[torch.randint(26, (64, n_rep), generator=g)]
twice = torch.cat([random_strings, random_strings], dim=1)
with torch.no_grad():
    logits = subject(twice[:, :-1].to(device)).float().cpu()
rep_curve = F.cross_entropy(logits.transpose(1, 2), twice[:, 1:], reduction="none").mean(0)
first_copy, second_copy = em.repeat_losses(subject, twice)
fig, ax = plt.subplots(figsize=(7, 3.6))
ax.plot(range(1, 2 * n_rep), rep_curve.tolist(), "o-", ms=3, label="loss on a random string shown twice")
ax.axhline(math.log(26), color="gray", ls=":", label="ln 26: a random letter, guessed")
ax.axvline(n_rep, color="C3", ls="--", lw=1, label="the second copy starts")
ax.set(xlabel="position of the predicted character", ylabel="loss (nats)", title="random letters, shown twice")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
plt.show()

# %%
helped = second_copy < first_copy - 0.5
display(Markdown(
    f"Mean loss on the first copy **{first_copy:.2f}** nats, on the second copy **{second_copy:.2f}**. "
    + ("The model copies from its context: the second copy costs far less, although the letters are random."
       if helped else
       "This model does not copy: the second copy costs about as much as the first. At these budgets our "
       "character GPTs (lesson 06's model included, when we tried it) have not formed the circuit that does "
       "this. Shakespeare seldom repeats a long stretch of text within one window, so copying earns a model "
       "little there. Section 2 trains a model on data where copying pays, and watches the circuit form.")
    + (f" (Both numbers are above ln 26 = {math.log(26):.2f}, a uniform guess among the letters: the model "
       "expects English, and gibberish surprises it more than it would surprise a coin-flipper.)"
       if min(first_copy, second_copy) > math.log(26) else "")))
claims.check("repeated_random_string_is_cheaper_the_second_time", helped, required_at="never",
             first_copy=first_copy, second_copy=second_copy, length=n_rep, model=source)

# %% [markdown]
# ## 2 · Induction heads, from scratch
#
# **The circuit.** Say the text so far is "… Mr D urs ley … Mr D" and the model must guess the next token.
# An **induction head** does it in two moves, using two attention heads in two layers:
#
# 1. A **previous-token head** (layer 0) at every position looks one step back and writes "the token before me
#    was D" into position "urs". Now "urs" carries a note about its predecessor.
# 2. The **induction head** (layer 1) at the last "D" looks for positions whose note says "my predecessor was D",
#    finds "urs", attends to it, and copies it into the prediction.
#
# Step 2 is called **prefix matching** (attend to the token right after an earlier occurrence of me), followed by
# **copying** (raise the probability of the token attended to). Neither head alone can do it: the layer-0 head
# does not know what to copy, and the layer-1 head cannot find "urs" without the note. A one-layer model has no
# note to read, so it cannot do this at all; this is why Olsson et al. saw the phase change in every model with
# two or more layers and never in one-layer models.
#
# **The model.** To watch this happen we strip a Transformer to the bone: token and position embeddings,
# attention layers, a read-out. No MLPs (`course_lib.emergence.attention_only`). Then every head writes directly into one
# shared "residual stream", and we can look at each head's attention and remove any head to see what breaks.
# Two heads in layer 0 (one may become the previous-token head, the other is free to do anything) and one head
# in layer 1. Here is its attention written out, checked against the library's model:

# %%
def causal_attention(x, W_Q, W_K, W_V, n_heads):
    """x (B, T, d) -> weights (B, H, T, T) and the heads' outputs before W_O (B, H, T, d_head)."""
    B, T, d = x.shape
    split = lambda t: t.view(B, T, n_heads, d // n_heads).transpose(1, 2)
    q, k, v = split(x @ W_Q.T), split(x @ W_K.T), split(x @ W_V.T)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d // n_heads)
    scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights, weights @ v


torch.manual_seed(seed)
demo = AttnOnlyTransformer(ind.model_config(2)).eval()
x = em.induction_batch(4, generator=torch.Generator().manual_seed(seed), **ind.task()).x
with torch.no_grad():
    run = demo.run(x)
    stream = demo.W_E(x) + demo.W_P(torch.arange(x.shape[1]))
    layer = demo.layers[0]
    weights, z = causal_attention(demo.ln[0](stream), layer.W_Q.weight, layer.W_K.weight, layer.W_V.weight,
                                  ind.heads[0])
    diff = (weights - run.attn[0]).abs().max().item()
    diff = max(diff, (layer.W_O(z.transpose(1, 2).flatten(2)) - run.head_out[0].sum(1)).abs().max().item())
claims.check("attention_from_scratch_matches_course_lib", diff < 1e-5, required_at="always", max_abs_diff=diff)

# %% [markdown]
# **The task, and a trap.** Training sequences are 48 random tokens (a 32-token vocabulary) hiding one
# *segment* of 6–12 tokens that appears twice. The segment's tokens appear nowhere else, so each token of the
# second copy has exactly one earlier occurrence. Its length and the places of both copies are random.
#
# Why so fussy? The obvious task, "a random segment of fixed length, repeated back to back", has a shortcut:
# the answer at position *t* is always the token at *t − L*. One layer of attention learns "look exactly L steps
# back" from positions alone, solves the task perfectly, and nothing like an induction head is needed. When the
# distance changes from one sequence to the next, position is useless and only *content* (which token matches
# mine?) finds the copy.
#
# We grade the model on the second copy only: those are the only tokens that *can* be predicted, and the
# random filler around them would add nothing but noise to the gradient. (Graded on every token, the same cliff
# comes, but later and at a less predictable step.) The model is never told where the copies are.

# %%
b = em.induction_batch(1, generator=torch.Generator().manual_seed(seed + 1), **ind.task())
marks = [("[" if f else "(" if r else " ") for f, r in zip(b.first[0], b.repeat[0])]
print("one training sequence; the target after a '[' is in the first copy, after a '(' in the second:")
print(" ".join(f"{m}{t:02d}" for m, t in zip(marks, b.x[0].tolist())))

# %% [markdown]
# Now train the two-layer model and, with exactly the same data and steps, a one-layer model that is *wider*
# (it has more parameters). Every few steps we measure, on a fixed set of held-out sequences, the loss on both
# copies and each head's prefix-matching score.

# %%
eval_batch = em.induction_batch(ind.eval_size, generator=torch.Generator().manual_seed(10_000 + seed), **ind.task())
runs = {}
for n_layers in (2, 1):
    torch.manual_seed(seed)
    model = AttnOnlyTransformer(ind.model_config(n_layers)).to(device)
    trainer = Trainer(model, lm_data.lm_loss, em.induction_batches(ind.batch, seed, **ind.task()),
                      ind.train_config(), device=device, name=f"{n_layers}-layer attention-only",
                      eval_fn=lambda m: em.evaluate_induction(m, eval_batch))
    trainer.evaluate()                                  # step 0: the untrained model
    runs[n_layers] = dict(model=model.eval(), history=trainer.fit(), params=model.num_params())
    print(f"{n_layers} layer(s): {runs[n_layers]['params']:,} parameters, repeated-copy loss "
          f"{runs[n_layers]['history'].last_eval('repeat_loss'):.3f}")

# %%
ln_v = math.log(ind.vocab)
h2 = runs[2]["history"]
steps, repeat2 = h2.eval_series("repeat_loss")
_, repeat1 = runs[1]["history"].eval_series("repeat_loss")
last = len(ind.heads) - 1
heads_last = [k for k in h2.evals[0] if k.startswith(f"prefix_L{last}")]
induction_key = max(heads_last, key=lambda k: h2.evals[-1][k])
induction_head = (last, int(induction_key.split("H")[1]))
_, prefix = h2.eval_series(induction_key)
cl = em.cliff(steps, repeat2, share=0.7)
rise = em.steepest_rise(steps, prefix)

fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7.5, 6), sharex=True)
ax1.plot(steps, repeat2, "o-", ms=2.5, label="2 layers: repeated copy")
ax1.plot(steps, repeat1, "o-", ms=2.5, label="1 layer (wider): repeated copy")
ax1.axhline(ln_v, color="gray", ls=":", label=f"ln {ind.vocab}: guessing")
ax1.axhline(ln_v / 5, color="gray", ls="--", lw=0.8, label="a fifth of it")
for ax in (ax1, ax2):
    ax.axvspan(cl.start, cl.end, color="C3", alpha=0.15)
ax1.set(ylabel="loss (nats)", title="a plateau, then a cliff (shaded: where most of the fall happens)")
ax1.legend(fontsize=8)
for k in heads_last + [k for k in h2.evals[0] if k.startswith("prefix_L0")]:
    ax2.plot(*h2.eval_series(k), lw=1.5, label=f"layer {k[8]} head {k[10]}")
ax2.set(xlabel="training step", ylabel="prefix-matching score", title="each head's prefix-matching score")
ax2.legend(fontsize=8)
for ax in (ax1, ax2):
    ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %%
plateau = float(np.mean([v for s, v in zip(steps, repeat2) if s <= cl.start]))
display(Markdown(
    f"The two-layer model sits near ln {ind.vocab} = {ln_v:.2f} until step **{cl.start}**, then "
    f"{cl.fall:.0%} of its whole fall happens by step **{cl.end}**, a window of {cl.width:.0%} of the run. "
    f"It ends at **{repeat2[-1]:.3f}** nats. Over the same window the prefix-matching score of layer "
    f"{induction_head[0]} head {induction_head[1]} jumps from {prefix[0]:.2f} to {prefix[-1]:.2f}; its steepest "
    f"rise is between steps {rise[0]} and {rise[1]}. The one-layer model ends at **{repeat1[-1]:.2f}**."))
claims.check("induction_phase_change", repeat2[0] >= 0.9 * ln_v and repeat2[-1] < ln_v / 5 and cl.fall >= 0.7
             and cl.width <= 0.2, required_at="lesson", start_loss=repeat2[0], plateau=plateau,
             final_loss=repeat2[-1], ln_vocab=ln_v, cliff_start=cl.start, cliff_end=cl.end, width=cl.width,
             share=cl.fall, steps=ind.steps)
claims.check("prefix_matching_head_appears_with_the_drop", prefix[0] <= 0.15 and prefix[-1] >= 0.5
             and cl.start <= rise[0] and rise[1] <= cl.end, required_at="lesson", head=induction_key,
             start=prefix[0], end=prefix[-1], steepest_rise=list(rise), cliff=[cl.start, cl.end])
claims.check("one_layer_cannot_do_it", repeat1[-1] >= 0.8 * ln_v and runs[1]["params"] >= runs[2]["params"],
             required_at="lesson", one_layer_loss=repeat1[-1], two_layer_loss=repeat2[-1], ln_vocab=ln_v,
             one_layer_params=runs[1]["params"], two_layer_params=runs[2]["params"])

# %% [markdown]
# The curve is flat, then it falls off a cliff: for a long time the model gains nothing from the repeated
# segment, then within a short stretch of training it solves it almost perfectly. That is what Olsson et al.
# call a **phase change**. The second panel shows why: one head's prefix-matching score shoots up in the
# same window. Two heads that each do nothing useful alone have to be tuned to each other before either one
# pays off, and once they click, the loss collapses.
#
# What does the induction head look at? Below, a string of random tokens shown twice (a clean version of the
# training task). Rows are the position doing the predicting, columns the positions it attends to. In the
# second half, each row puts its weight one step *after* the earlier occurrence of its own token: an
# off-diagonal stripe. Next to it, the layer-0 head with the strongest previous-token habit: a stripe just below
# the diagonal.

# %%
probe = em.repeated_tokens(1, min(12, ind.seq_len // 2), ind.vocab, torch.Generator().manual_seed(seed + 2))
model2 = runs[2]["model"]
with torch.no_grad():
    probe_run = model2.run(probe.to(device))
prev_scores = em.previous_token_score(probe_run.attn[0]).tolist()
prev_head = (0, int(np.argmax(prev_scores)))
labels = [str(t) for t in probe[0].tolist()]
fig, axes = plt.subplots(1, 2, figsize=(12, 5))
plots.heatmap(probe_run.attn[prev_head[0]][0, prev_head[1]].cpu(), labels, labels, ax=axes[0], show=False,
              title=f"layer 0 head {prev_head[1]}: previous-token head", xlabel="attends to", ylabel="position")
plots.heatmap(probe_run.attn[induction_head[0]][0, induction_head[1]].cpu(), labels, labels, ax=axes[1],
              show=False, title=f"layer {induction_head[0]} head {induction_head[1]}: induction head",
              xlabel="attends to")
plt.tight_layout()
plt.show()

# %% [markdown]
# Those two heads were picked out for you by their scores. Now look for yourself: the slider below steps through
# every head of the two-layer model, then every head of the one-layer model, all on the same probe. Rows are
# still the position doing the predicting, columns the positions it attends to. For each head ask: is there a
# stripe just below the diagonal (previous token), a stripe across the rows of the second copy, each row landing
# one step after the place where its own token appeared the first time (induction), or neither? Which of the two
# can the one-layer model grow?

# %%
with torch.no_grad():
    probe_run1 = runs[1]["model"].run(probe.to(device))
every_head = {f"{n_layers}-layer model · layer {l} · head {h}": run.attn[l][0, h].round(decimals=3).cpu()
              for n_layers, run in ((2, probe_run), (1, probe_run1))
              for l in range(len(run.attn)) for h in range(run.attn[l].shape[1])}
interactive.show(interactive.slider_heatmaps(
    every_head, x=labels, y=labels, zmin=0.0, zmax=1.0, slider_prefix="",
    title="every head on a random sequence shown twice (rows: position; columns: attends to)",
    xlabel="attends to", ylabel="position"))

# %% [markdown]
# **Ablation: take the head out and see what breaks.** `head_mask` multiplies each head's output by 0 or 1
# inside the forward pass: the same model, the same weights, one head silenced. If the induction head is what
# solves the task, silencing it should bring the plateau back, while silencing a head that is not part of the
# circuit should not.

# %%
heads = [(l, h) for l, n in enumerate(model2.cfg.heads) for h in range(n)]
ablated = {hd: em.evaluate_induction(model2, eval_batch, head_mask=model2.head_mask([hd]))["repeat_loss"]
           for hd in heads}
intact = em.evaluate_induction(model2, eval_batch)["repeat_loss"]
copying = {hd: em.copying_score(model2, *hd) for hd in heads}
names = {hd: f"L{hd[0]}H{hd[1]}" + (" (induction)" if hd == induction_head else
                                    " (previous-token)" if hd == prev_head else "") for hd in heads}
fig, ax = plt.subplots(figsize=(7, 3.4))
ax.bar(["none"] + [names[hd] for hd in heads], [intact] + [ablated[hd] for hd in heads],
       color=["C2"] + ["C3" if hd in (induction_head, prev_head) else "C0" for hd in heads])
ax.axhline(plateau, color="gray", ls=":", label="the plateau before the cliff")
ax.set(ylabel="repeated-copy loss (nats)", title="silencing one head at a time")
ax.legend(fontsize=8)
plt.show()
for hd in heads:
    print(f"{names[hd]:22s} silenced -> loss {ablated[hd]:.3f} | prefix-matching "
          f"{h2.evals[-1][f'prefix_L{hd[0]}H{hd[1]}']:.2f}, previous-token "
          f"{em.previous_token_score(probe_run.attn[hd[0]])[hd[1]]:.2f}, copying score {copying[hd]:+.2f}")

# %%
others = [hd for hd in heads if hd not in (induction_head, prev_head)]
control = min(others, key=lambda hd: ablated[hd]) if others else None
claims.check("ablating_the_head_brings_the_plateau_back",
             ablated[induction_head] >= 0.8 * plateau and control is not None and ablated[control] < 0.5 * plateau,
             required_at="lesson", intact=intact, plateau=plateau, induction_head=names[induction_head],
             ablated_induction=ablated[induction_head], control=names.get(control), ablated_control=ablated.get(control))
claims.check("previous_token_head_is_needed_too", ablated[prev_head] >= 0.8 * plateau, required_at="never",
             head=names[prev_head], ablated=ablated[prev_head], plateau=plateau,
             copying_scores={names[hd]: copying[hd] for hd in heads})

# %%
display(Markdown(
    f"Silencing the induction head takes the loss from {intact:.3f} to **{ablated[induction_head]:.2f}** nats "
    f"(the plateau was {plateau:.2f}): the model has no other way to solve the task. Silencing the "
    f"previous-token head gives **{ablated[prev_head]:.2f}**: "
    + ("the induction head reads the note that head writes, so the circuit needs both. "
       if ablated[prev_head] >= 0.8 * plateau else
       "here the job of writing the note is shared with the other layer-0 head, so removing one hurts less. ")
    + (f"Silencing {names[control]}, which is not part of the circuit, gives {ablated[control]:.2f}. "
       if control is not None else "")
    + f"The induction head's copying score (Olsson et al.'s measure of \"does attending to token *a* raise "
    f"the logit of *a*?\", from +1 for a pure copier to −1) is **{copying[induction_head]:+.2f}**."))

# %% [markdown]
# ## 3 · Few-shot classification, learned in context
#
# Chan et al. (2022, *Data Distributional Properties Drive Emergent In-Context Learning in Transformers*) asked
# which kind of training data makes a model learn from its context rather than memorise. Their finding: data
# that is **bursty** (the same rare classes recur within one sequence) and whose meanings vary from sequence to
# sequence push a Transformer towards in-context learning. In their naturalistic setting, recurrent models
# (LSTMs) given the same data and budget did not learn it.
#
# Our version pits section 2's attention-only Transformer against lesson 02's LSTM language model, sized to
# about the same number of parameters and trained for the same steps on the same batches. A sequence is 8
# (item, label) pairs. Items are 32 symbols, labels are "A" and "B". The mapping
# from item to label is **drawn fresh for every sequence**, so no weight can store it: the label of an item
# can only be known from an earlier pair *in the same sequence*. After each item the model must say its label.
# In bursty sequences the items come from two classes only, so they recur; in non-bursty ones any of the 32
# items can appear, and a repeat is rare.
#
# A good in-context learner gets the first answer right half the time (a coin flip) and every later answer
# right once the item has been shown (and, cleverly, also when the *other* item has been shown: it must have
# the other label). The "look-up rule" line below is the simple version: copy the label if the item appeared,
# else guess.

# %%
example = em.few_shot_batch(1, generator=torch.Generator().manual_seed(seed + 3), **few.task())
show = lambda t: f"i{t}" if t < few.n_items else "AB"[t - few.n_items]
print(" ".join(show(t) for t in example.x[0].tolist()), "→ ?", f"(answer: {'AB'[example.labels[0, -1]]})")

# %%
few_eval = em.few_shot_batch(few.eval_size, generator=torch.Generator().manual_seed(20_000 + seed), **few.task())
few_models = {"Transformer (bursty data)": lambda: AttnOnlyTransformer(few.transformer_config()),
              "LSTM (bursty data)": lambda: CharLM(RecurrentConfig(vocab_size=few.vocab, embed=few.lstm_embed,
                                                                   hidden=few.lstm_hidden, cell="lstm"))}
if few.compare_bursty:
    few_models["Transformer (non-bursty data)"] = lambda: AttnOnlyTransformer(few.transformer_config())
few_results = {}
for name, make in few_models.items():
    torch.manual_seed(seed)
    model = make().to(device)
    bursty = "non-bursty" not in name
    Trainer(model, lm_data.lm_loss, em.few_shot_batches(few.batch, seed, **few.task(bursty)), few.train_config(),
            device=device, name=name).fit()
    acc = em.few_shot_accuracy(model, few_eval, few.n_items, few.n_labels)
    few_results[name] = dict(acc=acc, params=count_parameters(model))
    print(f"{name:30s} {count_parameters(model):>7,} parameters | accuracy after 0 / 1 / last examples: "
          f"{acc['by_k'][0]:.2f} / {acc['by_k'][1]:.2f} / {acc['by_k'][-1]:.2f} | items already shown: {acc['seen']:.2f}")

# %%
ks = list(range(few.n_pairs))
series = {name: (ks, r["acc"]["by_k"].tolist()) for name, r in few_results.items()}
series["look-up rule (copy if shown, else guess)"] = (ks, next(iter(few_results.values()))["acc"]["lookup"].tolist())
plots.lines(series, xlabel="examples already in the prompt", ylabel="accuracy on the next item",
            hline=(1 / few.n_labels, "chance"), title="learning a labelling from the prompt alone");

# %%
tf, lstm = few_results["Transformer (bursty data)"], few_results["LSTM (bursty data)"]
late_tf, late_lstm = tf["acc"]["by_k"][-1].item(), lstm["acc"]["by_k"][-1].item()
display(Markdown(
    f"After {few.n_pairs - 1} examples the Transformer answers **{late_tf:.0%}** correctly and the LSTM "
    f"**{late_lstm:.0%}** (chance: {1 / few.n_labels:.0%}), with {tf['params']:,} and {lstm['params']:,} "
    "parameters and the same training steps. "
    + ("As in Chan et al., the Transformer learned to learn from its prompt and the LSTM did not."
       if late_tf > late_lstm + 0.2 else
       "The gap Chan et al. found did not appear here; the numbers are reported as they came. "
       "A likely reason: our sequences hold two item-label bindings at a time, which fit easily in an LSTM's "
       "state, while theirs were images of many rare classes. An LSTM has to squeeze every binding into a "
       "fixed-size state (lesson 03's bottleneck again), a Transformer just looks back, so try more classes "
       "per sequence (`n_way`, `n_labels`) and longer prompts and watch which one degrades first.")))
claims.check("few_shot_in_context_transformer_vs_lstm", late_tf > late_lstm + 0.2, required_at="never",
             transformer_by_k=tf["acc"]["by_k"], lstm_by_k=lstm["acc"]["by_k"], transformer_params=tf["params"],
             lstm_params=lstm["params"], steps=few.steps, lookup_rule=tf["acc"]["lookup"])
if few.compare_bursty:
    flat = few_results["Transformer (non-bursty data)"]
    claims.check("bursty_data_drives_in_context_learning", late_tf > flat["acc"]["by_k"][-1].item() + 0.2,
                 required_at="never", bursty_last=late_tf, non_bursty_last=flat["acc"]["by_k"][-1],
                 non_bursty_seen=flat["acc"]["seen"], bursty_seen=tf["acc"]["seen"])

# %% [markdown]
# The same kind of model, fed sequences where items rarely recur, gets almost no reward for looking back and
# does not learn to. Chan et al. saw the same: the *data* decides whether in-context learning emerges. Natural
# language is bursty (a name, once mentioned, tends to come back), which is one reason large language models
# learn it.
#
# ## 4 · "Emergence": a property of the model, or of the ruler?
#
# **Wei et al. (2022)** called an ability *emergent* if it is absent in smaller models and present in larger
# ones, so that you cannot predict it by extrapolating the small ones. Their plots (multi-step arithmetic,
# transliteration, several BIG-Bench tasks) look like hockey sticks: accuracy sits at zero across several model
# sizes, then shoots up.
#
# **Schaeffer, Miranda and Koyejo (2023)** pointed at the ruler. Most of those tasks are scored by **exact
# match**: the answer counts only if *every* token is right. If a model gets each token right with probability
# *p*, and tokens were independent, an answer of *L* tokens is right with probability *p*^*L*. Let *p* creep up
# smoothly from 0.5 to 0.9 and a 10-token answer goes from 0.001 to 0.35: nothing, nothing, then suddenly
# something. Re-score the same model outputs with a per-token metric and the hockey stick becomes a gentle
# slope. They found that more than nine in ten of BIG-Bench's "emergent" cases used such sharp metrics.
#
# The other side has a point too: a user gets value only from the *whole* answer, so the size at which exact
# match takes off is the size at which the ability becomes usable; and a smooth per-token curve does not tell
# you in advance where that threshold is crossed. Both can be true: the model improves smoothly, and the
# useful ability arrives suddenly.
#
# **Our measurement.** The family of section 1 completes held-out words of at least seven letters, shown the
# text before the word and its first three letters ("…have you not a dau" → "ghter"). Three rulers:
# **per-character accuracy** (is the model's top guess for each missing letter right, given the letters
# before it?), the **log-probability** of the whole missing part, and **exact match** (does greedy decoding
# write the whole word?).

# %%
items = em.completion_items(val_text, fam.words, min_len=fam.min_word, given=fam.given, context=fam.context,
                            seed=seed, max_len=fam.max_word)
print("examples:", " | ".join(f"{p[-14:]!r} → {a!r}" for p, a in items[:4]))
scores, greedy_same = {}, True
for width, model in family.items():
    c = em.word_completion(model, chars.encode, items)
    # greedy decoding, for real, on some words: it must agree with the exact match read off teacher forcing
    check = items[:fam.check_greedy]
    prompts = torch.tensor([chars.encode(p) for p, _ in check], device=device)
    longest = max(len(a) for _, a in check)
    out = generate(model, prompts, longest, temperature=0).tokens[:, prompts.shape[1]:].cpu()
    wrote = [out[i, :len(a)].tolist() == chars.encode(a) for i, (_, a) in enumerate(check)]
    forced = em.exact_from_correct(c.correct[:len(check)], c.lengths[:len(check)])
    greedy_same = greedy_same and abs(sum(wrote) / len(check) - forced) < 1e-9
    scores[width] = dict(params=model.num_params(), acc=c.char_accuracy, logprob=c.logprob, exact=c.exact_match,
                         predicted=c.predicted_exact, mean_len=float(c.lengths.float().mean()))
    print(f"width {width:4d}: per-character accuracy {c.char_accuracy:.3f}, log-probability {c.logprob:7.2f}, "
          f"exact match {c.exact_match:.3f} (accuracy^length predicts {c.predicted_exact:.3f})")
claims.check("exact_match_is_greedy_decoding_of_every_character", greedy_same, required_at="always",
             words_checked=fam.check_greedy, models=len(family))

# %%
params = [s["params"] for s in scores.values()]
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
for ax, key, label in zip(axes, ("acc", "logprob", "exact"),
                          ("per-character accuracy", "log-probability of the rest of the word (nats)",
                           "exact match (whole word right)")):
    ax.plot(params, [s[key] for s in scores.values()], "o-", color="C0" if key != "exact" else "C3")
    ax.set(xscale="log", xlabel="parameters", title=label)
    ax.grid(alpha=0.3)
axes[2].plot(params, [s["predicted"] for s in scores.values()], "s--", color="gray", label="accuracy ^ length")
axes[2].legend(fontsize=8)
plt.suptitle("the same models, three rulers")
plt.tight_layout()
plt.show()

ps = np.linspace(0, 1, 101)
mean_len = float(np.mean([s["mean_len"] for s in scores.values()]))
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.plot(ps, ps ** mean_len, color="gray", label=f"p^{mean_len:.1f}: independent characters")
ax.plot([s["acc"] for s in scores.values()], [s["exact"] for s in scores.values()], "o", color="C3",
        label="our models (exact match)")
ax.set(xlabel="per-character accuracy p", ylabel="exact match", title="a smooth ruler bent into a sharp one")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
plt.show()

# %%
gaps = {w: abs(s["exact"] - s["predicted"]) for w, s in scores.items()}
smallest, largest = scores[fam.widths[0]], scores[fam.widths[-1]]
logprobs = [s["logprob"] for s in scores.values()]
display(Markdown(
    f"From the smallest to the largest model, per-character accuracy goes from {smallest['acc']:.2f} to "
    f"{largest['acc']:.2f} and the log-probability from {smallest['logprob']:.1f} to {largest['logprob']:.1f} "
    "nats" + (", improving at every step up in size" if all(b > a for a, b in zip(logprobs, logprobs[1:])) else "")
    + f". Exact match goes from {smallest['exact']:.3f} to {largest['exact']:.3f}. "
    f"The independence formula accuracy^length stays within {max(gaps.values()):.3f} of the measured exact match "
    "for every model. "
    + ("Where they differ, exact match is *higher* than the formula: errors are not independent, they cluster in "
       "words the model does not know, while the words it knows come out whole. The formula captures the shape "
       "(flat, then steep), not the exact height."
       if largest["exact"] > largest["predicted"] else
       "Exact match is no higher than the formula here: the model's errors are spread across words.")))
# Reported, not required: while exact match stays this small an absolute tolerance cannot fail, and a relative one
# does not hold (errors cluster in the words a small model does not know, so exact match beats the formula).
claims.check("exact_match_is_about_accuracy_to_the_length", all(g <= 0.05 for g in gaps.values())
             and largest["acc"] > smallest["acc"], required_at="never", tolerance=0.05,
             exact={w: s["exact"] for w, s in scores.items()}, predicted={w: s["predicted"] for w, s in scores.items()},
             char_accuracy={w: s["acc"] for w, s in scores.items()}, logprob={w: s["logprob"] for w, s in scores.items()},
             params=params, mean_length=mean_len)

# %%
display(Markdown(
    ("Our family is small and briefly trained, so its exact match stays low: that is the flat part of the hockey "
     "stick, and the curve above shows where it is heading. A family of bigger models would climb the steep part "
     "of *p*^*L*, " if largest["exact"] < 0.2 else
     "Our family reaches the steep part of *p*^*L*: ")
    + "and anyone plotting only exact match would see the ability \"appear\". The per-character and "
      "log-probability curves would have warned them it was coming."))

# %% [markdown]
# ## What still breaks
#
# * **A pretrained model continues text; it does not follow instructions.** In-context learning lets you steer
#   it with examples, but ask it a question in plain words and it may well continue with more questions, the
#   way a web page would. Lesson 09 fine-tunes a GPT on instruction–response pairs so that it answers.
# * **Few-shot is fragile.** Which examples you pick, their order and the balance of labels all move the answer
#   (Zhao et al. 2021, *Calibrate Before Use*). Our toy task hides this because every sequence is clean.
# * **Induction is only the beginning.** Copying what came after the last match is the simplest kind of
#   in-context learning. Larger models build fuzzier versions (match a *similar* token, a translated word, an
#   analogous pattern), and how far that story goes is still being researched.

# %%
lesson.finish()

# %% [markdown]
# ## Exercises
#
# **Exercise 1 (prefix matching).** Write `my_prefix_matching_score(attn, tokens)` for one head: `attn` is
# `(B, T, T)` (row *t* = where position *t* looks), `tokens` is `(B, T)`. For each position *t* whose token
# appeared earlier (at some *i* < *t*), add up the attention that row puts on the positions *i* + 1; return the
# mean of those sums over all such rows, as a float.

# %% nbgrader={"grade": false, "grade_id": "ex1_solution", "locked": false, "schema_version": 3, "solution": true}
def my_prefix_matching_score(attn: torch.Tensor, tokens: torch.Tensor) -> float:
    ### BEGIN SOLUTION
    B, T = tokens.shape
    total, rows = 0.0, 0
    for b in range(B):
        for t in range(T):
            earlier = [i for i in range(t) if tokens[b, i] == tokens[b, t]]
            if earlier:
                total += sum(float(attn[b, t, i + 1]) for i in earlier)
                rows += 1
    return total / rows
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex1_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_tok = torch.tensor([[5, 6, 7, 5, 6, 7]])
_attn = torch.zeros(1, 6, 6)
_attn[0, :3, 0] = 1.0
_attn[0, 3, 1] = _attn[0, 4, 2] = _attn[0, 5, 3] = 1.0      # the induction stripe
assert abs(my_prefix_matching_score(_attn, _tok) - 1.0) < 1e-6
### BEGIN HIDDEN TESTS
_g = torch.Generator().manual_seed(1)
_tokens = em.repeated_tokens(3, 7, 20, _g)
_raw = torch.rand(3, 14, 14, generator=_g).tril()
_rand = _raw / _raw.sum(-1, keepdim=True)
assert abs(my_prefix_matching_score(_rand, _tokens) - em.prefix_matching_score(_rand, _tokens).item()) < 1e-5
_uniform = torch.ones(14, 14).tril()
_uniform = (_uniform / _uniform.sum(-1, keepdim=True)).expand(3, 14, 14)
assert abs(my_prefix_matching_score(_uniform, _tokens) - sum(1 / (t + 1) for t in range(7, 14)) / 7) < 1e-5
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (the sharp ruler).** `correct` is a boolean table `(words, slots)`: `correct[w, i]` says whether
# the model's guess for character *i* of word *w* was right; only the first `lengths[w]` slots of a row are real.
# Write `exact_match_and_prediction(correct, lengths)` returning `(exact, predicted)`: the share of words whose
# real characters are all right, and the mean over words of *p*^length, where *p* is the share of all real
# characters that are right.

# %% nbgrader={"grade": false, "grade_id": "ex2_solution", "locked": false, "schema_version": 3, "solution": true}
def exact_match_and_prediction(correct: torch.Tensor, lengths: torch.Tensor) -> tuple[float, float]:
    ### BEGIN SOLUTION
    real = torch.arange(correct.shape[1])[None] < lengths[:, None]
    exact = (correct | ~real).all(dim=1).float().mean().item()
    p = correct[real].float().mean().item()
    predicted = (p ** lengths.double()).mean().item()
    return exact, predicted
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex2_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_c = torch.tensor([[True, True, False], [True, True, True]])
_e, _p = exact_match_and_prediction(_c, torch.tensor([2, 3]))
assert abs(_e - 1.0) < 1e-6 and abs(_p - 1.0) < 1e-6
### BEGIN HIDDEN TESTS
_c = torch.tensor([[True, False, True, True], [True, True, True, True], [False, True, True, False]])
_l = torch.tensor([4, 4, 3])
_e, _p = exact_match_and_prediction(_c, _l)
assert abs(_e - em.exact_from_correct(_c, _l)) < 1e-6 and abs(_e - 1 / 3) < 1e-6
_acc = 9 / 11
assert abs(_p - (2 * _acc ** 4 + _acc ** 3) / 3) < 1e-6
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (ablate by hand).** Write `ablation_effect(model, batch, layer, head)`: the repeated-copy loss of
# the attention-only `model` on the `em.InductionBatch` `batch` with head (`layer`, `head`) silenced, minus the
# loss with every head on. Build the mask yourself: a tensor of ones of shape `(layers, most heads in a layer)`
# with a 0 for the silenced head, passed as `model(batch.x, head_mask=mask)`; score with `em.masked_loss`.
#
# (To go further, ungraded: train a *three*-layer model with `ind.model_config(3)` and predict first: is its
# cliff earlier or later, and how many induction heads does it grow?)

# %% nbgrader={"grade": false, "grade_id": "ex3_solution", "locked": false, "schema_version": 3, "solution": true}
def ablation_effect(model, batch, layer: int, head: int) -> float:
    ### BEGIN SOLUTION
    device = next(model.parameters()).device
    x, y, mask_rows = batch.x.to(device), batch.y.to(device), batch.repeat.to(device)
    mask = torch.ones(model.cfg.n_layers, max(model.cfg.heads), device=device)
    mask[layer, head] = 0.0
    with torch.no_grad():
        cut = em.masked_loss(model(x, head_mask=mask), y, mask_rows)
        full = em.masked_loss(model(x), y, mask_rows)
    return cut - full
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex3_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_effect = ablation_effect(runs[2]["model"], eval_batch, *induction_head)
assert isinstance(_effect, float)
### BEGIN HIDDEN TESTS
for _hd in heads:
    _want = (em.evaluate_induction(runs[2]["model"], eval_batch, head_mask=runs[2]["model"].head_mask([_hd]))["repeat_loss"]
             - em.evaluate_induction(runs[2]["model"], eval_batch)["repeat_loss"])
    assert abs(ablation_effect(runs[2]["model"], eval_batch, *_hd) - _want) < 1e-4
### END HIDDEN TESTS
