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
# # 02 · LSTM: a memory that lasts
#
# | ~1986–2010 | 1997 → 2010s | 2014 | 2015 | 2017 | 2018+ | 2022 |
# |---|---|---|---|---|---|---|
# | RNN | **LSTM ← you are here** | Seq2Seq | Attention | Transformer | GPT / BERT | RLHF |
#
# Lesson 01 ended with a measurement: in a plain RNN the learning signal shrinks by a roughly constant
# factor per step, so after a few dozen steps it is gone. Hochreiter analysed this in his 1991 diploma thesis
# (Bengio, Simard and Frasconi published the same analysis in 1994), and Hochreiter and Schmidhuber proposed
# the fix in 1997: the **Long Short-Term Memory** cell. The 1997 cell kept its memory on a self-connection of
# fixed weight 1 (the "constant error carousel"); the **forget gate** written below was added by Gers,
# Schmidhuber and Cummins (*Learning to forget*, 1999/2000), and it is what every LSTM since uses.
#
# **What.** An LSTM keeps two vectors: the hidden state $h_t$ (what the cell shows the world) and the
# **cell state** $c_t$ (what it keeps for itself). Three *gates*, each a sigmoid between 0 and 1, decide
# what happens to the memory at every step:
#
# $$
# \begin{aligned}
# f_t &= \sigma(W_f [x_t, h_{t-1}] + b_f) &&\text{forget gate: how much of the old memory to keep}\\
# i_t &= \sigma(W_i [x_t, h_{t-1}] + b_i) &&\text{input gate: how much of the new candidate to write}\\
# g_t &= \tanh(W_g [x_t, h_{t-1}] + b_g) &&\text{the candidate itself}\\
# o_t &= \sigma(W_o [x_t, h_{t-1}] + b_o) &&\text{output gate: how much of the memory to show}\\
# c_t &= f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t)
# \end{aligned}
# $$
#
# **Why it works.** Look at $c_t = f_t \odot c_{t-1} + \dots$: the memory is carried forward by a
# multiplication with a gate the network *chooses*, not by a fixed matrix followed by a squashing function.
# When the forget gate is near 1, the memory (and the gradient flowing back along it) passes through almost
# untouched; when it is lower, the decay is still slower than the RNN's. Section 4 measures both cases: a
# language model whose forget gates sit around 0.7 and the recall task, where they sit near 1. Section 2 also
# asks how much of the LSTM's memory comes from the cell and how much from where its forget gates start.
#
# **When.** From the late 2000s to 2017 LSTMs ran speech recognition on phones, Google Translate (2016) and
# most sequence models in production, until attention and Transformers took over.
#
# **An analogy.** Think of a factory with a conveyor belt running past every workstation. Most stations
# leave the belt alone, so whatever is on it rides to the end of the line intact. A station can take
# something off (forget), put something on (input), or look at the belt to do its own job (output), and
# each station learns when to do which. The plain RNN had no belt: every station rebuilt the whole package.

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

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib.core import Trainer, count_parameters, diagrams, interactive, load_shakespeare, plots, train_val_split
from course_lib.harness.lesson import Lesson
from course_lib.recipes import CharLMRecipe, DelayRecipe, train_recall
from course_lib.recurrent import (CharLM, LSTMCell, RNNCell, RecurrentConfig, copy_cell_into_torch, delayed_recall,
                                  gradient_by_distance, set_forget_bias, unroll)
from course_lib.recurrent.recall import (Arm, lstm_cell_of, make_recall_model, memory_probe, recall_arms,
                                        recall_gradient_by_distance)
from course_lib.text import CharTokenizer, batches_by_step, evaluate_lm, lm_loss, window_batch
from IPython.display import Markdown, display

lesson = Lesson("02_lstm", profile, seed)
device, claims = lesson.device, lesson.claims

# %% [markdown]
# ## 1. The cell, written out
#
# PyTorch stacks the four gate weight matrices into one, in the order input, forget, candidate, output, so
# one matrix multiplication computes all four. We do the same, so the weights copy across unchanged.
#
# The picture first. The top line is the **cell state** c, a conveyor belt that runs through time touched only
# by a multiplication (the forget gate: how much to keep) and an addition (the input gate times a candidate:
# what to write). Nothing squashes it on the way, which is why gradients can travel along it. Every gate reads
# the same two things, the previous hidden state and the current input, and outputs numbers between 0 and 1
# (σ) that act as valves. The hidden state h that the rest of the network sees is a filtered view of the belt.

# %% tags=["hide-input"]
nodes = {
    "c_prev": (0, 3, "c(t−1)"), "keep": (2.5, 3, "×", "op"), "add": (5, 3, "+", "op"), "c": (8.2, 3, "c(t)"),
    "in": (0, 0, "[h(t−1), x(t)]"),
    "f": (2.5, 1.2, "forget\nσ", "#4C72B0"), "i": (4.0, 1.2, "input\nσ", "#DD8452"),
    "g": (5.6, 1.2, "candidate\ntanh", "#55A868"), "o": (7.0, 1.2, "output\nσ", "#C44E52"),
    "write": (5, 2.1, "×", "op"), "squash": (8.2, 2.0, "tanh"), "show": (8.2, 0.8, "×", "op"), "h": (9.8, 0.8, "h(t)"),
}
edges = [("c_prev", "keep"), ("keep", "add"), ("add", "c"), ("f", "keep", "keep?"), ("i", "write"), ("g", "write"),
         ("write", "add", "write"), ("c", "squash"), ("squash", "show"), ("o", "show", "show?"), ("show", "h"),
         ("in", "f"), ("in", "i"), ("in", "g"), ("in", "o")]
diagrams.graph(nodes, edges, size=(10, 4.6), title="an LSTM cell: the cell state c runs along the top");

# %%
class MyLSTMCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        bound = 1 / math.sqrt(hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size).uniform_(-bound, bound))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size).uniform_(-bound, bound))
        self.bias_ih = nn.Parameter(torch.zeros(4 * hidden_size))
        self.bias_hh = nn.Parameter(torch.zeros(4 * hidden_size))

    def forward(self, x, state):
        h, c = state
        z = x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh
        i, f, g, o = z.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)   # the conveyor belt
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


# %%
# NBVAL_CHECK_OUTPUT

torch.manual_seed(0)
mine, reference, library = MyLSTMCell(10, 20), nn.LSTM(10, 20, batch_first=True), LSTMCell(10, 20)
with torch.no_grad():
    library.load_state_dict(mine.state_dict())
copy_cell_into_torch(mine, reference)

xs, h0, c0 = torch.randn(4, 15, 10), torch.randn(4, 20), torch.randn(4, 20)
ours, _ = unroll(mine, xs, (h0, c0))
lib_out, _ = unroll(library, xs, (h0, c0))
theirs, _ = reference(xs, (h0[None], c0[None]))
err = max((ours - theirs).abs().max().item(), (lib_out - theirs).abs().max().item())
print("outputs:", tuple(ours.shape), "| max |ours - nn.LSTM| < 1e-5:", err < 1e-5)
claims.check("lstm_cell_matches_torch", err < 1e-5, required_at="always", max_abs_error=err)

# %% [markdown]
# ## 2. A task that needs nothing but memory
#
# **Delayed recall.** The first token of a sequence is one of 8 *symbols*. Then come $T$ random
# *distractor* tokens, then a *cue*. At the cue the model must say which symbol it saw at the start. Nothing
# in the distractors helps; the only way to win is to hold one fact for $T$ steps. Guessing scores 1/8.
#
# A fair race: both models get the same training budget (steps, batch size, learning rate) and about the
# same number of parameters (an RNN with 128 hidden units against an LSTM with 64, whose four gates make it
# four times as wide inside). Every model is trained from several seeds and every seed is a dot on the plot:
# now and then a plain RNN gets lucky and parks a bit or two of the symbol in a saturated unit, so one run
# can mislead.
#
# One detail matters: we start the LSTM's forget gates **open** (bias +5, so $f \approx 0.99$). A cell that
# remembers by default and *learns what to forget* finds long-range signal from the first step of training;
# a positive forget bias is standard practice (Gers et al. 2000; Jozefowicz et al. 2015 recommend +1, which
# section 4 uses), and +5 is our task-tuned choice for delays of a hundred steps. The RNN has a knob of its own:
# start $W_{hh}$ as the identity (Le, Jaitly and Hinton's IRNN, 2015, which also uses ReLU units), so that at
# first the state passes through unchanged. The first race gives each cell the setting people reach for first,
# the LSTM its tuned bias and the RNN PyTorch's default; the second race, right after it, turns both knobs.

# %%
recipe = DelayRecipe.preset(profile)
N_SYMBOLS = 8
chance = 1 / N_SYMBOLS
x_demo, y_demo = delayed_recall(2, 6, generator=torch.Generator().manual_seed(0))
print("two examples with T=6 (symbols 0-7, distractors 8-15, cue 16):")
print(x_demo.tolist(), "-> answers", y_demo.tolist())

TUNED, RNN_DEFAULT = Arm("lstm", recipe.forget_bias), Arm("rnn")
ARMS = recall_arms(recipe.forget_bias)          # LSTM bias 0, +1, +5; RNN default, IRNN
trained = {}                                    # (arm, delay, run seed) -> (model, accuracy)


def run(arm, delay, run_seed):
    """Train one arm once (train_recall lives in course_lib.recipes.recurrent); the second race reuses the first's runs."""
    if (arm, delay, run_seed) not in trained:
        trained[arm, delay, run_seed] = train_recall(arm, delay, seed + run_seed, recipe, device)
    return trained[arm, delay, run_seed]


print(f"parameters: RNN {count_parameters(make_recall_model(RNN_DEFAULT, recipe.rnn_hidden)):,}, "
      f"LSTM {count_parameters(make_recall_model(TUNED, recipe.lstm_hidden)):,}")
per_seed = {"rnn": {}, "lstm": {}}
for delay in recipe.delays:
    for kind, arm in (("rnn", RNN_DEFAULT), ("lstm", TUNED)):
        per_seed[kind][delay] = accs = [run(arm, delay, s)[1] for s in recipe.seeds]
        print(f"T={delay:4d}  {arm.label:22s}  accuracy per seed {[round(a, 3) for a in accs]}  "
              f"mean {sum(accs) / len(accs):.3f}")
results = {kind: {d: sum(a) / len(a) for d, a in by_delay.items()} for kind, by_delay in per_seed.items()}

# %%
fig, ax = plt.subplots(figsize=(7, 3.6))
for i, (kind, arm) in enumerate((("rnn", RNN_DEFAULT), ("lstm", TUNED))):
    ax.plot(recipe.delays, [results[kind][d] for d in recipe.delays], "-", color=f"C{i}", lw=1.5,
            label=f"{arm.label} (line: mean)")
    for d in recipe.delays:
        offsets = [(j - (len(recipe.seeds) - 1) / 2) * 0.015 * d for j in range(len(recipe.seeds))]
        ax.plot([d + o for o in offsets], per_seed[kind][d], "o", color=f"C{i}", ms=5, alpha=0.7)
ax.axhline(chance, color="gray", ls=":", lw=1, label="chance (1/8)")
ax.set(xlabel="delay T (distractor steps to remember across)", ylabel="recall accuracy (dot: one seed)",
       title="delayed recall: same budget, same parameter count")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %%
# Fails if no delay has the tuned LSTM's mean at 0.9 or above while the default RNN's mean is within 10 points
# of chance. Controls: the chance line, the parameter match, and the second race below (the RNN's own knob).
# Reported, no longer required: the default RNN is bimodal across seeds (one seed of three can reach 0.96 at
# T = 50 while the others sit at chance), so one lucky seed lifts its mean above chance + 0.1 at every delay
# (lesson run, seed 0, one thread: RNN means 0.41 at T = 50 and 0.26 at T = 100); the second race's five
# seeds per arm are the comparison to read.
separating = [d for d in recipe.delays if results["lstm"][d] >= 0.9 and results["rnn"][d] <= chance + 0.1]
longest = max(recipe.delays)
claims.check("lstm_remembers_where_rnn_is_at_chance", bool(separating), required_at="never",
             lstm_arm=TUNED.label, rnn_arm=RNN_DEFAULT.label, delays=separating, lstm_mean_acc=results["lstm"],
             rnn_mean_acc=results["rnn"], seeds=len(recipe.seeds), chance=chance)

# %%
worst_lstm = min(results["lstm"][d] for d in recipe.delays)
rnn_fallen = [d for d in recipe.delays if results["rnn"][d] <= chance + 0.1]
display(Markdown(
    f"**Reading the result.** On this run the tuned LSTM's mean recall is at least {worst_lstm:.0%} at every delay. "
    f"The default RNN's mean goes from {results['rnn'][min(recipe.delays)]:.0%} at the shortest delay to "
    f"{results['rnn'][longest]:.0%} at the longest, and is within 10 points of chance at "
    + (", ".join(f"T = {d}" for d in rnn_fallen) if rnn_fallen else "no delay tried") + "."))

# %% [markdown]
# The RNN's curve need not fall smoothly: look at the dots. At a long delay one RNN seed may do far better
# than its neighbours. A plain RNN *can* hold one symbol for a long time (a unit driven into saturation stays
# there, like a latch), but whether gradient descent finds that latch through a vanishing gradient is luck.
#
# ### Is it the cell, or the start?
#
# The race above changed two things at once: the cell *and* the initialisation. To separate them, we train
# five arms at one delay, five seeds each, same budget: the LSTM with forget bias 0 (PyTorch's default is
# about that), +1 (the usual recommendation) and +5 (ours), and the RNN with PyTorch's default init and as
# an IRNN (identity $W_{hh}$, ReLU units). If the LSTM's win is the cell's, bias 0 and +1 should win too, and
# the IRNN should not catch up.

# %%
arm_acc = {arm: [run(arm, recipe.arm_delay, s)[1] for s in recipe.arm_seeds] for arm in ARMS}
arm_mean = {arm: sum(a) / len(a) for arm, a in arm_acc.items()}
for arm, accs in arm_acc.items():
    print(f"T={recipe.arm_delay}  {arm.label:22s}  accuracy per seed {[round(a, 3) for a in accs]}  "
          f"mean {arm_mean[arm]:.3f}")

fig, ax = plt.subplots(figsize=(8, 3.8))
for i, (arm, accs) in enumerate(arm_acc.items()):
    offsets = [(j - (len(accs) - 1) / 2) * 0.06 for j in range(len(accs))]
    ax.plot([i + o for o in offsets], accs, "o", color="C1" if arm.cell == "lstm" else "C0", ms=6, alpha=0.75)
    ax.plot([i - 0.25, i + 0.25], [arm_mean[arm]] * 2, "-", color="black", lw=1.5)
ax.axhline(chance, color="gray", ls=":", lw=1, label="chance (1/8)")
ax.set_xticks(range(len(ARMS)), labels=[a.label.replace(", ", "\n") for a in ARMS], fontsize=8)
ax.set(ylabel="recall accuracy (dot: one seed, bar: mean)", ylim=(0, 1.05),
       title=f"delayed recall at T = {recipe.arm_delay}: which start remembers?")
ax.grid(alpha=0.3, axis="y")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %%
best_lstm = max((a for a in ARMS if a.cell == "lstm"), key=arm_mean.get)
best_rnn = max((a for a in ARMS if a.cell == "rnn"), key=arm_mean.get)
usual = Arm("lstm", 1.0)
# Reported. Fails if the best LSTM arm's mean is not at least 10 points above the best RNN arm's: then, with
# both cells' knobs turned, the cell itself is not what wins this race. Control: the same five seeds and
# budget for every arm, and the chance line.
claims.check("best_lstm_arm_beats_best_rnn_arm", arm_mean[best_lstm] >= arm_mean[best_rnn] + 0.1,
             required_at="never", delay=recipe.arm_delay, best_lstm_arm=best_lstm.label,
             best_rnn_arm=best_rnn.label, per_seed={a.label: acc for a, acc in arm_acc.items()},
             seeds=len(recipe.arm_seeds))
# Reported. Fails if the usual +1 forget bias reaches within 10 points of the tuned bias's mean: then the
# tuning does not matter at this delay. Control: the same seeds; the bias is the only difference.
claims.check("forget_bias_decides_lstm_recall", arm_mean[TUNED] >= arm_mean[usual] + 0.1, required_at="never",
             delay=recipe.arm_delay, tuned=arm_mean[TUNED], usual_plus_1=arm_mean[usual],
             bias_0=arm_mean[Arm("lstm", 0.0)])

# %%
def verdict(arm):
    accs = arm_acc[arm]
    good, lost = sum(a >= 0.9 for a in accs), sum(a <= chance + 0.1 for a in accs)
    return f"{arm.label}: mean {arm_mean[arm]:.0%} ({good} of {len(accs)} seeds at 90% or more, {lost} near chance)"


lines = [f"**Reading the second race** (T = {recipe.arm_delay}, this run).", ""] + [f"* {verdict(a)}" for a in ARMS]
lines.append("")
if arm_mean[best_rnn] >= arm_mean[best_lstm] - 0.1:
    lines.append(f"The best RNN arm ({best_rnn.label}) is level with the best LSTM arm ({best_lstm.label}): at this "
                 "delay and budget, a plain RNN with the right start remembers as well as the LSTM, so the first race "
                 "measured the initialisation as much as the cell.")
else:
    lines.append(f"The best LSTM arm ({best_lstm.label}) stays ahead of the best RNN arm ({best_rnn.label}) by "
                 f"{arm_mean[best_lstm] - arm_mean[best_rnn]:.0%}: with both knobs turned, the cell still matters.")
if arm_mean[usual] <= arm_mean[TUNED] - 0.1:
    lines.append(f"The LSTM's own result hangs on its start: at the usual +1 bias it averages {arm_mean[usual]:.0%}, "
                 f"against {arm_mean[TUNED]:.0%} at +{recipe.forget_bias:g}. A belt that leaks a quarter of the memory "
                 "per step (exercise 1) gives training nothing to follow across this many steps.")
if arm_mean[best_rnn] >= arm_mean[best_lstm] - 0.1 and arm_mean[usual] <= arm_mean[TUNED] - 0.1:
    lines += ["", "**This overturns the textbook story for this task.** What remembers here is not the LSTM cell as "
              "such but a path that *starts out* carrying the state forward unchanged: the LSTM has one when its forget "
              "gates start near 1, the RNN when its recurrent matrix starts as the identity. Without one, training on "
              "this budget finds a memory rarely or never (look at the dots of the other arms). Holding one symbol while ignoring everything else is exactly what an "
              "identity matrix does; the LSTM's gates are for what it cannot do, choosing *when* to hold and when to "
              "let go, and this task does not ask for that."]
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## 3. Watching the gates work
#
# Here is the LSTM trained at the longest delay, reading one sequence. We copy its weights into our own
# cell so we can read the gates at every step. Before you look, a warning: the forget gate starts near 0.99
# because of its +5 bias, so a forget gate near 1 in the picture shows mostly the initialisation, not something
# training found. Watch instead whether the input gate treats the symbol differently from the distractors.

# %%
lstm_model = trained[TUNED, longest, recipe.seeds[0]][0]
cell_copy = lstm_cell_of(lstm_model)        # our LSTMCell holding the trained nn.LSTM's weights
x_one, _ = delayed_recall(1, min(longest, 30), generator=torch.Generator().manual_seed(3))
emb = lstm_model.embed(x_one.to(device))
state = cell_copy.initial_state(1, device)
gate_trace = {"input": [], "forget": [], "output": []}
unit_trace = {"input": [], "forget": [], "output": [], "memory": []}    # every unit, for the figure below
with torch.no_grad():
    for t in range(x_one.shape[1]):
        gates = cell_copy.gates(emb[:, t], state)
        for k in gate_trace:
            gate_trace[k].append(gates[k][0].mean().item())
            unit_trace[k].append(gates[k][0].cpu())
        state = cell_copy(emb[:, t], state)
        unit_trace["memory"].append(torch.tanh(state[1][0]).cpu())
steps = list(range(x_one.shape[1]))
plots.lines({f"{k} gate (mean over units)": (steps, v) for k, v in gate_trace.items()},
            xlabel="step (0 = the symbol, last = the cue)", ylabel="gate value", title="LSTM gates on one sequence");

# %% [markdown]
# The mean hides the individual units. Below, each row is one unit and each column one step of the same
# sequence; the slider switches between the three gates and the memory itself ($\tanh c_t$, which can be
# negative, hence a colour scale from −1 to 1; the gates live in its upper half). Rows are sorted by how wide
# each unit's input gate opens for the symbol. You may spot rows whose colour changes at the symbol and then
# lasts, and others that drift with every distractor. A picture of one sequence cannot say whether the symbol
# is really still in there, though; the measurement after it can.

# %%
order = torch.stack(unit_trace["input"])[0].argsort(descending=True)          # widest input gate at step 0 first
step_labels = [f"symbol {x_one[0, 0].item()}"] + [str(v) for v in x_one[0, 1:-1].tolist()] + ["cue"]
interactive.show(interactive.slider_heatmaps(
    {(k if k == "memory" else f"{k} gate"): torch.stack(v).T[order].numpy() for k, v in unit_trace.items()},
    x=step_labels, y=[f"unit {j}" for j in order.tolist()], zmin=-1, zmax=1, colorscale="RdBu",
    title="every unit of the LSTM, step by step", xlabel="step (token read)", ylabel="unit", slider_prefix="showing: "))

# %% [markdown]
# ### Is the symbol still on the belt? A linear probe
#
# Instead of guessing from colours, we *measure*. Take a trained model, feed it 2,000 sequences and record its
# memory after every token: the LSTM's cell state $c_t$, the RNN's hidden state $h_t$. At each step, fit a
# **linear probe** (a logistic regression, the simplest classifier there is) that tries to read the starting
# symbol out of that vector, and score it on 1,000 *other* sequences. If the probe is right far above 1/8 at step
# $t$, the symbol is still there at step $t$, in a form a single linear layer can read.
#
# Two checks keep the probe honest. **Shuffled labels:** the same probe fitted to the LSTM's cell states with
# the symbols randomly reassigned has nothing real to learn, so it must score at chance on the held-out
# sequences; if it did not, the probe would be memorising, not reading. **Untrained:** the tuned LSTM before
# any training, with its +5 forget bias already in place, tells us how much of the memory the start alone
# provides. Every model here is seed 0 of the second race, at T = the delay of that race.

# %%
probe_delay = recipe.arm_delay
probe_steps = sorted(set(range(0, probe_delay + 2, 5)) | {probe_delay, probe_delay + 1})
probed = {}
for arm in (TUNED, usual, RNN_DEFAULT, Arm("rnn", recurrent="identity")):
    state_name = "c_t" if arm.cell == "lstm" else "h_t"
    probed[f"{arm.label} ({state_name})"] = memory_probe(trained[arm, probe_delay, recipe.arm_seeds[0]][0],
                                                         probe_delay, probe_steps)
tuned_model = trained[TUNED, probe_delay, recipe.arm_seeds[0]][0]
probed["control: shuffled labels (tuned LSTM, c_t)"] = memory_probe(tuned_model, probe_delay, probe_steps,
                                                                    shuffle_labels=True)
torch.manual_seed(seed + recipe.arm_seeds[0])
untrained = make_recall_model(TUNED, recipe.lstm_hidden).to(device)
probed["untrained tuned LSTM (c_t)"] = memory_probe(untrained, probe_delay, probe_steps)
for label, accs in probed.items():
    print(f"{label:46s} " + " ".join(f"{a:.2f}" for a in accs))
plots.lines({label: (probe_steps, accs) for label, accs in probed.items()},
            xlabel=f"step (0 = the symbol, {probe_delay} = the last distractor, {probe_delay + 1} = the cue)",
            ylabel="probe accuracy on held-out sequences", title="can a linear probe read the symbol from the memory?",
            hline=(chance, "chance (1/8)"));

# %%
last = probe_steps.index(probe_delay)          # the last distractor: the symbol was read probe_delay steps ago
on_belt = probed[f"{TUNED.label} (c_t)"][last]
shuffled = probed["control: shuffled labels (tuned LSTM, c_t)"][last]
# Fails if the probe reads the symbol from the tuned LSTM's cell state at the last distractor step with less
# than 90% held-out accuracy, or if the shuffled-label control scores more than 5 points above chance (the
# probe would then be memorising its training sequences, not reading the memory). Required at lesson: shown on
# lesson seeds 0, 1 and 2 by a script that replays this section's training and probe at lesson settings
# (probe accuracy 1.00 at the last distractor on all three; shuffled control 0.15, 0.14, 0.14).
claims.check("cell_state_holds_the_symbol", on_belt >= 0.9 and shuffled <= chance + 0.05, required_at="lesson",
             delay=probe_delay, lstm_cell_at_last_step=on_belt, shuffled_control=shuffled,
             untrained_lstm=probed["untrained tuned LSTM (c_t)"][last],
             others={k: v[last] for k, v in probed.items()}, chance=chance, steps=probe_steps)

# %%
fade = {label: next((t for t, a in zip(probe_steps, accs) if a <= chance + 0.1), None) for label, accs in probed.items()}
display(Markdown(
    f"**Reading the probe** (this run, T = {probe_delay}). At the last distractor the probe reads the symbol from "
    f"the tuned LSTM's cell state with {on_belt:.0%} accuracy; with shuffled labels it scores {shuffled:.0%} "
    f"(chance is {chance:.1%}). " + " ".join(
        f"{label}: {accs[last]:.0%} at the last distractor"
        + (f", first within 10 points of chance at step {fade[label]}." if fade[label] is not None else ".")
        for label, accs in probed.items() if not label.startswith("control"))))

# %% [markdown]
# What the curves measure is *where the memory is*, step by step, for models whose only output is the answer
# at the cue. Compare each with its arm's accuracy in the second race: a model that answers well carries the
# symbol all the way, and a model at chance has lost it, often within a few steps of reading it. The untrained
# curve is worth a second look: it says how much of "remembering" a start with open forget gates gives for free,
# before any learning; training's job is then to write the symbol distinctly and to read it out at the cue.

# %% [markdown]
# ## 4. The gradient measurement from lesson 01, redone
#
# Now the head-to-head version of lesson 01's plot, on character-level language models trained on
# Shakespeare with the same budget and about the same number of parameters: an RNN with 256 hidden units and
# an LSTM with 128. We train both, then measure $\lVert \partial L_T / \partial x_{T-d} \rVert$ for each.

# %%
text = load_shakespeare()
tok = CharTokenizer.fit(text)
train_text, val_text = train_val_split(text)
train_ids, val_ids = torch.tensor(tok.encode(train_text)), torch.tensor(tok.encode(val_text))
lm_recipe = CharLMRecipe.preset(profile)
base = RecurrentConfig.preset(profile, vocab_size=len(tok))
lm_configs = {"RNN": RecurrentConfig(**{**base.to_dict(), "cell": "rnn"}),
              "LSTM": RecurrentConfig(**{**base.to_dict(), "cell": "lstm", "hidden": base.hidden // 2})}
lms, lm_histories = {}, {}
for label, cfg in lm_configs.items():
    torch.manual_seed(seed)
    lms[label] = CharLM(cfg)
    if cfg.cell == "lstm":
        set_forget_bias(lms[label].rnn.net, 1.0)
    print(f"{label}: hidden {cfg.hidden}, {count_parameters(lms[label]):,} parameters")
    trainer = Trainer(lms[label], lm_loss, batches_by_step(train_ids, lm_recipe.block, lm_recipe.batch, seed),
                      lm_recipe.train_config(), device=device, name=f"char-{label}",
                      eval_fn=lambda m: {"val_loss": evaluate_lm(m, val_ids, lm_recipe.block, batches=10)})
    lm_histories[label] = trainer.fit()
plots.loss_curves(lm_histories, title="char LMs at about the same parameter count");
val = {label: h.last_eval("val_loss") for label, h in lm_histories.items()}
print({k: round(v, 3) for k, v in val.items()}, "nats/char")

# %%
span = 60
x, y = window_batch(val_ids, span, 64, torch.Generator().manual_seed(seed))
x, y = x.to(device), y.to(device)
curves = {}
for label, lm in lms.items():
    cell = (RNNCell if lm.cfg.cell == "rnn" else LSTMCell)(lm.cfg.embed, lm.cfg.hidden).to(device)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(getattr(lm.rnn.net, f"{name}_l0"))
    curves[label] = gradient_by_distance(lm.embed, cell, lm.head, x,
                                         lambda logits: F.cross_entropy(logits, y[:, -1])).cpu()
distances = torch.arange(span).numpy()
plots.log_lines({label: (distances, g.numpy()) for label, g in curves.items()}, fit="exp",
                xlabel="distance d from the loss (steps)", ylabel="‖∂L/∂x‖ (log scale)",
                title="how far back the learning signal reaches");
at50 = {label: g[50].item() for label, g in curves.items()}
ratio = at50["LSTM"] / max(at50["RNN"], 1e-30)
print(f"gradient at distance 50: RNN {at50['RNN']:.2e}, LSTM {at50['LSTM']:.2e}  (LSTM/RNN = {ratio:.1f}x)")

# %%
claims.check("lstm_gradient_10x_larger_at_50", ratio >= 10, required_at="lesson",
             rnn_at_50=at50["RNN"], lstm_at_50=at50["LSTM"], ratio=ratio)
# Reported, not required: see the discussion below for why this one does not hold at CPU budgets.
claims.check("lstm_char_lm_beats_rnn", val["LSTM"] < val["RNN"], required_at="never",
             rnn_val=val["RNN"], lstm_val=val["LSTM"],
             rnn_params=count_parameters(lms["RNN"]), lstm_params=count_parameters(lms["LSTM"]),
             steps=lm_recipe.steps)

# %%
ahead, behind = sorted(val, key=val.get)
display(Markdown(
    ("**The char-LM race is closer than the textbooks suggest, and that is worth understanding.** " if ahead == "RNN"
     else "**The LSTM is ahead here, but look at the margin.** ")
    + f"On this run the {ahead} reaches {val[ahead]:.3f} nats per character and the {behind} {val[behind]:.3f}, a gap of "
    f"{val[behind] - val[ahead]:.3f} nats, at the same budget and about the same parameter count."))

# %% [markdown]
# Whichever way this run's gap goes, it does not contradict sections 2–4; it says what the LSTM buys.
# Most of a character's uncertainty is *local* (the rest of a word, the next space), and at equal parameter
# count the RNN spends its budget on twice as many hidden units, which is what local patterns need. The
# LSTM pays four weight matrices per unit for memory, which pays off only when long-range information
# matters (section 2) and after long training: the published comparisons where LSTMs win at equal size
# (Karpathy, Johnson & Fei-Fei, 2015) train for many epochs on larger corpora. So the claim is recorded
# here as measured, not required.

# %% [markdown]
# ### The same curve where distance is all that matters
#
# The char-LM curve above has the confound lesson 01 pointed out: a trained language model may have *learned*
# that distant characters rarely matter, so a falling curve mixes "the signal cannot travel back" with "the model
# stopped listening". The delayed-recall models of section 2 remove that doubt. There the symbol, $T + 1$ steps
# before the cue, is the only input that matters, so a model that answers well must be sensitive to it. We measure
# every model of the second race twice, at initialisation (the same weights it started training from) and after
# training, each at its delay $T$: for each input position, how much the *score of the right answer* (its logit
# minus the mean logit) moves when that input moves. Not the cross-entropy: a model that is sure of its answer has
# a cross-entropy near 0, and so a gradient near 0 at every distance, which would measure its confidence, not how
# far the signal reaches. The number we compare is the gradient at the symbol divided by the gradient at the cue.
#
# What the textbook story predicts, and what would prove it wrong: if the default RNN fails *because* its gradient
# vanishes, its signal at the symbol starts many powers of ten below the cue's, and the models still at chance
# after training still get almost nothing from the symbol, while the models that recall get a lot. A model at
# chance that gets as much signal from the symbol as one that recalls would break the story: the signal would
# arrive, and training would not use it.

# %%
reach = {}                       # (arm, run seed, "at initialisation" | "trained") -> gradient at symbol / at cue
example_curves = {}              # (arm, stage) -> the whole curve, for the first seed
for arm in ARMS:
    for s in recipe.arm_seeds:
        torch.manual_seed(seed + s)                  # train_recall's first line: the weights it started from
        start = make_recall_model(arm, recipe.lstm_hidden if arm.cell == "lstm" else recipe.rnn_hidden).to(device)
        for stage, m in (("at initialisation", start), ("trained", trained[arm, recipe.arm_delay, s][0])):
            g = recall_gradient_by_distance(m, recipe.arm_delay).cpu()
            reach[arm, s, stage] = (g[-1] / g[0]).item()
            if s == recipe.arm_seeds[0]:
                example_curves[arm, stage] = g.numpy()


def median_reach(arm, stage):
    return float(np.median([reach[arm, s, stage] for s in recipe.arm_seeds]))


for arm in ARMS:
    print(f"{arm.label:24s} gradient at the symbol / at the cue, median over seeds: at initialisation "
          f"{median_reach(arm, 'at initialisation'):8.1e}, trained {median_reach(arm, 'trained'):8.1e}  "
          f"(mean recall {arm_mean[arm]:.2f})")

fig, axes = plt.subplots(1, 3, figsize=(15, 4))
dist = np.arange(recipe.arm_delay + 2)
for ax, stage in zip(axes[:2], ("at initialisation", "trained")):
    for i, arm in enumerate(ARMS):
        ax.plot(dist, np.maximum(example_curves[arm, stage], 1e-300), "-", color=f"C{i}", lw=1.3, label=arm.label)
    ax.axvline(recipe.arm_delay + 1, color="gray", ls=":", lw=1)
    ax.set(yscale="log", xlabel=f"distance from the cue (steps; {recipe.arm_delay + 1} = the symbol)",
           ylabel="‖∂ score / ∂ input‖ (log scale)", title=f"{stage}, seed {recipe.arm_seeds[0]}")
axes[0].legend(fontsize=8)
for i, arm in enumerate(ARMS):
    axes[2].plot([max(reach[arm, s, "trained"], 1e-300) for s in recipe.arm_seeds],
                 [acc for acc in arm_acc[arm]], "o", color=f"C{i}", alpha=0.75, label=arm.label)
axes[2].axhline(chance, color="gray", ls="--", lw=1)
axes[2].set(xscale="log", xlabel="trained: gradient at the symbol / at the cue", ylabel="recall accuracy",
            title=f"every model of the second race (T = {recipe.arm_delay})")
fig.tight_layout()
plt.show()

# %%
models = [(arm, s, acc) for arm in ARMS for s, acc in zip(recipe.arm_seeds, arm_acc[arm])]
recalls = [reach[arm, s, "trained"] for arm, s, acc in models if acc >= 0.9]
forgets = [reach[arm, s, "trained"] for arm, s, acc in models if acc <= chance + 0.1]
recall_median = float(np.median(recalls)) if recalls else None
forget_median = float(np.median(forgets)) if forgets else None
separates = bool(recalls and forgets and forget_median * 100 <= recall_median)
# Reported. Fails if no trained model of the second race recalls (>= 90%) or none is near chance (<= chance + 10
# points), or if the median model near chance gets at least a hundredth of the signal from the symbol (gradient
# at the symbol / at the cue) that the median recalling model gets: then the signal reaches the symbol and
# training does not use it, and the vanishing gradient does not explain those failures.
claims.check("forgetting_models_get_no_gradient_from_the_symbol", separates, required_at="never",
             delay=recipe.arm_delay, recall_median=recall_median, forget_median=forget_median,
             recall_range=(min(recalls), max(recalls)) if recalls else None,
             n_recall=len(recalls), n_forget=len(forgets),
             median_at_initialisation={a.label: median_reach(a, "at initialisation") for a in ARMS},
             median_trained={a.label: median_reach(a, "trained") for a in ARMS},
             per_model={f"{a.label} seed {s}": (acc, reach[a, s, "at initialisation"], reach[a, s, "trained"])
                        for a, s, acc in models})

# %%
good_arms = [a for a in ARMS if arm_mean[a] >= 0.9]
bad_arms = [a for a in ARMS if arm_mean[a] < 0.5]
start_orders = bool(good_arms and bad_arms) and (
    min(median_reach(a, "at initialisation") for a in good_arms)
    > max(median_reach(a, "at initialisation") for a in bad_arms))
text = [f"**Reading the gradients** (this run, T = {recipe.arm_delay}, {len(recipe.arm_seeds)} seeds per arm). "]
if recalls and forgets:
    text.append(f"The trained models that recall ({len(recalls)} of {len(models)}) get between {min(recalls):.1e} and "
                f"{max(recalls):.1e} of the cue's gradient from the symbol (median {recall_median:.1e}); the median "
                f"model near chance ({len(forgets)} of them) gets {forget_median:.1e}. ")
    text.append("So in the models that fail, the learning signal still dies out before the one input that matters. "
                "On its own that could also be a model that never learned to listen (a model at chance does not use "
                "the symbol, whatever the reason); the measurement at initialisation, before any learning, separates "
                "the two."
                if separates else
                "That is not a hundredfold gap between the medians: many models that fail do get a signal from the "
                "symbol, so their failure is not the vanishing gradient alone; this run does not support the "
                "textbook story.")
    odd = [(a, s, acc) for a, s, acc in models
           if acc <= chance + 0.1 and reach[a, s, "trained"] > 100 * forget_median]
    if odd:
        text.append(" Not every model near chance fits that median, though (more than a hundred times it): " + "; ".join(
            f"{a.label} seed {s} scores {acc:.0%} and gets {reach[a, s, 'trained']:.1e} of the cue's gradient from "
            "the symbol" for a, s, acc in odd) + ". A model can stay at (or below) chance with the signal arriving; "
                    "the claim rests on the median, and the dots on the right show each model.")
    quiet = [(a, s, acc) for a, s, acc in models if acc >= 0.9 and reach[a, s, "trained"] < 100 * forget_median]
    if quiet:
        text.append(" And some models recall with little signal from the symbol: " + "; ".join(
            f"{a.label} seed {s} ({acc:.0%}, {reach[a, s, 'trained']:.1e})" for a, s, acc in quiet)
            + ". Perhaps their memory sits in saturated units (a latch), which barely move when the input is nudged.")
else:
    text.append("This run has no model that recalls, or none at chance, so it cannot compare the two.")
if good_arms and bad_arms:
    text.append(f" At initialisation, the arms that end up recalling ({'; '.join(a.label for a in good_arms)}) "
                + ("all start with more signal at the symbol than the arms whose mean stays below 50% "
                   f"({'; '.join(a.label for a in bad_arms)}): the start predicts the finish. The arms that fail got "
                   f"at most {max(median_reach(a, 'at initialisation') for a in bad_arms):.0e} of the cue's signal "
                   "from the symbol before training took a single step, so gradient descent had (almost) nothing to "
                   "learn the memory from: that is the vanishing gradient at work, not a lesson the model learned."
                   if start_orders else
                   f"do not all start with more signal at the symbol than the arms whose mean stays below 50% "
                   f"({'; '.join(a.label for a in bad_arms)}): on this run the start does not predict the finish."))
irnn = Arm("rnn", recurrent="identity")
if median_reach(irnn, "trained") > 1:
    text.append(f" One more thing the figure shows: the trained IRNN's signal *grows* on the way back (a median "
                f"{median_reach(irnn, 'trained'):.0e} of the cue's at the symbol). Its recurrent path now amplifies, "
                "lesson 01's exploding side, and it still recalls: what matters for learning is that the signal "
                "arrives, not that it keeps its size.")
display(Markdown("".join(text)))

# %% [markdown]
# ## 5. What still breaks
#
# The LSTM gave recurrent networks a memory path they can control over time, but two problems remain, and the next three lessons are about them.
#
# 1. **One vector carries everything.** To translate a sentence, an encoder LSTM must squeeze the whole
#    source sentence into its final state, a fixed-size vector, before the decoder writes a word. Long
#    sentences do not fit. Lesson 03 measures that bottleneck; lesson 04 (attention) removes it.
# 2. **One step at a time.** Step $t$ needs step $t-1$'s state, so a 100-token sentence is 100 sequential
#    steps however many processors we have. Lesson 05 (the Transformer) drops recurrence to train in parallel.

# %% [markdown]
# ## Exercises
#
# **Exercise 1 (2 points): predict, then measure. How long does the belt hold a memory?** The forget gate's
# bias sets where the gate rests: $f = \sigma(b)$, so bias 0 gives $f = 0.5$, bias +1 (the usual default, and
# section 4's language models) gives $f \approx 0.73$, and bias +5 (section 2's recall task) gives
# $f \approx 0.993$. At every step the belt multiplies the memory by $f$. A gate of 0.73 sounds like "keeps most
# of it". Does it, over 50 steps? This matters twice: the fraction of a memory that survives is what the model
# can still use 50 steps later, and the same multiplication carries the gradient back along the belt, so it is
# also how much a mistake at step 50 can teach the step that wrote the memory.
#
# 1. *Predict first.* Before you run anything, write down the fraction of the cell state you expect to be left
#    on the belt after 50 steps, for each bias: `predicted_survival = {0: ..., 1: ..., 5: ...}`. Work it out
#    or guess; only that each value is a number between 0 and 1 is graded. The point is to commit to a number
#    before the measurement can sway you.
# 2. *Then measure.* Write `measure_survival(forget_bias, steps=50)`. Build a fresh cell the size of section
#    2's: `torch.manual_seed(seed)`, then `LSTMCell(16, recipe.lstm_hidden, forget_bias=forget_bias)`. Run it
#    for `steps` steps on zero input (a batch of one: `torch.zeros(1, 16)`), starting from $h = 0$ and a cell
#    state of all ones. The update $c_t = f_t \odot c_{t-1} + i_t \odot g_t$ has two parts: the first is the old
#    memory, the second is new writing. To follow only the old memory, keep a tensor `kept` that starts at all
#    ones and is multiplied at every step by the forget gate the cell computes, `cell.gates(x, state)["forget"]`,
#    read *before* the step `state = cell(x, state)`. Return the median of `kept` over the units (`.median()`):
#    each unit starts with a slightly different bias, and a mean would be dominated by the few that keep the most.
#
# The cell prints your predictions next to your measurements. (Memory can also leak along a second road, through
# $h$ and the recurrent weights; this exercise follows only the belt, the road the LSTM was built around.)

# %% nbgrader={"grade": false, "grade_id": "ex1_predict_measure", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
predicted_survival = {b: (1 / (1 + math.exp(-b))) ** 50 for b in (0, 1, 5)}     # f^50, with f = sigmoid(bias)


def measure_survival(forget_bias, steps=50):
    torch.manual_seed(seed)
    cell = LSTMCell(16, recipe.lstm_hidden, forget_bias=forget_bias).to(device)
    x = torch.zeros(1, 16, device=device)
    h, c = cell.initial_state(1, device)
    state, kept = (h, torch.ones_like(c)), torch.ones_like(c)
    with torch.no_grad():
        for _ in range(steps):
            kept = kept * cell.gates(x, state)["forget"]
            state = cell(x, state)
    return kept.median().item()
### END SOLUTION


for bias, guess in predicted_survival.items():
    print(f"forget bias {bias:+g} (f = {1 / (1 + math.exp(-bias)):.3f}): you predicted {guess:.2g} of the memory "
          f"survives 50 steps; measured {measure_survival(bias):.2g} (the median unit)")

# %% nbgrader={"grade": true, "grade_id": "ex1_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
assert isinstance(predicted_survival, dict) and set(predicted_survival) == {0, 1, 5}, "predict biases 0, 1 and 5"
assert all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in predicted_survival.values()), \
    "a surviving fraction is a number between 0 and 1; write your guess down before you measure"
assert 0.5 < measure_survival(5) < 0.9
### BEGIN HIDDEN TESTS
def _reference_middle(forget_bias, steps=50):
    """The two middle units' surviving fractions, from the weights by hand in float64 (not cell.gates or cell())."""
    torch.manual_seed(seed)
    cell = LSTMCell(16, recipe.lstm_hidden, forget_bias=forget_bias)
    w_hh, bias = cell.weight_hh.detach().double(), (cell.bias_ih + cell.bias_hh).detach().double()
    n = recipe.lstm_hidden
    h = torch.zeros(n, dtype=torch.float64)
    c, kept = torch.ones_like(h), torch.ones_like(h)
    for _ in range(steps):
        z = w_hh @ h + bias                                     # the input is zero: W_ih x drops out
        i, f, o = torch.sigmoid(z[:n]), torch.sigmoid(z[n:2 * n]), torch.sigmoid(z[3 * n:])
        g = torch.tanh(z[2 * n:3 * n])
        kept, c = kept * f, f * c + i * g
        h = o * torch.tanh(c)
    ordered = kept.sort().values
    return ordered[(n - 1) // 2].item(), ordered[n // 2].item()


for _bias in (0, 1, 5):
    _low, _high = _reference_middle(_bias)
    _m = float(measure_survival(_bias))
    assert 0.95 * _low <= _m <= 1.05 * _high, (_bias, _m, _low, _high)   # numpy's or torch's median both pass
assert measure_survival(0) < 1e-10 and 1e-10 < measure_survival(1) < 1e-4      # sanity range at every profile
assert abs(float(measure_survival(5, steps=1)) - 1 / (1 + math.exp(-5))) < 0.01
### END HIDDEN TESTS

# %% [markdown]
# **Reading your result.** At bias +5 the measurement should land close to $f^{50}$. At biases 0 and +1 both
# numbers are tiny, and they may still differ by a factor of several: each unit's gate rests at $\sigma$ of the bias
# plus that unit's own small random starting bias, and raised to the 50th power, a small difference in $f$ becomes
# a large one. What matters is the size. A forget gate of 0.73 leaves less than a millionth of a memory after 50
# steps; only a gate within about a percent of 1 keeps most of it. That is why section 2 starts its forget gates at
# +5 for delays of up to a hundred steps.

# %% [markdown]
# **Exercise 2 (2 points).** The belt's arithmetic, both ways. With the input gate shut and the forget gate fixed
# at `f`, what fraction of the cell state survives `n` steps? (Exercise 1's prediction, as a function.) Then:
# which forget-gate value keeps at least half of the memory for `n` steps? (Return the smallest such `f`.)

# %% nbgrader={"grade": false, "grade_id": "ex2_belt", "locked": false, "schema_version": 3, "solution": true}
def surviving_fraction(f, n):
    ### BEGIN SOLUTION
    return f ** n
    ### END SOLUTION


def forget_gate_for_half_life(n):
    ### BEGIN SOLUTION
    return 0.5 ** (1 / n)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex2_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
assert abs(surviving_fraction(0.5, 2) - 0.25) < 1e-12
### BEGIN HIDDEN TESTS
assert abs(surviving_fraction(0.99, 100) - 0.99 ** 100) < 1e-12
for _n in (1, 10, 100):
    _f = forget_gate_for_half_life(_n)
    assert abs(_f ** _n - 0.5) < 1e-9 and 0 < _f < 1
_c = torch.ones(1, 1)
for _ in range(10):
    _c = torch.tensor(forget_gate_for_half_life(10)) * _c
assert abs(_c.item() - 0.5) < 1e-5
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (2 points).** Count an LSTM's parameters without building it: one layer, input size `i`,
# hidden size `h`, with PyTorch's two bias vectors. (Why is it about four times an RNN's?)

# %% nbgrader={"grade": false, "grade_id": "ex3_params", "locked": false, "schema_version": 3, "solution": true}
def lstm_parameter_count(i, h):
    ### BEGIN SOLUTION
    return 4 * (h * i + h * h + 2 * h)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex3_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
assert lstm_parameter_count(1, 1) == 16
### BEGIN HIDDEN TESTS
for _i, _hs in [(3, 5), (16, 64), (128, 7)]:
    assert lstm_parameter_count(_i, _hs) == sum(p.numel() for p in nn.LSTM(_i, _hs).parameters())
### END HIDDEN TESTS
