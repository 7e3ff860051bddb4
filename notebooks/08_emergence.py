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
# picked up a new task *from its context*. In 2022 Anthropic's *In-context Learning and Induction Heads* (Olsson
# et al.) proposed a mechanism: a small attention circuit that appears suddenly during training. The same year
# Wei et al.'s *Emergent Abilities of Large Language Models* catalogued skills that seem to switch on only past
# some model size (a catalogue of *when*, not an explanation of *how*). A year later Schaeffer, Miranda and
# Koyejo asked whether those switches were in the models or in the way we score them (*Are Emergent Abilities of
# Large Language Models a Mirage?*). This lesson reproduces each of these arguments with numbers: at toy scale
# where we can watch training, and in a real pretrained model, SmolLM2-135M, where we can look inside.
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
# **The plan.** (1) Does a GPT read its context? Our small char GPT, then a real pretrained model. (2) Build the
# smallest model that can learn induction heads and watch one appear, suddenly. (3) Find the same circuit in the
# real model, cut it out, and watch copying and few-shot learning suffer. (4) Learn a classification task from
# examples in the prompt, Transformer against LSTM. (5) Is "emergence" a property of models or of metrics?

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
from course_lib import gpt, reasoning
from course_lib.core import Trainer, count_parameters, data, interactive, plots
from course_lib.emergence import AttnOnlyTransformer
from course_lib.gpt import GPT, generate
from course_lib.gpt import gguf_model as G
from course_lib.gpt.llama import Llama, LlamaConfig
from course_lib.harness.lesson import Lesson
from course_lib.recipes import (AdditionFamilyRecipe, CircuitRecipe, FewShotRecipe, InductionRecipe, LMFamilyRecipe,
                                checkpoint_path)
from course_lib.recurrent import CharLM, RecurrentConfig
from course_lib.text import CharTokenizer, lm_data

lesson = Lesson("08_emergence", profile, seed)
device, claims = lesson.device, lesson.claims

# %%
ind, few, fam = InductionRecipe.preset(profile), FewShotRecipe.preset(profile), LMFamilyRecipe.preset(profile)
circ, addf = CircuitRecipe.preset(profile), AdditionFamilyRecipe.preset(profile)
print(ind, few, fam, circ, addf, sep="\n")

# %% [markdown]
# ## 1 · Does a GPT read its context?
#
# A language model trained on next-token prediction gets a fresh window of text for every prediction. If it
# uses what it has read, its guesses should improve the further it is into the window: at position 3 it knows
# three characters, at position 100 it knows a whole speech, the speaker's name, the words already used.
#
# We need a GPT. We train one now, built like lesson 06's (shallower and trained for fewer steps, to fit this
# lesson's budget), and study it, or lesson 06's own model if its checkpoint is in `build/` (a better model: it
# trained on several times as much text, with a 128-character window).

# %%
text = data.load_shakespeare()
train_text, val_text = data.train_val_split(text)
chars = CharTokenizer.fit(text)
train_ids, val_ids = torch.tensor(chars.encode(train_text)), torch.tensor(chars.encode(val_text))

torch.manual_seed(seed)
subject = GPT(fam.model_config(len(chars))).to(device)
Trainer(subject, lm_data.lm_loss, lm_data.batches_by_step(train_ids, fam.block, fam.batch, seed), fam.train_config(),
        device=device, name=f"GPT width {fam.width}").fit()
subject.eval()
print(f"width {fam.width}: {subject.num_params():,} parameters, validation loss "
      f"{lm_data.evaluate_lm(subject, val_ids, fam.block, device=device):.3f}")

# %%
source = f"the width-{fam.width} GPT trained above"
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
       f"This model does not copy: the second copy costs about as much as the first. {source[0].upper() + source[1:]} "
       "is too small and has read too little: Olsson et al. saw the copying circuit form after billions of "
       "tokens of training, and tiny Shakespeare, all of it, is about a million characters. It is also the "
       "wrong kind of text for it: Shakespeare seldom repeats a long stretch within one window, so copying "
       "earns a model little there. Below, a model that read trillions of tokens takes the same test; section "
       "2 trains a small model on data where copying pays, and watches the circuit form.")
    + (f" (Both numbers are above ln 26 = {math.log(26):.2f}, a uniform guess among the letters: the model "
       "expects English, and gibberish surprises it more than it would surprise a coin-flipper.)"
       if min(first_copy, second_copy) > math.log(26) else "")))
claims.check("repeated_random_string_is_cheaper_the_second_time", helped, required_at="never",
             first_copy=first_copy, second_copy=second_copy, length=n_rep, model=source)

# %% [markdown]
# ### The same test on a real model
#
# Our GPT is a few hundred thousand parameters trained for a minute. **SmolLM2-135M-Instruct** (Hugging Face,
# 2024) has 135 million parameters and read about two trillion tokens of web text, code and books before it was
# instruction-tuned. Lesson 09 reads its file into the course's own Llama code (`course_lib.gpt.llama`); we load
# it the same way here. (At the `smoke` profile a tiny *random* Llama of the same code stands in, so the cells
# run in seconds; its numbers mean nothing.)
#
# The test is the same: random tokens, shown twice. Now they are random *tokens* from its 49,152-token
# vocabulary, 50-ish of them per copy, after the start-of-text token the model saw in front of its documents.

# %%
smol_path = G.smollm2_path()
if circ.real_model:
    smol, smol_tok, smol_info = G.load_gguf(smol_path, device=device)
    smol_name = "SmolLM2-135M-Instruct"
    print(f"loaded in {smol_info.seconds:.1f} s")
else:                      # smoke: the real tokenizer, a tiny random model of the same code
    smol_tok = G.GGUFTokenizer.from_metadata(G.metadata(G.open_gguf(smol_path)), smol_path)
    torch.manual_seed(seed)
    smol = Llama(LlamaConfig.preset("tiny", vocab_size=len(smol_tok.tokens))).to(device).eval()
    smol_name = "a tiny random Llama (smoke stand-in)"
n_layer, n_head = smol.cfg.n_layer, smol.cfg.n_head
print(f"{smol_name}: {smol.num_params():,} parameters, {n_layer} layers x {n_head} query heads "
      f"({smol.cfg.n_kv_head} key/value heads)")

g = torch.Generator().manual_seed(seed)
vocab_smol = smol.cfg.vocab_size
random_ids = em.repeated_tokens(circ.sequences, circ.n_random, vocab_smol - circ.first_id, g) + circ.first_id
rep_seqs = torch.cat([torch.full((circ.sequences, 1), circ.start_id), random_ids], dim=1)
smol_first, smol_second, smol_curve = em.copy_losses(smol, rep_seqs, circ.n_random, curve=True)
print("one sequence, the first tokens of each copy:",
      repr(smol_tok.decode(rep_seqs[0, 1:9].tolist())), "...", repr(smol_tok.decode(rep_seqs[0, circ.n_random + 1:circ.n_random + 9].tolist())))

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
for ax, (curve_, n_, vocab_, name_) in zip(axes, ((rep_curve, n_rep, 26, source),
                                                   (smol_curve[1:], circ.n_random, vocab_smol, smol_name))):
    ax.plot(range(1, len(curve_) + 1), curve_.tolist(), "o-", ms=2.5)
    ax.axhline(math.log(vocab_), color="gray", ls=":", label=f"ln {vocab_:,}: a uniform guess")
    ax.axvline(n_, color="C3", ls="--", lw=1, label="the second copy starts")
    ax.set(xlabel="position of the predicted token", ylabel="loss (nats)", title=name_)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
plt.suptitle("a random string shown twice: a small char GPT and a real model")
plt.tight_layout()
plt.show()

# %%
copies = smol_second < smol_first / 3
display(Markdown(
    f"{smol_name}: mean loss **{smol_first:.2f}** nats on the first copy (a uniform guess would cost "
    f"ln {vocab_smol:,} = {math.log(vocab_smol):.2f}: random tokens surprise a model that expects text), "
    f"**{smol_second:.2f}** on the second, {smol_second / smol_first:.0%} of the first. "
    + ("The tokens are random, so nothing the model learned in training predicts them: it is reading them off "
       "the first copy. The control is built in: the *same* tokens cost the full price the first time."
       if copies else "At this profile the stand-in model is random: it does not copy, as expected.")))
claims.check("real_model_copies_from_context", copies, required_at="lesson", first_copy=smol_first,
             second_copy=smol_second, ratio=smol_second / smol_first, ln_vocab=math.log(vocab_smol),
             sequences=circ.sequences, tokens_per_copy=circ.n_random, model=smol_name)

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
# Here is the circuit as a picture: the same row of tokens at both layers. Below, each token's previous-token
# head looks one step back (blue); above, the last "D" looks for a position whose note says "after D" (red).

# %%
em.draw_induction_circuit(["Mr", "D", "urs", "ley", "was", "…", "Mr", "D"]);

# %% [markdown]
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
# Note the ruler. Section 5 meets the argument that many "sudden" abilities are an artefact of scoring all or
# nothing (Schaeffer et al.). That argument does not apply here: this cliff was measured with cross-entropy, the
# smoothest ruler there is (every small improvement in the probability of the right token shows), and the
# x-axis is training steps of one model, not model size. The jump is in the training dynamics itself.
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
#
# Silencing (**zero-ablation**) is blunt: a head's output is not centred on zero, it has a typical value that
# the later layers expect, and zero may be a value they never saw. **Mean-ablation** replaces the head's output
# by its average over the batch (at each position) instead: "the head, doing its usual thing on average, but no
# longer reading *this* sequence". It removes the head's information and keeps its offset.
# `em.ablate_heads` does it with a hook on the output projection; we show both.

# %%
heads = [(l, h) for l, n in enumerate(model2.cfg.heads) for h in range(n)]
ablated = {hd: em.evaluate_induction(model2, eval_batch, head_mask=model2.head_mask([hd]))["repeat_loss"]
           for hd in heads}
intact = em.evaluate_induction(model2, eval_batch)["repeat_loss"]
toy_x, toy_y, toy_rows = eval_batch.x.to(device), eval_batch.y.to(device), eval_batch.repeat.to(device)
toy_means = em.head_means(model2, toy_x)
mean_ablated = {}
for hd in heads:
    with em.ablate_heads(model2, [hd], toy_means), torch.no_grad():
        mean_ablated[hd] = em.masked_loss(model2(toy_x), toy_y, toy_rows)
copying = {hd: em.copying_score(model2, *hd) for hd in heads}
names = {hd: f"L{hd[0]}H{hd[1]}" + (" (induction)" if hd == induction_head else
                                    " (previous-token)" if hd == prev_head else "") for hd in heads}
fig, ax = plt.subplots(figsize=(8, 3.4))
xs = np.arange(len(heads) + 1)
ax.bar(xs - 0.2, [intact] + [ablated[hd] for hd in heads], 0.4, color="C3", label="zero-ablation")
ax.bar(xs + 0.2, [intact] + [mean_ablated[hd] for hd in heads], 0.4, color="C0", label="mean-ablation")
ax.set_xticks(xs, ["none"] + [names[hd] for hd in heads])
ax.axhline(plateau, color="gray", ls=":", label="the plateau before the cliff")
ax.set(ylabel="repeated-copy loss (nats)", title="taking out one head at a time")
ax.legend(fontsize=8)
plt.show()
for hd in heads:
    print(f"{names[hd]:22s} zero -> loss {ablated[hd]:.3f}, mean -> {mean_ablated[hd]:.3f} | prefix-matching "
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
    f"the logit of *a*?\", from +1 for a pure copier to −1) is **{copying[induction_head]:+.2f}**.\n\n"
    f"Mean-ablating the induction head instead gives **{mean_ablated[induction_head]:.2f}**"
    + (f", {'closer to' if abs(mean_ablated[induction_head] - plateau) < abs(ablated[induction_head] - plateau) else 'no closer to'} "
       f"the plateau than zero-ablation's {ablated[induction_head]:.2f}. "
       + ("Zero-ablation overshoots: a loss above the plateau means the model does *worse* than it did before "
          "it learned anything, because a zeroed head also removes its usual offset and pushes the residual "
          "stream somewhere the read-out never saw. That extra damage is the knife's, not the circuit's."
          if ablated[induction_head] > plateau else ""))))
claims.check("mean_ablation_lands_nearer_the_plateau",
             abs(mean_ablated[induction_head] - plateau) < abs(ablated[induction_head] - plateau),
             required_at="never", plateau=plateau, zero_ablated=ablated[induction_head],
             mean_ablated=mean_ablated[induction_head])

# %% [markdown]
# ## 3 · The same circuit in a real model
#
# Section 1 showed SmolLM2 copying random tokens it could not have memorised. Is it the circuit we just watched
# form? We can look: compute, for each of its heads, how much a token of the second copy attends to the token
# *after* its earlier occurrence (the prefix-matching score), find the heads that do it, then take them out.
#
# **Reading the attention.** Our Llama calls PyTorch's fused attention, which never hands back the attention
# probabilities. So we recompute them from what each layer reads: a hook records the layer's input, and
# `em.attention_from_qk` redoes the layer by hand, queries and keys, the rotary position embedding (the
# rotate-half layout lesson 09 explains), softmax, values, output projection. Two details of the real model
# matter here. It uses **grouped-query attention**: 9 query heads share 3 key/value heads, query head *h* using
# key/value head *h* // 3 (`repeat_interleave`, not `repeat`: the wrong one silently pairs heads that were never
# trained together). And the rebuilt output must equal the layer's own, or the probabilities we plot are fiction.

# %%
hs = em.head_scores(smol, rep_seqs, score_from=1)       # position 0 (the start token) is left out
prefix_scores, prev_scores_real = hs["prefix"], hs["previous"]
print(f"largest relative error of the rebuilt attention output over all {n_layer} layers: {hs['max_error']:.1e}")
claims.check("recomputed_attention_reproduces_the_model", hs["max_error"] < 1e-4, required_at="always",
             max_relative_error=hs["max_error"], layers=n_layer, model=smol_name)

# %%
top = em.top_heads(prefix_scores, max(circ.top_k))
top_prev = em.top_heads(prev_scores_real, circ.exclude_previous)
fig, axes = plt.subplots(1, 2, figsize=(11, 0.2 * n_layer + 2.2))
for ax, table, title in ((axes[0], prefix_scores, "prefix-matching (induction) score"),
                         (axes[1], prev_scores_real, "previous-token score")):
    im = ax.imshow(table.numpy(), cmap="viridis", aspect="auto", vmin=0, vmax=1)
    ax.set(xlabel="head", ylabel="layer", title=title, xticks=range(n_head))
    plt.colorbar(im, ax=ax)
plt.tight_layout()
plt.show()
print("top induction heads:      ", ", ".join(f"L{l}H{h} {prefix_scores[l, h]:.2f}" for l, h in top))
print("top previous-token heads: ", ", ".join(f"L{l}H{h} {prev_scores_real[l, h]:.2f}" for l, h in top_prev))
uniform_ref = float(np.mean([1 / (t + 1) for t in range(circ.n_random, 2 * circ.n_random)]))
display(Markdown(
    f"{int((prefix_scores > 0.3).sum())} of {n_layer * n_head} heads score above 0.3 "
    f"(a head spreading its attention evenly would score about {uniform_ref:.3f}). "
    f"The strongest induction heads sit in layers {min(l for l, _ in top)}–{max(l for l, _ in top)} "
    f"of {n_layer}; the strongest previous-token heads in layers "
    f"{', '.join(str(l) for l in sorted({l for l, _ in top_prev}))}, earlier or alongside: the two halves "
    "of the circuit, in the order the picture needs them."))

# %% [markdown]
# Pick a head with the slider: the first entries are the best induction heads, then the best previous-token
# heads, then a few ordinary heads for comparison. An induction head draws a stripe in the lower half, one step
# right of the diagonal of the first copy: each token of the second copy looks at the token that followed it
# last time. Most heads also park a lot of attention on position 0, the start token (an **attention sink**:
# when a head has nothing useful to look at, it looks there).

# %%
ordinary = em.random_heads(n_layer, n_head, max(1, circ.slider_heads // 4), exclude=top + top_prev,
                           generator=torch.Generator().manual_seed(seed))
shown = list(dict.fromkeys(top[:circ.slider_heads // 2] + top_prev[:circ.slider_heads // 4] + ordinary))
probe_layers = sorted({l for l, _ in shown})
with em.AttentionRecorder(smol, probe_layers) as rec, torch.no_grad():
    smol(rep_seqs[:1].to(device))
probe_attn = {l: em.recomputed_attention(smol, rec, l)[0][0].cpu() for l in probe_layers}
tok_labels = [f"{i}:{smol_tok.decode([t])!r}"[:14] for i, t in enumerate(rep_seqs[0].tolist())]
kind = lambda hd: "induction" if hd in top else "previous-token" if hd in top_prev else "other"
interactive.show(interactive.slider_heatmaps(
    {f"L{l}H{h} ({kind((l, h))}, prefix {prefix_scores[l, h]:.2f})": probe_attn[l][h].round(decimals=3)
     for l, h in shown}, x=tok_labels, y=tok_labels, zmin=0.0, zmax=1.0,
    title=f"{smol_name}: one head's attention on random tokens shown twice", xlabel="attends to",
    ylabel="position"))

# %% [markdown]
# **Cut them out.** We mean-ablate the top *k* induction heads (each replaced by its average output over the
# batch, at each position) and measure the second copy's loss again. The control: the same number of heads
# drawn at random, several times. The previous-token heads found above are kept out of those random draws:
# they are the circuit's other half, and a draw that happens to hit one breaks copying too (we ablate them
# separately below). Zero-ablation is shown beside mean-ablation.

# %%
means_rep = em.head_means(smol, rep_seqs)


def second_copy_loss(heads_, means_):
    with em.ablate_heads(smol, heads_, means_):
        return em.copy_losses(smol, rep_seqs, circ.n_random)[1]


cut = {(k, m): second_copy_loss(top[:k], means_rep if m == "mean" else None)
       for k in circ.top_k for m in ("mean", "zero")}
draws = [em.random_heads(n_layer, n_head, circ.claim_k, exclude=top + top_prev,
                         generator=torch.Generator().manual_seed(1000 * seed + d)) for d in range(circ.random_draws)]
rand_cut = {m: [second_copy_loss(d, means_rep if m == "mean" else None) for d in draws] for m in ("mean", "zero")}
prev_cut = second_copy_loss(top_prev, means_rep)

fig, ax = plt.subplots(figsize=(7.5, 3.8))
for m, c in (("mean", "C0"), ("zero", "C3")):
    ax.plot(circ.top_k, [cut[(k, m)] for k in circ.top_k], "o-", color=c, label=f"top-k induction heads, {m}-ablated")
    ax.scatter([circ.claim_k] * len(draws), rand_cut[m], marker="x", color=c, s=50,
               label=f"{circ.claim_k} random heads, {m}-ablated ({len(draws)} draws)")
ax.axhline(smol_second, color="C2", ls="--", label="nothing ablated")
ax.axhline(smol_first, color="gray", ls=":", label="the first copy (nothing to copy from)")
ax.set(xlabel="heads ablated (k)", ylabel="second-copy loss (nats)", title="cutting the induction heads")
ax.grid(alpha=0.3)
ax.legend(fontsize=7)
plt.show()

# %%
rise_top = cut[(circ.claim_k, "mean")] - smol_second
rise_rand = [r - smol_second for r in rand_cut["mean"]]
breaks = rise_top >= 1.0 and rise_top > 3 * max(max(rise_rand), 0.0)
k_max = max(circ.top_k)
display(Markdown(
    f"Mean-ablating the top {circ.claim_k} induction heads lifts the second copy's loss from {smol_second:.2f} to "
    f"**{cut[(circ.claim_k, 'mean')]:.2f}** nats; {circ.claim_k} random heads move it to "
    f"{', '.join(f'{r:.2f}' for r in rand_cut['mean'])}. With the top {k_max} gone it is "
    f"**{cut[(k_max, 'mean')]:.2f}**, against {smol_first:.2f} for the first copy. Mean-ablating the "
    f"{len(top_prev)} strongest previous-token heads (the other half) gives {prev_cut:.2f}.\n\n"
    f"Zero-ablation of the same top {circ.claim_k} gives {cut[(circ.claim_k, 'zero')]:.2f}, and of random heads "
    f"{', '.join(f'{r:.2f}' for r in rand_cut['zero'])}. "
    + ("Zero hits harder than the mean on the induction heads: it removes what they say *and* their usual "
       "offset, so part of that damage is the residual stream being pushed where the later layers never saw "
       "it, not the loss of the circuit. "
       if cut[(circ.claim_k, 'zero')] > cut[(circ.claim_k, 'mean')] else "")
    + ("Zeroing random heads can even move the loss *down*: an off-distribution knife does not measure a "
       "head's job. That is why mean-ablation is the comparison that means something."
       if min(rand_cut["zero"]) < smol_second else "")))
claims.check("ablating_induction_heads_breaks_copying", breaks, required_at="lesson", k=circ.claim_k,
             intact=smol_second, top_ablated=cut[(circ.claim_k, "mean")], rise_top=rise_top,
             random_ablated=rand_cut["mean"], rise_random=rise_rand, draws=len(draws),
             top_heads=[f"L{l}H{h}" for l, h in top[:circ.claim_k]],
             zero_top=cut[(circ.claim_k, "zero")], zero_random=rand_cut["zero"], previous_token_ablated=prev_cut)

# %% [markdown]
# **Does few-shot learning rest on them too?** Olsson et al. argue that induction heads are the seed of
# in-context learning in general, not only of copying. A test where copying alone is not enough: made-up words,
# each paired with a colour in the prompt, then the same words again in a new order. The pairing is drawn fresh
# for every prompt, so the model can only get the colour from the prompt; without the examples (zero-shot) it can
# only guess among four. Each prompt scores every one of its words: the colour is read off the model's next-token
# logits after " =", choosing among the four colours.

# %%
shots = em.word_label_prompts(smol_tok.encode, circ.prompts, circ.labels, n_pairs=circ.n_pairs,
                              start=[circ.start_id], seed=seed, sep=circ.sep)
zero_shot = em.word_label_prompts(smol_tok.encode, circ.prompts, circ.labels, n_pairs=circ.n_pairs,
                                  start=[circ.start_id], seed=seed, sep=circ.sep, shots=False)
print(shots.texts[0])
few_clean, few_zero = em.label_scores(smol, shots), em.label_scores(smol, zero_shot)
means_few = em.head_means(smol, shots.ids, mask=em.real_positions(shots))
with em.ablate_heads(smol, top[:circ.fewshot_k], means_few):
    few_top = em.label_scores(smol, shots)
with em.ablate_heads(smol, top[:circ.fewshot_k], None):
    few_top_zero = em.label_scores(smol, shots)
few_draws = [em.random_heads(n_layer, n_head, circ.fewshot_k, exclude=top + top_prev,
                             generator=torch.Generator().manual_seed(1000 * seed + 500 + d))
             for d in range(circ.random_draws)]
few_rand = []
for d in few_draws:
    with em.ablate_heads(smol, d, means_few):
        few_rand.append(em.label_scores(smol, shots))
n_queries = shots.where.numel()
rows = [("zero-shot (no examples)", few_zero), ("few-shot", few_clean),
        (f"few-shot, top {circ.fewshot_k} induction heads mean-ablated", few_top),
        (f"few-shot, top {circ.fewshot_k} induction heads zero-ablated", few_top_zero)] + \
       [(f"few-shot, {circ.fewshot_k} random heads mean-ablated (draw {i + 1})", r) for i, r in enumerate(few_rand)]
display(Markdown(f"{n_queries} queries ({circ.prompts} prompts × {circ.n_pairs} words), chance "
                 f"{1 / len(circ.labels):.0%}:\n\n| condition | accuracy | log-prob of the right colour |\n|---|---|---|\n"
                 + "\n".join(f"| {name} | {r['accuracy']:.3f} | {r['logprob']:.2f} |" for name, r in rows)))

# %%
beats = few_clean["accuracy"] > few_zero["accuracy"] + 0.3
rand_acc = ", ".join(f"{r['accuracy']:.0%}" for r in few_rand)
rand_acc_lp = ", ".join(f"{r['accuracy']:.0%} / {r['logprob']:.2f}" for r in few_rand)
hurts = (few_top["accuracy"] < min(r["accuracy"] for r in few_rand)
         and few_top["logprob"] < min(r["logprob"] for r in few_rand))
display(Markdown(
    f"With the examples in the prompt the model names the right colour {few_clean['accuracy']:.0%} of the time, "
    f"against {few_zero['accuracy']:.0%} without them: it learned the pairing from its context. "
    + (f"Mean-ablating the top {circ.fewshot_k} induction heads takes that to {few_top['accuracy']:.0%} "
       f"(log-probability {few_clean['logprob']:.2f} → {few_top['logprob']:.2f}), lower than any of the "
       f"{len(few_rand)} random draws ({rand_acc}): the heads that "
       "copy random tokens also carry this few-shot task. "
       if hurts else
       f"Mean-ablating the top {circ.fewshot_k} induction heads gives {few_top['accuracy']:.0%} (log-probability "
       f"{few_top['logprob']:.2f}), not clearly below the random draws "
       f"({rand_acc_lp}): on this run the few-shot "
       "task does not hang on them as clearly as copying does. ")
    + ("Even so it stays well above the zero-shot level: "
       if few_top["accuracy"] > few_zero["accuracy"] + 0.1 else "It falls to about the zero-shot level; still, ")
    + "the induction heads are unlikely to be the whole story. Todd et al. (2024) and Yin & Steinhardt (2025) find other "
    "heads (\"function vector\" heads) that carry *what the task is*, and argue that few-shot learning in bigger "
    "models leans on those more than on induction heads."))
claims.check("few_shot_beats_zero_shot", beats, required_at="never", few_shot=few_clean, zero_shot=few_zero,
             queries=n_queries, model=smol_name)
claims.check("ablating_induction_heads_hurts_few_shot", hurts, required_at="never", k=circ.fewshot_k,
             clean=few_clean, top_mean_ablated=few_top, top_zero_ablated=few_top_zero, random_mean_ablated=few_rand,
             queries=n_queries)

# %% [markdown]
# ## 4 · Few-shot classification, learned in context
#
# Chan et al. (2022, *Data Distributional Properties Drive Emergent In-Context Learning in Transformers*) asked
# which kind of training data makes a model learn from its context rather than memorise. Their finding: data
# that is **bursty** (the same rare classes recur within one sequence) and whose meanings vary from sequence to
# sequence push a Transformer towards in-context learning. In their naturalistic setting, recurrent models
# (LSTMs) given the same data and budget did not learn it.
#
# Our version pits section 2's attention-only Transformer against lesson 02's LSTM language model, sized to
# about the same number of parameters and trained for the same steps on the same batches. A sequence is a run
# of (item, label) pairs. Items are 32 symbols, labels "A" and "B". The mapping from item to label is **drawn
# fresh for every sequence**, so no weight can store it: the label of an item can only be known from an earlier
# pair *in the same sequence*. After each item the model must say its label. In bursty sequences the items come
# from a few classes that recur; in non-bursty ones any of the 32 items can appear, and a repeat is rare.
#
# **The knob: how many bindings at once.** `n_way` is the number of classes in a sequence, so the number of
# item → label bindings the model must hold at the same time. A Transformer keeps every earlier pair in its
# context and can look any one of them up; an LSTM must squeeze all the bindings into one fixed-size state
# vector (lesson 03's bottleneck again). With 2 bindings both should manage; as `n_way` grows, the LSTM's state
# should run out first. For each `n_way` we train a fresh Transformer and a fresh LSTM on sequences of that kind
# (the same steps, the same batches), then test them on fresh sequences of the same kind.
#
# We score the answers for items **already shown** in the sequence, where the answer sits in the context. Two
# rules to read them against: the **look-up rule** (copy the label of the earlier pair) gets all of them right;
# the **no-binding rule** (say the label shown most often so far) reads the context but ties no label to any
# item. A model at the no-binding line has learned nothing about *which* item goes with *which* label. (With two
# labels and more classes than that, several classes share a label, so the no-binding rule already beats a coin
# flip; with two classes the look-up is all that helps.)

# %%
example = em.few_shot_batch(1, generator=torch.Generator().manual_seed(seed + 3), **few.task(n_way=few.ways[-1]))
show = lambda t: f"i{t}" if t < few.n_items else "AB"[t - few.n_items]
print(f"an {few.ways[-1]}-way sequence:", " ".join(show(t) for t in example.x[0].tolist()), "→ ?",
      f"(answer: {'AB'[example.labels[0, -1]]})")

# %%
few_eval = {w: em.few_shot_batch(few.eval_size, generator=torch.Generator().manual_seed(20_000 + seed),
                                 **few.task(n_way=w)) for w in few.ways}
makers = {"Transformer": lambda: AttnOnlyTransformer(few.transformer_config()),
          "LSTM": lambda: CharLM(RecurrentConfig(vocab_size=few.vocab, embed=few.lstm_embed, hidden=few.lstm_hidden,
                                                 cell="lstm"))}
few_runs = [(name, w, True) for w in few.ways for name in makers]
if few.compare_bursty:     # the control: the same Transformer trained on sequences where items rarely recur
    few_runs.append(("Transformer", few.ways[0], False))
few_results = {}
for name, w, bursty in few_runs:
    torch.manual_seed(seed)
    model = makers[name]().to(device)
    label = f"{name} ({w}-way)" if bursty else f"{name} (non-bursty data)"
    Trainer(model, lm_data.lm_loss, em.few_shot_batches(few.batch, seed, **few.task(bursty, n_way=w)),
            few.train_config(), device=device, name=label).fit()
    acc = em.few_shot_accuracy(model, few_eval[w], few.n_items, few.n_labels)
    few_results[label] = dict(name=name, n_way=w, bursty=bursty, acc=acc, params=count_parameters(model))
    print(f"{label:32s} {count_parameters(model):>7,} parameters | accuracy on items already shown "
          f"{acc['seen']:.2f} (no-binding rule {acc['majority_seen']:.2f}) | after the last example "
          f"{acc['by_k'][-1]:.2f}")
seen = {name: {w: few_results[f"{name} ({w}-way)"]["acc"]["seen"] for w in few.ways} for name in makers}
no_binding = {w: few_results[f"Transformer ({w}-way)"]["acc"]["majority_seen"] for w in few.ways}

# %%
series = {name: (list(few.ways), list(v.values())) for name, v in seen.items()}
series["no-binding rule (most frequent label so far)"] = (list(few.ways), list(no_binding.values()))
series["look-up rule (copy the earlier pair)"] = (list(few.ways), [1.0] * len(few.ways))
plots.lines(series, xlabel="n_way: item-label bindings in one sequence", ylabel="accuracy on items already shown",
            hline=(1 / few.n_labels, "chance"), title="holding more bindings at once");

# %%
tf, lstm = seen["Transformer"], seen["LSTM"]
gap = {w: tf[w] - lstm[w] for w in few.ways}
grows = all(b > a for a, b in zip(list(gap.values()), list(gap.values())[1:])) and \
    gap[few.ways[-1]] - gap[few.ways[0]] >= few.min_gap_growth
lo_w, hi_w = few.ways[0], few.ways[-1]
# where the LSTM has "broken": within `few.at_no_binding` of the rule that binds nothing
broken = [w for w in few.ways if lstm[w] <= no_binding[w] + few.at_no_binding]
lstm_first = (lstm[lo_w] >= no_binding[lo_w] + few.above_no_binding
              and any(tf[w] >= no_binding[w] + few.above_no_binding for w in broken))
params = {name: few_results[f"{name} ({lo_w}-way)"]["params"] for name in makers}
display(Markdown(
    f"On items already shown ({params['Transformer']:,} and {params['LSTM']:,} parameters, the same steps), the "
    "Transformer answers " + ", ".join(f"{v:.0%} at {w}-way" for w, v in tf.items()) + "; the LSTM "
    + ", ".join(f"{v:.0%}" for v in lstm.values()) + "; the no-binding rule "
    + ", ".join(f"{v:.0%}" for v in no_binding.values()) + ". The gap, Transformer minus LSTM: "
    + ", ".join(f"{g:+.2f}" for g in gap.values()) + ". "
    + ("It grows with the number of bindings. " if grows else
       f"It does not grow at every step (the claim asks for that and a rise of at least {few.min_gap_growth} from "
       f"{lo_w}-way to {hi_w}-way): the Transformer, too, answers worse with more bindings, within the same "
       "training steps. ")
    + (f"The finer reading: with {lo_w} bindings the LSTM is well above the no-binding line, but at "
       + ", ".join(f"{w}-way" for w in broken) + " it sits on it, having learned nothing about which item goes with "
       "which label, while the Transformer stays above it there. The LSTM's fixed-size state runs out first, "
       "the bottleneck behind Chan et al.'s result."
       if lstm_first else
       "On this run the LSTM does not fall to the no-binding line while the Transformer stays above it, so the "
       "run does not show the LSTM's state running out first.")))
claims.check("lstm_falls_behind_as_bindings_grow", grows, required_at="never", gap=gap,
             min_gap_growth=few.min_gap_growth, transformer_seen=tf, lstm_seen=lstm, no_binding=no_binding,
             transformer_params=params["Transformer"], lstm_params=params["LSTM"], steps=few.steps,
             n_pairs=few.n_pairs)
claims.check("lstm_reaches_the_no_binding_line_first", lstm_first, required_at="never", lstm_broken_at=broken,
             at_no_binding=few.at_no_binding, above_no_binding=few.above_no_binding, transformer_seen=tf,
             lstm_seen=lstm, no_binding=no_binding)
if few.compare_bursty:
    flat = few_results["Transformer (non-bursty data)"]["acc"]
    bursty_wins = tf[lo_w] > flat["seen"] + 0.2
    claims.check("bursty_data_drives_in_context_learning", bursty_wins, required_at="never", n_way=lo_w,
                 bursty_seen=tf[lo_w], non_bursty_seen=flat["seen"], no_binding=no_binding[lo_w])
    display(Markdown(
        f"The same Transformer trained on non-bursty sequences, where items rarely recur, scores {flat['seen']:.0%} "
        f"on the {lo_w}-way test's items already shown (bursty-trained: {tf[lo_w]:.0%}). "
        + ("Looking back was almost never rewarded in its training, and it did not learn to: as Chan et al. "
           "found, the *data* decides whether in-context learning emerges. Natural language is bursty (a name, "
           "once mentioned, tends to come back), which is one reason large language models learn it."
           if bursty_wins else
           "On this run it is not clearly below the bursty-trained one, so the run does not show that the data "
           "decide it.")))

# %% [markdown]
# ## 5 · "Emergence": a property of the model, or of the ruler?
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
# **Our measurement.** Multi-digit addition is one of Wei et al.'s hockey sticks, so we grow a family of adders:
# GPTs of one shape at growing widths (`addf.widths`, printed at the top), each trained for the same steps on the
# same batches of 3-digit sums. They write the sum out column by column, the
# way lesson 11 teaches a small GPT to add: `478+365=3c1,4c1,8c0>843$` reads "units: digit 3, carry 1; tens:
# digit 4, carry 1; hundreds: digit 8, carry 0; so 843". Every answer is written to one length *L* (17: a sum
# can have four digits; shorter ones are padded with `$`, which the model must write too).
# On sums none of them trained on, two rulers:
# **per-character accuracy** (smooth: is the model's top guess for each character of the answer right, given the
# right characters before it?) and **exact match** (sharp: is the whole answer right, which is what "it can
# add" means). Both come from one pass over the correct answers: greedy decoding writes an answer whole exactly
# when each of those guesses is right, since a first wrong guess is where greedy leaves the road.
#
# Below the second ruler we draw two predictions. *p*^*L* is Schaeffer's formula (every character equally hard
# and independent). The product of the *L* per-position accuracies drops the "equally hard" part and keeps
# "independent".

# %%
tok = reasoning.addition_tokenizer()
split = reasoning.ProblemSplit.draw(addf.train_problems, 1, addf.test_problems, seed=seed)
test_rows = reasoning.encode_examples(split.test, addf.fmt, tok)
answer_len = test_rows.shape[1] - reasoning.PROMPT_LEN
print("a held-out problem and its answer:", tok.decode(test_rows[0].tolist()), f"({answer_len} answer characters)")
# train_format also tracks greedy exact match on a split's test problems while it trains; one problem is enough
# for that, since we score the held-out sums ourselves, position by position
train_only = reasoning.ProblemSplit(split.train, split.val, split.val)
scores, greedy_same = {}, True
for width in addf.widths:
    adder = reasoning.train_format(train_only, addf.fmt, tok, addf.format_recipe(width), device, seed=seed,
                                   name=f"adder width {width}").model.eval()
    correct = em.answer_correct(adder, test_rows, reasoning.PROMPT_LEN)
    # greedy decoding, for real, on some problems: it must agree with the exact match read off the table
    check = test_rows[:addf.check_greedy]
    wrote = generate(adder, check[:, :reasoning.PROMPT_LEN].to(device), answer_len, temperature=0).tokens
    greedy_same = greedy_same and torch.equal((wrote[:, reasoning.PROMPT_LEN:].cpu() == check[:, reasoning.PROMPT_LEN:])
                                              .all(1), correct[:len(check)].all(1))
    by_position = correct.float().mean(0)
    acc = float(correct.float().mean())
    scores[width] = dict(params=adder.num_params(), acc=acc, exact=float(correct.all(1).float().mean()),
                         predicted=acc ** answer_len, by_position=by_position,
                         product=float(by_position.prod()))
    s = scores[width]
    print(f"width {width:3d} ({s['params']:>7,} parameters): per-character accuracy {acc:.3f}, exact match "
          f"{s['exact']:.3f} | p^{answer_len} predicts {s['predicted']:.3f}, the product of positions {s['product']:.3f}")
claims.check("exact_match_is_greedy_decoding_of_every_character", greedy_same, required_at="always",
             problems_checked=addf.check_greedy, models=len(addf.widths))

# %% [markdown]
# Where does each model go wrong? Each row is one model, each column one character of the answer; dark means
# often wrong.

# %%
answer_chars = list(reasoning.completion(478, 365, addf.fmt))
fig, ax = plt.subplots(figsize=(8, 0.45 * len(addf.widths) + 1.2))
im = ax.imshow(torch.stack([s["by_position"] for s in scores.values()]).numpy(), vmin=0, vmax=1, cmap="viridis",
               aspect="auto")
ax.set(xticks=range(answer_len), xticklabels=answer_chars, yticks=range(len(addf.widths)),
       yticklabels=[f"width {w}" for w in addf.widths], xlabel="the answer's characters (shown for 478+365)",
       title="per-position accuracy on held-out sums")
fig.colorbar(im, ax=ax, label="accuracy")
plt.show()

# %%
params = [s["params"] for s in scores.values()]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
axes[0].plot(params, [s["acc"] for s in scores.values()], "o-", color="C0")
axes[0].set(title="smooth ruler: per-character accuracy")
axes[1].plot(params, [s["exact"] for s in scores.values()], "o-", color="C3", label="measured")
axes[1].plot(params, [s["predicted"] for s in scores.values()], "s--", color="gray", label=f"p^{answer_len}")
axes[1].plot(params, [s["product"] for s in scores.values()], "^:", color="k", label="product of positions")
axes[1].set(title="sharp ruler: exact match (the whole sum right)")
axes[1].legend(fontsize=8)
for ax in axes:
    ax.set(xscale="log", xlabel="parameters", ylim=(-0.03, 1.03))
    ax.grid(alpha=0.3)
plt.suptitle("the same adders, two rulers")
plt.tight_layout()
plt.show()

ps = np.linspace(0, 1, 101)
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.plot(ps, ps ** answer_len, color="gray", label=f"p^{answer_len}: independent, equally hard characters")
ax.plot([s["acc"] for s in scores.values()], [s["exact"] for s in scores.values()], "o", color="C3",
        label="our adders (exact match)")
ax.set(xlabel="per-character accuracy p", ylabel="exact match", title="a smooth ruler bent into a sharp one")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
plt.show()

# %%
sizes = list(scores)
flat = [w for w in sizes if scores[w]["exact"] < addf.flat]
climb = scores[flat[-1]]["acc"] - scores[flat[0]]["acc"] if len(flat) >= 2 else 0.0
largest = scores[sizes[-1]]
jumps = ((scores[a]["exact"], scores[b]["exact"], a, b) for a, b in zip(sizes, sizes[1:]))
before, after, w_from, w_to = max(jumps, key=lambda j: j[1] - j[0])
hidden = len(flat) >= 2 and climb >= addf.min_climb and largest["exact"] >= addf.steep
display(Markdown(
    f"Exact match stays under {addf.flat} for {len(flat)} of the {len(sizes)} adders "
    + (f"(widths {flat[0]} to {flat[-1]}), while their per-character accuracy climbs from "
       f"{scores[flat[0]]['acc']:.2f} to {scores[flat[-1]]['acc']:.2f}"
       + (": real progress that the sharp ruler reads as zero. " if climb >= addf.min_climb else
          f", less than the {addf.min_climb} the claim asks for. ") if len(flat) >= 2 else ". ")
    + f"Its largest step between neighbouring sizes is from width {w_from} to width {w_to}: {before:.3f} to "
      f"{after:.3f}. The largest adder writes {largest['exact']:.1%} of the held-out sums whole "
    + ("(the steep part of the curve, reached). " if largest["exact"] >= addf.steep else
       "(the family did not reach the steep part of the curve on this run). ")
    + "The per-position picture above shows what the smooth ruler averages over: which characters of the answer "
      "carry the errors, model by model."))
claims.check("exact_match_jumps_while_per_character_accuracy_climbs", hidden, required_at="never",
             flat_below=addf.flat, flat_widths=flat, climb_while_flat=climb, min_climb=addf.min_climb,
             largest_exact=largest["exact"], steep=addf.steep, widths=sizes, params=params,
             exact={w: s["exact"] for w, s in scores.items()}, char_accuracy={w: s["acc"] for w, s in scores.items()})

# %% [markdown]
# Does the formula *p*^*L* predict the height of the curve, not only its shape? We compare measured and predicted
# exact match only where the prediction is at least 0.1, and ask them to agree within a factor of 1.25 either
# way. Why 1.25: on the lesson's 2,000 held-out sums, a rate of 0.1 is measured to within about 0.007 (one
# standard error, $\sqrt{0.1 \cdot 0.9 / 2000}$), so a factor of 1.25 is at least 3 standard errors: a correct
# prediction lands outside it in well under one run in a hundred. A model outside that band fails the formula. The same test is run on the product of
# the per-position accuracies.

# %%
lo, hi = addf.ratio_band
def ratios(key):
    return {w: s["exact"] / s[key] for w, s in scores.items() if s[key] >= addf.min_predicted}
r_formula, r_product = ratios("predicted"), ratios("product")
holds = lambda r: bool(r) and all(lo <= v <= hi for v in r.values())
flat_formula = {w: (s["exact"], s["predicted"]) for w, s in scores.items() if s["exact"] < addf.flat}
display(Markdown(
    f"Measured / predicted where *p*^{answer_len} predicts at least {addf.min_predicted}: "
    + (", ".join(f"width {w}: {v:.2f}" for w, v in r_formula.items()) if r_formula else "no model")
    + "; for the product of positions: "
    + (", ".join(f"width {w}: {v:.2f}" for w, v in r_product.items()) if r_product else "no model") + ". "
    + ("On the flat part (exact match under " + f"{addf.flat}) *p*^{answer_len} predicts "
       + ", ".join(f"{p:.3f}" for _, p in flat_formula.values()) + " where the measurement is "
       + ", ".join(f"{e:.3f}" for e, _ in flat_formula.values())
       + (": the formula assumes every character is equally hard; here the easy characters (separators, "
          "carries) lift *p* while the hard ones sink nearly every answer. "
          if all(e < p for e, p in flat_formula.values()) else ". ")
       + "The product of per-position accuracies, which knows which characters are hard, predicts "
       + ", ".join(f"{scores[w]['product']:.3f}" for w in flat_formula) + " there. " if flat_formula else "")
    + "The formula gets the shape right (flat, then steep) because exact match multiplies many per-character "
      "chances; how high the curve is at a given size depends on which characters are hard."))
claims.check("exact_match_is_about_accuracy_to_the_length", holds(r_formula), required_at="never",
             ratio_band=list(addf.ratio_band), min_predicted=addf.min_predicted, ratios=r_formula,
             exact={w: s["exact"] for w, s in scores.items()}, predicted={w: s["predicted"] for w, s in scores.items()},
             char_accuracy={w: s["acc"] for w, s in scores.items()}, params=params, answer_length=answer_len,
             test_problems=addf.test_problems)
claims.check("exact_match_is_the_product_of_per_position_accuracies", holds(r_product), required_at="never",
             ratio_band=list(addf.ratio_band), min_predicted=addf.min_predicted, ratios=r_product,
             product={w: s["product"] for w, s in scores.items()}, exact={w: s["exact"] for w, s in scores.items()})

# %% [markdown]
# Two different things in this lesson looked sudden. The induction cliff of section 2 was measured with a smooth
# ruler (the loss, a cross-entropy), so Schaeffer's critique does not dissolve it: the training dynamics really
# change abruptly. In the adders, the sharp ruler multiplies *L* chances, so it turns steady per-character gains
# into "nothing, then suddenly something"; the per-position picture tells you whether, under that, some single
# character also switches on between neighbouring sizes. Read both rulers side by side before calling anything
# emergent.

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
