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
# # 05 · The Transformer: attention is all you need
#
# | ~1986–2010 | 1997 → 2010s | 2014 | 2015 | 2017 | 2018+ | 2022 |
# |---|---|---|---|---|---|---|
# | RNN | LSTM | Seq2Seq | Attention | **Transformer ← you are here** | GPT / BERT | RLHF |
#
# Lesson 04 gave the decoder a way to look back at every source word instead of squinting at one summary
# vector, and translation of long sentences improved. But the model was still *recurrent*: to compute
# position 10 it must first compute positions 1 to 9, one after another. However many processor cores you
# own, a 30-word sentence is 30 sequential steps. In 2017 Vaswani and colleagues asked a blunt question: if
# attention is doing the useful work, why keep the recurrence at all?
#
# **What.** A Transformer is a stack of layers that each do two things: **self-attention** (every token
# gathers information from every other token of the same sentence) and a small **feed-forward network**
# applied to each position on its own. Each of those sits inside a **residual connection** with a
# **LayerNorm**. An encoder stack reads the source; a decoder stack writes the translation, with one extra
# attention, **cross-attention**, that looks at the encoder's output (lesson 04's idea, now in dot-product
# form). Nothing is recurrent.
#
# **Why.** Three reasons. (1) *Direct paths*: any two words are one attention step apart, whatever the
# distance between them, so "it" can find "the animal" ten words back without passing the message through
# ten hidden states. (2) *Parallel training*: with the whole target sentence known (teacher forcing), every
# position of every layer is computed at once, as a few large matrix multiplications, exactly what GPUs (and
# even our two CPU cores) are good at. (3) *It scales*: more layers and wider layers keep paying off (Kaplan et
# al. 2020 measured it; lesson 06 reproduces the shape in miniature), which is the road to GPT and BERT.
#
# **How.** Each token turns its vector into three: a **query** ("what am I looking for?"), a **key** ("what
# do I offer?") and a **value** ("what I will hand over if chosen"). A token's score for another token is
# the dot product of its query with that token's key, divided by $\sqrt{d_k}$ ($d_k$ is the width of one
# head's queries and keys, not the model's full width); a softmax turns the scores into weights that sum to
# one; the output is the weighted average of the values:
#
# $$\text{Attention}(Q, K, V) = \operatorname{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V .$$
#
# **Multi-head** attention runs several of these side by side on smaller slices, so that different heads can
# look for different things: one the word before, another the verb's subject (section 9 measures whether
# they do). Because the formula never looks at *where* a token is, we add a
# **positional encoding** to each token's embedding. And a **mask** says who may look at whom: nobody looks at
# padding, and while writing a translation, no word may look at the words after it.
#
# **When.** Since 2017 Transformers have replaced recurrent networks almost everywhere in language (and
# then in vision, speech and protein folding). RNNs keep a niche where memory is tight and sequences are
# endless, because attention's cost grows with the *square* of the length; section 11 measures that.
#
# **An analogy.** A recurrent network is a relay of messengers: each one hears the message from the one
# before, adds a little, and runs on; nobody can start before the previous runner arrives, and details fade
# along the way. A Transformer layer is a round-table meeting. Everyone at the table writes a question on a
# card (query) and wears a badge saying what they know (key). Each person reads every badge, decides whose
# notes (values) answer their question best, and updates their own notes from them, all at the same moment.
# Several parallel conversations on different topics are the heads; another round of the meeting is the next
# layer; the seat numbers are the positional encoding (without them, the table cannot tell who spoke first).
#
# **How this lesson is laid out.** It is long, so it comes in two parts; read Part A in one sitting and
# Part B in another if you like.
#
# | part | sections | what you do | what you can skip on a first read |
# |---|---|---|---|
# | **A · Build** | 1–5 | write attention, masks, multi-head attention, positions and the layers, each checked against PyTorch's own module | the gradient comparison of pre- and post-norm at the end of 5 |
# | **B · Prove** | 6–12 | train it beside lesson 04's attention GRU at equal steps, then measure parallel training, what the heads look at, why positions are needed, and the price of the square | the timing code of section 7 (the count of sequential steps beside it is the proof) |
#
# Part A ends with a Transformer you built and verified; nothing in it needs a trained model. Part B is where
# the course's habit of proving each claim with a measured experiment, and a control, takes over.

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
import copy
import json
import math
import random
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from IPython.display import Markdown, display

from course_lib.core import (Trainer, count_parameters, diagrams, interactive, make_optimizer, paths, plots, runtime,
                             to_device)
from course_lib.harness.benchmarks.attention import COST_LENGTHS, measure
from course_lib.harness.lesson import Lesson
from course_lib.recipes import Seq2SeqRecipe, TransformerRecipe
from course_lib.transformer import (DecoderLayer, EncoderLayer, MultiHeadAttention, Transformer, TransformerConfig,
                                    as_torch_attention, as_torch_layer, attention_entropy, causal_mask, head_roles,
                                    padding_mask, record_attention, scaled_dot_product_attention,
                                    sinusoidal_encoding)
from course_lib.translation import (Seq2Seq, Seq2SeqConfig, TranslationConfig, TranslationData, mean_loss,
                                    seq2seq_loss)

lesson = Lesson("05_transformer", profile, seed)
device, claims = lesson.device, lesson.claims

# %% [markdown]
# # Part A · Build a Transformer
#
# Sections 1–5: from one attention weight, computed by hand, to the encoder and decoder layers.

# %% [markdown]
# ## 1. Scaled dot-product attention, written out
#
# A handful of lines. `q` holds one query per row, `k` and `v` one key and one value per row; any leading
# dimensions (batch, heads) just come along. The mask is boolean, **True where a query may look**.

# %%
def attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])   # (.., queries, keys): every pair at once
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))      # exp(-inf) = 0: hidden keys get no weight
    weights = scores.softmax(dim=-1)                            # each row sums to one
    return weights @ v, weights


# %% [markdown]
# First with numbers you can follow by hand: three tokens, two dimensions. Token 0's query points the same way
# as token 2's key, so token 0 should take most of its output from token 2's value.

# %%
q_toy = torch.tensor([[1.0, 0.0]])                       # token 0 asks: "who points along the first axis?"
k_toy = torch.tensor([[0.0, 1.0], [0.5, 0.5], [2.0, 0.0]])
v_toy = torch.tensor([[10.0, 0.0], [0.0, 10.0], [5.0, 5.0]])
out_toy, w_toy = attention(q_toy, k_toy, v_toy)
print("scores q·k / √2:", [round(x, 3) for x in (q_toy @ k_toy.T / math.sqrt(2))[0].tolist()])
print("weights (softmax):", [round(x, 3) for x in w_toy[0].tolist()], "-> output", [round(x, 2) for x in out_toy[0].tolist()])

# %% [markdown]
# **Why divide by $\sqrt{d_k}$?** A dot product of two random $d_k$-dimensional vectors has a spread of about
# $\sqrt{d_k}$. With $d_k = 256$, raw scores differ by tens, and the softmax of such numbers puts nearly all the
# weight on one key: the attention becomes a hard lookup whose gradient is almost zero everywhere else.
# Dividing by $\sqrt{d_k}$ brings the spread back to about 1.

# %%
g = torch.Generator().manual_seed(seed)
q_demo, k_demo = torch.randn(1, 256, generator=g), torch.randn(10, 256, generator=g)
raw = (q_demo @ k_demo.T).softmax(-1)
scaled = (q_demo @ k_demo.T / math.sqrt(256)).softmax(-1)
print(f"largest of 10 weights without scaling: {raw.max():.3f}   with 1/sqrt(d): {scaled.max():.3f}")

# %% [markdown]
# Now the check that matters: our lines against `course_lib`'s version (which the rest of the course
# uses) and against PyTorch's own fused kernel `F.scaled_dot_product_attention`, with a causal mask.

# %%
q, k, v = (torch.randn(2, 4, 7, 16, generator=g) for _ in range(3))
mask = causal_mask(7)
ours, _ = attention(q, k, v, mask)
gap_lib = (ours - scaled_dot_product_attention(q, k, v, mask)[0]).abs().max().item()
gap_sdpa = (ours - F.scaled_dot_product_attention(q, k, v, attn_mask=mask)).abs().max().item()
print(f"max |difference|: vs course_lib {gap_lib:.1e}, vs F.scaled_dot_product_attention {gap_sdpa:.1e}")
claims.check("attention_matches_sdpa", max(gap_lib, gap_sdpa) <= 1e-5, required_at="always",
             gap_course_lib=gap_lib, gap_sdpa=gap_sdpa);

# %% [markdown]
# ## 2. Masks: who may look at whom
#
# Two masks, both built in one place (`course_lib.transformer.attention`) so that GPT and BERT reuse them:
#
# * **padding**: sentences in a batch have different lengths, so short ones are filled with `<pad>`. Nobody
#   should attend to padding. `padding_mask(tokens, pad_id)` is True at real tokens, shaped
#   (batch, 1, 1, keys) so it applies to every head and every query.
# * **causal**: while writing a translation, position $i$ may only look at positions $\le i$; otherwise,
#   during training, it could simply copy the next word from the answer it is being taught. It is a
#   lower-triangular matrix.

# %%
tokens_demo = torch.tensor([[5, 6, 7, 8, 9, 3], [5, 6, 3, 0, 0, 0]])        # 0 = <pad>, 3 = <eos>
fig, axes = plt.subplots(1, 2, figsize=(8, 3))
plots.heatmap(padding_mask(tokens_demo, 0)[1, 0].expand(6, 6).float(), ax=axes[0], show=False, colorbar=False,
              title="padding mask (a 3-token sentence)", xlabel="key", ylabel="query")
plots.heatmap(causal_mask(6).float(), ax=axes[1], show=False, colorbar=False, title="causal mask",
              xlabel="key", ylabel="query")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Multi-head attention
#
# One attention can only produce one weighted average per token. Multi-head attention first projects each
# token into queries, keys and values with learned matrices, splits those vectors into `n_heads` slices,
# runs attention on every slice independently (in parallel: the heads are just one more batch dimension),
# puts the slices side by side again and mixes them with one more matrix. Here it is, written out with the
# weights of a `course_lib` module, then compared with that module and with PyTorch's `nn.MultiheadAttention`
# holding the same weights.

# %%
def multi_head(x, mha, mask=None):
    B, L, D = x.shape
    split = lambda t: t.view(B, L, mha.n_heads, D // mha.n_heads).transpose(1, 2)   # (B, heads, L, D/heads)
    out, _ = attention(split(mha.q_proj(x)), split(mha.k_proj(x)), split(mha.v_proj(x)), mask)
    return mha.out_proj(out.transpose(1, 2).reshape(B, L, D))                       # heads side by side, mixed


torch.manual_seed(seed)
mha = MultiHeadAttention(d_model=32, n_heads=4).eval()
x_demo = torch.randn(2, 6, 32, generator=g)
with torch.no_grad():
    mine = multi_head(x_demo, mha, padding_mask(tokens_demo, 0))
    lib = mha(x_demo, mask=padding_mask(tokens_demo, 0))
    torch_out, _ = as_torch_attention(mha).eval()(x_demo, x_demo, x_demo, key_padding_mask=tokens_demo == 0)
gaps = {"course_lib": (mine - lib).abs().max().item(), "nn.MultiheadAttention": (mine - torch_out).abs().max().item()}
print({k_: f"{v_:.1e}" for k_, v_ in gaps.items()}, "(PyTorch's key_padding_mask is True at *padding*)")
claims.check("multi_head_matches_pytorch", max(gaps.values()) <= 1e-5, required_at="always",
             gap_course_lib=gaps["course_lib"], gap_torch=gaps["nn.MultiheadAttention"]);

# %% [markdown]
# ## 4. Where is each word? Sinusoidal positions
#
# Shuffle the words of a sentence and attention produces the same outputs, shuffled the same way: it sees a
# *set* of tokens, not a sequence. (Section 10 proves this exactly.) The fix of the original paper is to add to
# each token's embedding a fixed vector that depends only on its position $p$:
#
# $$PE_{p,\,2i} = \sin\!\big(p / 10000^{2i/d}\big), \qquad PE_{p,\,2i+1} = \cos\!\big(p / 10000^{2i/d}\big).$$
#
# Think of each pair of dimensions as a clock hand turning at its own speed: the first pair spins once every
# $2\pi \approx 6$ positions, the last one barely moves over thousands. Read together, the hands give every
# position a unique time stamp, and moving $k$ positions along is the same rotation wherever you start, so
# "two words apart" looks the same at the beginning and at the end of a sentence (exercise 2 shows it).

# %%
def positions(max_len, d):
    angle = torch.arange(max_len)[:, None] / 10000 ** (torch.arange(0, d, 2) / d)
    pe = torch.zeros(max_len, d)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(angle), torch.cos(angle)
    return pe


pe = positions(60, 64)
print(f"max |difference| vs course_lib.transformer.model.sinusoidal_encoding: "
      f"{(pe - sinusoidal_encoding(60, 64)).abs().max().item():.1e}")
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
plots.heatmap(pe.T, ax=axes[0], show=False, title="PE: dimension (rows) by position (columns)",
              xlabel="position", ylabel="dimension", cmap="RdBu")
plots.heatmap(pe @ pe.T, ax=axes[1], show=False, title="PE[p] · PE[q]: depends on |p - q| only",
              xlabel="position q", ylabel="position p")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 5. The layers: residual connections, LayerNorm, feed-forward
#
# The picture first: an encoder layer and a decoder layer, pre-norm, with the two residual roads drawn as the
# straight vertical line each sublayer adds its correction to. The masks apply inside the attention boxes: the
# padding mask everywhere, the causal mask only in the decoder's self-attention.

# %% tags=["hide-input"]
nodes = {
    "ein": (0, 0, "source embeddings + positions"), "eln1": (-1.4, 1.1, "LayerNorm"),
    "eatt": (-1.4, 2.1, "self-attention\n(padding mask)", "#4C72B0"), "eadd1": (0, 2.1, "+", "op"),
    "eln2": (-1.4, 3.1, "LayerNorm"), "eff": (-1.4, 4.1, "feed-forward", "#55A868"), "eadd2": (0, 4.1, "+", "op"),
    "eout": (0, 5.2, "encoder output (× N layers)"),
    "din": (6, 0, "target embeddings + positions"), "dln1": (4.6, 1.1, "LayerNorm"),
    "datt": (4.6, 2.1, "masked self-attention\n(causal + padding)", "#8172B3"), "dadd1": (6, 2.1, "+", "op"),
    "dln2": (4.6, 3.1, "LayerNorm"), "dx": (4.6, 4.1, "cross-attention\nq: decoder, k,v: encoder", "#DD8452"),
    "dadd2": (6, 4.1, "+", "op"), "dln3": (4.6, 5.1, "LayerNorm"), "dff": (4.6, 6.1, "feed-forward", "#55A868"),
    "dadd3": (6, 6.1, "+", "op"), "dec_out": (6, 7.2, "next-token scores"),
}
edges = [("ein", "eadd1"), ("ein", "eln1"), ("eln1", "eatt"), ("eatt", "eadd1"), ("eadd1", "eadd2"),
         ("eadd1", "eln2"), ("eln2", "eff"), ("eff", "eadd2"), ("eadd2", "eout"),
         ("din", "dadd1"), ("din", "dln1"), ("dln1", "datt"), ("datt", "dadd1"), ("dadd1", "dadd2"), ("dadd1", "dln2"),
         ("dln2", "dx"), ("dx", "dadd2"), ("eout", "dx", "keys, values", -0.1), ("dadd2", "dadd3"), ("dadd2", "dln3"),
         ("dln3", "dff"), ("dff", "dadd3"), ("dadd3", "dec_out")]
diagrams.graph(nodes, edges, size=(10, 7.5), title="pre-norm Transformer layers: encoder (left), decoder (right)");

# %% [markdown]
# An encoder layer is self-attention then the feed-forward network, each wrapped as
# `x = x + sublayer(LayerNorm(x))`. The `x +` is the residual connection: the layer only has to learn a
# *correction* to its input, and gradients have a straight road back to the first layers (the LSTM's
# conveyor belt from lesson 02, in a new place). A decoder layer has three sublayers: *masked* self-attention
# over the translation so far, cross-attention to the encoder's output, and the feed-forward network.
#
# **LayerNorm**, defined: for each token's vector $x$ (one position, all $d$ features), subtract the mean $\mu$
# of its features, divide by their standard deviation $\sigma$, then scale and shift with two learned vectors:
# $\mathrm{LN}(x) = \gamma \odot (x - \mu)/\sqrt{\sigma^2 + \epsilon} + \beta$. Every position is normalised on
# its own (unlike batch norm, nothing is shared across the batch), so each sublayer sees inputs of a steady
# scale however large the residual stream has grown.

# %%
x_ln = torch.tensor([[2.0, 4.0, 6.0, 8.0], [100.0, 101.0, 102.0, 103.0]])
mu, var = x_ln.mean(-1, keepdim=True), x_ln.var(-1, unbiased=False, keepdim=True)
by_hand = (x_ln - mu) / torch.sqrt(var + 1e-5)                  # gamma = 1, beta = 0 at initialisation
rounded = lambda t: [[round(v, 3) for v in row] for row in t.tolist()]
print("by hand:     ", rounded(by_hand))
print("nn.LayerNorm:", rounded(torch.nn.LayerNorm(4)(x_ln).detach()))

# %% [markdown]
# Two very different rows come out the same: only the *pattern* across features survives, not the scale.
#
# Written out with the weights of a `course_lib` layer, and checked against the layer itself and against
# PyTorch's `nn.TransformerEncoderLayer` / `nn.TransformerDecoderLayer` holding the same weights:

# %%
def my_encoder_layer(x, layer, mask=None):          # pre-norm
    x = x + multi_head(layer.attn_block.norm(x), layer.self_attn, mask)
    return x + layer.ff.linear2(F.relu(layer.ff.linear1(layer.ff_block.norm(x))))


torch.manual_seed(seed)
layer_gaps = {}
with torch.no_grad():
    enc = EncoderLayer(32, 4, 64, dropout=0.0).eval()
    key_real = padding_mask(tokens_demo, 0)
    layer_gaps["written-out vs course_lib encoder"] = (my_encoder_layer(x_demo, enc, key_real)
                                                      - enc(x_demo, key_real)).abs().max().item()
    memory_demo = torch.randn(2, 6, 32, generator=g)
    for norm_first in (True, False):
        name = "pre-norm" if norm_first else "post-norm"
        enc = EncoderLayer(32, 4, 64, dropout=0.0, norm_first=norm_first).eval()
        ref = as_torch_layer(enc).eval()(x_demo, src_key_padding_mask=tokens_demo == 0)
        layer_gaps[f"encoder {name} vs PyTorch"] = (enc(x_demo, key_real) - ref)[tokens_demo != 0].abs().max().item()
        dec = DecoderLayer(32, 4, 64, dropout=0.0, norm_first=norm_first).eval()
        ref = as_torch_layer(dec).eval()(x_demo, memory_demo, tgt_mask=~causal_mask(6),
                                         memory_key_padding_mask=tokens_demo == 0)
        layer_gaps[f"decoder {name} vs PyTorch"] = (dec(x_demo, memory_demo, key_real) - ref).abs().max().item()
for name, gap in layer_gaps.items():
    print(f"{name:36s} max |difference| {gap:.1e}")
claims.check("layers_match_pytorch", max(layer_gaps.values()) <= 1e-5, required_at="always",
             worst_gap=max(layer_gaps.values()));

# %% [markdown]
# (The encoder comparison skips padded positions: in evaluation mode PyTorch's fused encoder path may write
# zeros there, and nothing ever reads them.)
#
# **Pre-norm or post-norm?** The 2017 paper normalised *after* adding the residual, `x = LN(x + sublayer(x))`
# (post-norm). Most models since GPT-2 normalise *before* the sublayer (pre-norm, our default; both are in
# `course_lib`). The difference shows in what flows along the residual road. In post-norm every layer's
# output is squeezed back to unit scale, so a layer's contribution and the signal from below are mixed and
# renormalised at every step; deep post-norm stacks are known to need a careful learning-rate warm-up to
# train at all. In pre-norm the road is never normalised: each layer adds its correction on top, the
# stream grows, and gradients reach the bottom layers through plain additions. Here is the size of the
# residual stream after each layer of a freshly initialised 6-layer encoder:

# %%
def residual_scale(norm_first):
    torch.manual_seed(seed)
    model = Transformer(TransformerConfig(src_vocab=100, tgt_vocab=100, d_model=64, n_heads=4, encoder_layers=6,
                                          d_ff=256, dropout=0.0, norm_first=norm_first)).eval()
    src = torch.randint(4, 100, (8, 12), generator=torch.Generator().manual_seed(seed))
    x, scales = model.embed(src, model.src_embed), []
    with torch.no_grad():
        for layer in model.encoder:
            x = layer(x)
            scales.append(x.pow(2).mean().sqrt().item())
    return scales


plots.lines({"pre-norm": (range(1, 7), residual_scale(True)), "post-norm": (range(1, 7), residual_scale(False))},
            xlabel="encoder layer", ylabel="RMS of the residual stream", title="what each arrangement keeps");

# %% [markdown]
# That is what flows *forward*. Whether a deep stack can be trained depends on what flows *backward*: the
# gradient that each layer's weights receive. Xiong and colleagues ("On Layer Normalization in the Transformer
# Architecture", 2020) measured it at initialisation. In post-norm, every LayerNorm on the way back divides the
# gradient by the size of what it normalised (the stream *plus* the sublayer's contribution, more than the stream
# alone), so the gradient is largest at the layers next to the output and shrinks layer after layer toward the
# input. In pre-norm the residual additions hand it back unchanged, and every layer gets about the same. That is
# why post-norm needs a warm-up: early on, a learning rate that suits the bottom layers is too large for the top
# ones.
#
# We repeat the measurement on the lesson's own layers: two Transformers of 6 encoder and 6 decoder layers (the
# 2017 depth) at this profile's width, with **the same weights**, one pre-norm and one post-norm, one backward
# pass on the **same batch** of random tokens, and the gradient norm of each decoder layer's weight matrices
# (the decoder is the stack the loss reads from). The weights inside the layers are drawn as in the 2017 paper
# and in Xiong's study (Xavier-uniform). As a control, the same measurement with PyTorch's default
# initialisation, the one our trained models use.

# %%
def layer_gradients(norm_first, xavier, seed=seed, layers=6):
    """Norm of the gradient of each decoder layer's weight matrices, one backward pass at initialisation."""
    torch.manual_seed(seed)
    model = Transformer(TransformerConfig.preset(profile, src_vocab=100, tgt_vocab=100, encoder_layers=layers,
                                                 decoder_layers=layers, dropout=0.0, norm_first=norm_first))
    if xavier:                                   # the paper's initialisation, inside the layers only
        for module in [*model.encoder.modules(), *model.decoder.modules()]:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
    batch_g = torch.Generator().manual_seed(seed)
    src, tgt = torch.randint(4, 100, (16, 12), generator=batch_g), torch.randint(4, 100, (16, 13), generator=batch_g)
    logits, _ = model(src, None, tgt[:, :-1])
    F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten()).backward()
    return [torch.cat([p.grad.flatten() for p in layer.parameters() if p.dim() == 2]).norm().item()
            for layer in model.decoder]


init_grads = {f"{name}, {init}": layer_gradients(norm_first, init == "Xavier")
              for init in ("Xavier", "PyTorch default") for name, norm_first in (("pre-norm", True), ("post-norm", False))}
fig, ax = plt.subplots(figsize=(7, 3.6))
for i, (label, norms) in enumerate(init_grads.items()):
    ax.semilogy(range(1, len(norms) + 1), norms, "o-" if "Xavier" in label else "o--", color=f"C{i % 2}",
                alpha=1.0 if "Xavier" in label else 0.5, label=label)
ax.set(xlabel="decoder layer (1 = next to the input, 6 = next to the output)", ylabel="gradient norm (log scale)",
       title="gradient reaching each layer's weights at initialisation")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()
growth = {label: norms[-1] / norms[0] for label, norms in init_grads.items()}
spread = {label: max(norms) / min(norms) for label, norms in init_grads.items()}
for label in init_grads:
    print(f"{label:27s} last layer / first layer {growth[label]:5.2f}   largest / smallest {spread[label]:5.2f}")
# Fails if, at the paper's initialisation, post-norm's top decoder layer gets less than 3 times the gradient of
# its bottom one, or pre-norm's six layers differ by more than a factor 2. Same weights and batch for both arms,
# so post-norm is the control for pre-norm. Checked on seeds 0-5 at the smoke and lesson widths: post-norm 4.0-15.1,
# pre-norm 1.26-1.73.
claims.check("prenorm_gradients_level_at_initialisation",
             growth["post-norm, Xavier"] >= 3 and spread["pre-norm, Xavier"] <= 2, required_at="always",
             post_norm_last_over_first=growth["post-norm, Xavier"], pre_norm_max_over_min=spread["pre-norm, Xavier"],
             pre_norm_last_over_first=growth["pre-norm, Xavier"],
             default_init_post_norm_last_over_first=growth["post-norm, PyTorch default"],
             default_init_pre_norm_max_over_min=spread["pre-norm, PyTorch default"],
             post_norm_xavier=init_grads["post-norm, Xavier"], pre_norm_xavier=init_grads["pre-norm, Xavier"]);

# %%
display(Markdown(
    f"At the paper's initialisation, post-norm's top decoder layer receives {growth['post-norm, Xavier']:.1f} times "
    f"the gradient of its bottom one, while pre-norm's six layers stay within a factor "
    f"{spread['pre-norm, Xavier']:.2f} of each other (its top layers get slightly *less*: the final LayerNorm "
    f"divides by the grown stream). The control tells the rest of the story: with PyTorch's default "
    f"initialisation, each sublayer adds only a small correction at the start, the LayerNorms have little to "
    f"divide, and post-norm is nearly level too (top / bottom {growth['post-norm, PyTorch default']:.2f}). So the "
    f"imbalance comes from the arrangement *and* the size of what the sublayers add: it appears when their outputs "
    f"are comparable to the stream they join, as at Xavier initialisation, and pre-norm stays level either way."))

# %% [markdown]
# # Part B · Prove what it buys
#
# Sections 6–12: the Transformer of Part A against lesson 04's attention GRU at the same training steps, then each claim of the
# *Why* above measured on its own, with the control that could overturn it.

# %% [markdown]
# ## 6. The data: the same eng-fra split as lessons 03 and 04
#
# `course_lib.translation.pipeline` gives every translation lesson the same tokenisation, the same fixed train / val /
# test split (pairs linked by a shared English *or* French sentence form a group, and a hash of the group
# decides its side, so no sentence is on both sides) and the same BLEU. The fingerprint below is a
# hash of the test sentences: equal fingerprints mean lessons 03, 04 and 05 were scored on the same test set.

# %%
data = TranslationData.build(TranslationConfig.preset(profile))
info = data.describe()
print({k_: (round(v_, 4) if isinstance(v_, float) else v_) for k_, v_ in info.items()})
vocab = dict(src_vocab=len(data.src_vocab), tgt_vocab=len(data.tgt_vocab), pad_id=data.tgt_vocab.pad_id)
recipe = TransformerRecipe.preset(profile)


def new_transformer():
    torch.manual_seed(seed)
    return Transformer(TransformerConfig.preset(profile, **vocab)).to(device)


def new_rnn():                      # lesson 04's model: bidirectional GRU encoder, GRU decoder with attention
    torch.manual_seed(seed)
    return Seq2Seq(Seq2SeqConfig.preset(profile, attention=True, **vocab)).to(device)


makers = {"Transformer": new_transformer, "attention GRU (lesson 04)": new_rnn}
params = {name: count_parameters(make()) for name, make in makers.items()}
print({name: f"{n / 1e6:.2f} M parameters" for name, n in params.items()})

# %% [markdown]
# ## 7. Parallelism, counted and measured
#
# Why should the Transformer train faster? Not because it does less arithmetic, but because its arithmetic
# does not have to wait. The recurrent decoder walks through a sentence one word at a time: step $t$ needs the
# hidden state of step $t-1$, so a 15-word translation is a chain of 15 small computations that cannot overlap.
# The Transformer's decoder handles all positions of the sentence in one pass of large matrix products, layer
# after layer: its chain is as long as its number of layers, whatever the sentence length.
#
# *Analogy*: a bucket brigade passes water hand to hand, so a longer line means a longer wait; a row of taps
# fills every bucket at once, however many buckets there are.
#
# That chain length is something we can **count**, on any machine. We hook every recurrent layer (it takes
# one dependent step per position it reads) and every Transformer layer (one step per call, all positions at
# once) and run one training forward pass on a batch of the shortest and one of the longest validation
# sentences.

# %%
def sequential_steps(model, batch):
    """Length of the chain of computations that must run one after another in one forward pass."""
    count = [0]

    def recurrent(module, args, output):        # one dependent step per position (packed or padded input)
        x = args[0]
        count[0] += len(x.batch_sizes) if isinstance(x, nn.utils.rnn.PackedSequence) else x.shape[1]

    def layer(module, args, output):            # every position in parallel: one step per layer
        count[0] += 1

    hooks = [m.register_forward_hook(recurrent if isinstance(m, nn.RNNBase) else layer)
             for m in model.modules() if isinstance(m, (nn.RNNBase, EncoderLayer, DecoderLayer))]
    try:
        with torch.no_grad():
            seq2seq_loss(model.eval(), to_device(batch, device))
    finally:
        for h in hooks:
            h.remove()
    return count[0]


val_batches = [b for _, b in data.sorted_batches(data.val, 32)]
short_batch, long_batch = val_batches[0], val_batches[-1]
lengths_seen = {"short": short_batch["tgt_out"].shape[1], "long": long_batch["tgt_out"].shape[1]}
chain = {name: {k: sequential_steps(make(), b) for k, b in (("short", short_batch), ("long", long_batch))}
         for name, make in makers.items()}
tf_name, rnn_name = list(makers)
for name, c in chain.items():
    print(f"{name:28s} sequential steps: {c['short']:3d} for the short batch, {c['long']:3d} for the long one")
print("target lengths (with <eos>):", lengths_seen)
claims.check("transformer_chain_does_not_grow_with_length",
             chain[tf_name]["short"] == chain[tf_name]["long"] and chain[rnn_name]["long"] > chain[rnn_name]["short"]
             and chain[rnn_name]["long"] >= lengths_seen["long"], required_at="always",
             transformer=chain[tf_name], rnn=chain[rnn_name], target_lengths=lengths_seen);

# %% [markdown]
# Now the clock. Both models train on *exactly the same batches*, one step of one model, then one step of the
# other, so that any slowdown of the machine hits both alike. We count **target tokens per second**: the words
# of the translations they learn from, padding excluded. The two have about the same number of parameters
# (above). Lesson 04's recurrent cell is the GRU, a slimmer cousin of the LSTM (three gate blocks instead of
# four), so an attention LSTM of the same width would be slower still.
#
# How large the gap is depends on the machine: the recurrent model's many small steps are limited by overhead,
# the Transformer's big products by arithmetic, and laptops, servers and GPUs balance those differently (a GPU
# speeds up big products far more than a chain of small steps, so expect the gap to widen there). So the speed is
# recorded as this machine's measurement; the claim that must hold everywhere is the count above.

# %%
def sync():
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_throughput(makers, get_batch, steps):
    """Interleaved training steps; step 0 is a warm-up and is not timed."""
    models = {name: make().train() for name, make in makers.items()}
    optimizers = {name: make_optimizer(m, Seq2SeqRecipe.preset(profile).train_config()) for name, m in models.items()}
    seconds, tokens = dict.fromkeys(models, 0.0), dict.fromkeys(models, 0)
    for step in range(steps + 1):
        batch = to_device(get_batch(step), device)
        n_tokens = (batch["tgt_out"] != vocab["pad_id"]).sum().item()
        for name, model in models.items():
            sync()
            start = time.perf_counter()
            with runtime.autocast(device):
                loss = seq2seq_loss(model, batch)
            optimizers[name].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[name].step()
            sync()
            if step:
                seconds[name] += time.perf_counter() - start
                tokens[name] += n_tokens
    return {name: {"tokens_per_s": tokens[name] / seconds[name], "steps_per_s": steps / seconds[name]}
            for name in models}


speed = measure_throughput(makers, data.batches_by_step(seed + 1), recipe.throughput_steps)
for name, s in speed.items():
    print(f"{name:28s} {s['tokens_per_s']:8.0f} target tokens/s   {s['steps_per_s']:.2f} steps/s")
ratio = speed[tf_name]["tokens_per_s"] / speed[rnn_name]["tokens_per_s"]
print(f"Transformer / recurrent throughput: {ratio:.2f}x  (threads: {torch.get_num_threads()})")
fig, ax = plt.subplots(figsize=(6, 2.4))
ax.barh(list(speed), [s["tokens_per_s"] for s in speed.values()], color=["C0", "C1"])
ax.set_xlabel("training throughput (target tokens / second)")
plt.tight_layout()
plt.show()

# %%
claims.check("transformer_trains_faster", ratio > 1.0, required_at="never",
             transformer_tokens_per_s=speed[tf_name]["tokens_per_s"], rnn_tokens_per_s=speed[rnn_name]["tokens_per_s"],
             ratio=ratio, transformer_params=params[tf_name], rnn_params=params[rnn_name],
             threads=torch.get_num_threads(), device=device.type);

# %% [markdown]
# ## 8. The same training steps, then BLEU
#
# Each model now trains for the same number of optimizer steps, `recipe.steps`, on the same batches in the same
# order. Both use Adam with a linear **warm-up** (the learning rate climbs from zero over the first steps, so
# that the first, noisy updates stay small) and then **cosine decay** (it glides down along half a cosine to a
# tenth of its peak at the last step). The *settings* are not the same: each model keeps the ones it was tuned
# with (printed below). Lesson 04's recurrent model takes a larger peak rate; a Transformer is usually given a
# smaller one and a longer warm-up, since attention's softmax and Adam's first steps can make early updates
# erratic. Forcing one model onto the other's settings would not make the race fairer, only handicap one
# runner; change `recipe.lr` or `recipe.warmup` to see what the Transformer does under the GRU's. The two take
# turns, a tenth of the steps at a time, so that if the machine gets busier or quieter meanwhile both feel it
# alike in the times we print. The validation loss is the cross-entropy per target token on held-out pairs.
#
# Equal steps is the comparison that means the same thing on every machine. Equal *time* favours the faster
# model even more, by however much faster it is where you run it; the second plot shows the same runs against
# this machine's clock.

# %%
def val_loss(model):
    return {"val_loss": mean_loss(model, (b for _, b in data.sorted_batches(data.val, 128)), device)}


models, trainers = {}, {}
for name, make in makers.items():
    cfg = recipe.train_config() if name == tf_name else Seq2SeqRecipe.preset(profile).train_config(**recipe.budget())
    print(f"{name:28s} Adam, peak lr {cfg.lr:g}, warm-up {cfg.warmup} steps, then {cfg.schedule} decay to "
          f"{cfg.min_lr if cfg.min_lr is not None else cfg.lr / 10:g}; {cfg.steps} steps")
    models[name] = make()
    trainers[name] = Trainer(models[name], seq2seq_loss, data.batches_by_step(seed), cfg, device=device, name=name,
                             eval_fn=val_loss)
for turn in range(1, 11):                                 # take turns: a tenth of the steps each
    for t in trainers.values():
        t.fit(until=recipe.steps * turn // 10)
histories = {name: t.history for name, t in trainers.items()}
train_steps = {name: t.step for name, t in trainers.items()}
for name, h in histories.items():
    print(f"{name}: {train_steps[name]} steps in {h.seconds:.0f} s, val loss {h.last_eval('val_loss'):.3f}")
epochs = recipe.steps * data.cfg.batch_size / len(data.train)
print(f"{recipe.steps} steps of {data.cfg.batch_size} pairs = {epochs:.2f} passes over the {len(data.train):,} "
      f"training pairs" + (": less than one pass, so both are under-trained, and the BLEU below compares them "
                           "early in training, not at their best" if epochs < 1 else ""))
transformer, rnn = models[tf_name], models[rnn_name]

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
for name, h in histories.items():
    xs, ys = h.eval_series("val_loss")
    axes[0].plot(xs, ys, marker="o", label=name)
    axes[1].plot([x * h.seconds / train_steps[name] for x in xs], ys, marker="o", label=name)
axes[0].set(xlabel="optimizer step", ylabel="validation loss (nats / token)", title="the same steps for both")
axes[1].set(xlabel="training time on this machine (s)", title="the same runs against the clock")
axes[0].legend()
plt.tight_layout()
plt.show()
first, last = histories[tf_name].losses[0], histories[tf_name].losses[-1]
claims.check("transformer_loss_falls", last < first, required_at="always", first=first, last=last);

# %% [markdown]
# Now translate the **whole test split** with greedy decoding, through the same `course_lib.translation.decoding` code
# lessons 03 and 04 use, and score with sacrebleu (0 to 100; for short, single-reference sentences like
# these, a score in the twenties already means mostly understandable output).

# %%
reports, eval_seconds = {}, {}
for name, model in models.items():
    start = time.perf_counter()
    reports[name] = data.evaluate(model, data.test, device)
    eval_seconds[name] = time.perf_counter() - start
    print(f"{name:28s} BLEU {reports[name].bleu:5.2f}   ({len(data.test)} sentences in {eval_seconds[name]:.0f} s)")
buckets = [b["bucket"] for b in reports[tf_name].by_bucket]
plots.lines({name: (buckets, [b["bleu"] for b in r.by_bucket]) for name, r in reports.items()},
            xlabel="source length (tokens)", ylabel="BLEU", title="BLEU by source length, test split");

# %%
bleu = {name: r.bleu for name, r in reports.items()}
claims.check("transformer_bleu_at_equal_steps", bleu[tf_name] >= bleu[rnn_name], required_at="lesson",
             transformer_bleu=bleu[tf_name], rnn_bleu=bleu[rnn_name], steps=recipe.steps,
             test_sentences=len(data.test), test_fingerprint=info["fingerprint"])
claims.check("training_time_at_equal_steps", histories[tf_name].seconds <= histories[rnn_name].seconds,
             required_at="never", transformer_train_s=histories[tf_name].seconds,
             rnn_train_s=histories[rnn_name].seconds, device=device.type);

# %%
rows = list(zip(reports[tf_name].sources, reports[tf_name].references, reports[tf_name].hypotheses,
                reports[rnn_name].hypotheses))
for src, ref, hyp_tf, hyp_rnn in rows[::max(1, len(rows) // 6)][:6]:
    print(f"fr : {' '.join(src)}\nen : {' '.join(ref)}\nTF : {' '.join(hyp_tf)}\nGRU: {' '.join(hyp_rnn)}\n")

# %% [markdown]
# **Beam search** keeps the few best partial translations instead of only the best one. It is the same code
# as in lessons 03 and 04; here on a sample of the test split, for the Transformer:

# %%
beam_pairs = random.Random(seed).sample(data.test, min(recipe.beam_sentences, len(data.test)))
beam_bleu = {f"beam {width}": data.evaluate(transformer, beam_pairs, device, beam=width).bleu for width in (1, 4)}
print({k_: round(v_, 2) for k_, v_ in beam_bleu.items()}, f"on {len(beam_pairs)} test sentences")

# %% [markdown]
# **Lessons 03, 04 and 05 side by side.** If lessons 03 and 04 ran before this one at the same profile (as
# `make course` does), their recorded BLEU is in `build/results/`. Each lesson trained under its own budget
# (lesson 04 trains its model for its own number of steps, on its own schedule), so only the
# test set is shared, as the fingerprints show; the fair head-to-head is the one above.

# %%
def recorded_bleu(notebook, claim, key):
    path = paths.results_dir() / f"{notebook}.json"
    record = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    if record.get("profile") != profile:
        return None
    metrics = next((c["metrics"] for c in record["claims"] if c["name"] == claim), {})
    return (metrics[key], metrics.get("fingerprint", "-")) if key in metrics else None


side_by_side = {
    "03 seq2seq, fixed context (lesson 03's run)": recorded_bleu("03_seq2seq", "bleu_falls_with_length", "bleu"),
    "04 attention GRU (lesson 04's run)": recorded_bleu("04_attention", "attention_beats_seq2seq_bleu", "attention"),
    "04 attention GRU (this run, equal steps)": (bleu[rnn_name], info["fingerprint"]),
    "05 Transformer (this run, equal steps)": (bleu[tf_name], info["fingerprint"]),
}
for name, found in side_by_side.items():
    print(f"{name:46s}", f"BLEU {found[0]:6.2f}   test set {found[1]}" if found else "not run yet at this profile")

# %% [markdown]
# ## 9. What the heads look at
#
# A real test sentence, translated by our Transformer. `record_attention` asks every attention module to
# keep its weights for one forward pass (through the written-out path; training uses the fused one).
# Top: the encoder's last self-attention layer, one panel per head: which source words each source word
# gathers from. Bottom: the decoder's cross-attention: for each English word written, which French words it
# read. Lesson 04's single alignment is now several, one per head, and they need not agree.

# %%
example = next((p for p in data.test if 6 <= len(p[0]) <= 9 and all(w in data.src_vocab for w in p[0])), data.test[0])
hyp = data.translate(transformer, [example[0]], device)[0]
batch = data.collate([(example[0], hyp)])
transformer.eval()
with torch.no_grad(), record_attention(transformer) as weights:
    transformer(batch["src"].to(device), batch["src_mask"].to(device), batch["tgt_in"].to(device))
src_words = example[0] + ["<eos>"]
tgt_words = ["<bos>"] + hyp
print("fr:", " ".join(example[0]), "\nen (reference):", " ".join(example[1]), "\nen (ours):", " ".join(hyp))
n_heads, last = transformer.cfg.n_heads, transformer.cfg.encoder_layers - 1
fig, axes = plt.subplots(2, n_heads, figsize=(3.2 * n_heads, 6.4), squeeze=False)
for h in range(n_heads):
    plots.heatmap(weights[f"encoder.{last}.self_attn"][0, h], xlabels=src_words, ylabels=src_words, ax=axes[0, h],
                  show=False, colorbar=False, title=f"encoder self-attn, head {h}")
    plots.heatmap(weights[f"decoder.{transformer.cfg.decoder_layers - 1}.cross_attn"][0, h], xlabels=src_words,
                  ylabels=tgt_words, ax=axes[1, h], show=False, colorbar=False, title=f"cross-attn, head {h}")
plt.tight_layout()
plt.show()

# %% [markdown]
# The panels above show only the last layer. The slider below walks through every head of every layer (on the
# largest models, the first and the last layer): first the encoder's self-attention, then the decoder's
# cross-attention, all on one colour scale. Watch for heads that stay on the diagonal (a word looking at itself),
# heads that pour their weight into one column such as `<eos>`, and cross-attention heads that trace the
# French-to-English word order, and compare the first layer's heads with the last's.

# %%
def shown_layers(n):                      # keep the slider under 48 positions
    return list(range(n)) if n * n_heads <= 24 else [0, n - 1]


head_maps, head_cols, head_rows = {}, {}, {}
for kind, name, rows, layers in (("enc", "self_attn", src_words, transformer.cfg.encoder_layers),
                                 ("cross", "cross_attn", tgt_words, transformer.cfg.decoder_layers)):
    part = "encoder" if kind == "enc" else "decoder"
    for i in shown_layers(layers):
        for h in range(n_heads):
            key = f"{kind} L{i}H{h}"
            head_maps[key] = weights[f"{part}.{i}.{name}"][0, h].cpu().numpy()
            head_cols[key], head_rows[key] = src_words, rows
interactive.show(interactive.slider_heatmaps(
    head_maps, x=head_cols, y=head_rows, zmin=0, zmax=1, xlabel="French (keys: read from)",
    ylabel="queries: French (enc) or English (cross)", slider_prefix="head: ",
    title="every head: encoder self-attention (enc), then decoder cross-attention (cross)"))

# %% [markdown]
# ### Do the heads specialise? Measured
#
# Heatmaps like these invite stories ("this head tracks grammar"). One sentence proves nothing, so here is a
# measurement over many test sentences. For every head we ask where its weight goes, on average, across all real
# query tokens: to the **previous** token, to the token **itself**, to the **next** token, to the `<eos>` that
# closes every source sentence, or to **punctuation**. A head with a job puts most of its weight in one of those
# places whatever the sentence is; a head without one spreads it according to the words. We also measure how
# spread out each head's weights are: the entropy of each query's weights divided by its largest possible value
# (0: one key takes everything; 1: uniform over the sentence).
#
# *Analogy*: a newsroom. If every reporter covers whatever story is nearest, the staff is large but not
# specialised; a specialised newsroom has a sports desk, a courts desk and a weather desk, and you can tell
# which is which from what each one files, day after day.
#
# First our Transformer, trained and untrained (the same network at its random start), on the encoder's
# self-attention and the decoder's cross-attention.

# %%
head_pairs = [p for p in data.test if len(p[0]) >= 6][:recipe.head_sentences]
head_batch = data.collate(head_pairs)
src_real = head_batch["src_mask"]
tgt_real = head_batch["tgt_in"] != vocab["pad_id"]
punctuation = torch.isin(head_batch["src"], torch.tensor([data.src_vocab.stoi[t] for t in ".?!," if t in data.src_vocab.stoi]))
source_keys = {"<eos>": head_batch["src"] == data.src_vocab.eos_id, "punctuation": punctuation}


def head_report(model):
    """Encoder self-attention: role shares (heads of every layer, stacked) and entropies; cross-attention entropies."""
    model.eval()
    with torch.no_grad(), record_attention(model) as w:
        model(*(head_batch[k].to(device) for k in ("src", "src_mask", "tgt_in")))
    cpu = {name: att.cpu() for name, att in w.items()}
    enc = [cpu[f"encoder.{i}.self_attn"] for i in range(model.cfg.encoder_layers)]
    cross = [cpu[f"decoder.{i}.cross_attn"] for i in range(model.cfg.decoder_layers)]
    roles = [head_roles(att, src_real, source_keys) for att in enc]
    return {"roles": roles[0][0], "shares": torch.cat([r[1] for r in roles]),
            "entropy": torch.cat([attention_entropy(att, src_real, src_real) for att in enc]),
            "cross_entropy": torch.cat([attention_entropy(att, tgt_real, src_real) for att in cross])}


heads_now, heads_start = head_report(transformer), head_report(new_transformer())
head_names = [f"L{i}H{h}" for i in range(transformer.cfg.encoder_layers) for h in range(transformer.cfg.n_heads)]
cross_names = [f"L{i}H{h}" for i in range(transformer.cfg.decoder_layers) for h in range(transformer.cfg.n_heads)]
fig, axes = plt.subplots(1, 3, figsize=(14, 3.6), gridspec_kw={"width_ratios": [1, 1, 1.2]})
for ax, (title, rep) in zip(axes, (("untrained", heads_start), (f"trained ({recipe.steps} steps)", heads_now))):
    table = torch.cat([rep["shares"], rep["entropy"][:, None]], dim=1)
    plots.heatmap(table.T, xlabels=head_names, ylabels=rep["roles"] + ["entropy"], ax=ax, show=False,
                  colorbar=False, title=f"encoder heads, {title}", cmap="magma")
    ax.images[0].set_clim(0, 1)                           # one colour scale for both panels: 0 (black) to 1
x = np.arange(len(cross_names))
axes[2].bar(x - 0.2, heads_start["cross_entropy"], 0.4, label="untrained")
axes[2].bar(x + 0.2, heads_now["cross_entropy"], 0.4, label="trained")
axes[2].set_xticks(x, cross_names, fontsize=8)
axes[2].set(ylim=(0, 1), ylabel="entropy / max", title="cross-attention: how spread out")
axes[2].legend(fontsize=8)
plt.tight_layout()
plt.show()

best = heads_now["shares"].max()
best_head, best_role = divmod(int(heads_now["shares"].argmax()), len(heads_now["roles"]))
print(f"most specialised encoder head: {head_names[best_head]}, {best:.0%} of its weight on "
      f"'{heads_now['roles'][best_role]}' (untrained, the most any head put on one role: "
      f"{heads_start['shares'].max():.0%})")
print(f"encoder entropy: untrained {heads_start['entropy'].mean():.2f}, trained {heads_now['entropy'].mean():.2f} "
      f"(mean over heads); cross-attention: untrained {heads_start['cross_entropy'].mean():.2f}, "
      f"trained {heads_now['cross_entropy'].mean():.2f}")
claims.check("translation_heads_specialise", best >= 0.5, required_at="never", best_head=head_names[best_head],
             best_role=heads_now["roles"][best_role], best_share=best, untrained_best_share=heads_start["shares"].max(),
             encoder_entropy=heads_now["entropy"], cross_entropy=heads_now["cross_entropy"],
             untrained_cross_entropy=heads_start["cross_entropy"], sentences=len(head_pairs))

# %% [markdown]
# What the numbers say about our model: training made every head *sharper* than at its random start (the
# entropies fell), and the cross-attention heads sharpened most, into the word-to-word alignments of the
# heatmap above. But a division of labour is hard to find: compare the most specialised head's share, printed
# above, with the claim's bar of one half. On the course's recorded lesson runs (three seeds, docs/EVIDENCE.md)
# no encoder head reached it, and the heads of a layer look much alike. Two layers of four heads, trained for a
# few minutes on short sentences, have had no need to specialise.
#
# Does a model that has read far more text do better? Lesson 07, once BERT and pretraining have been introduced,
# runs this same measurement on a pretrained encoder (claim `pretrained_heads_specialise`).

# %% [markdown]
# ## 10. Positional encoding, proved necessary
#
# Claim: without position codes the encoder is **permutation-equivariant**: shuffle the input words and the
# output vectors come out shuffled in exactly the same way, nothing else changes. Every piece is to blame:
# embeddings, LayerNorm and the feed-forward network treat each position on its own, and attention's
# weighted sum does not care in which order the keys are listed. We take the trained Transformer, make a
# copy that skips the position codes (same weights), and compare `encode(shuffled)` with
# `shuffle(encode(original))` in float64, so that "exactly" means rounding error only.

# %%
with_pe = copy.deepcopy(transformer).cpu().double().eval()
without_pe = Transformer(TransformerConfig(**{**with_pe.cfg.to_dict(), "positional": False})).double().eval()
without_pe.load_state_dict(with_pe.state_dict())
src = batch["src"]
perm = torch.randperm(src.shape[1], generator=torch.Generator().manual_seed(seed + 1))
if torch.equal(perm, torch.arange(len(perm))):
    perm = perm.flip(0)
with torch.no_grad():
    gap = {label: (m.encode(src[:, perm]) - m.encode(src)[:, perm]).abs().max().item()
           for label, m in (("without positions", without_pe), ("with positions", with_pe))}
print({k_: f"{v_:.2e}" for k_, v_ in gap.items()})
claims.check("no_positions_means_permutation_equivariant",
             gap["without positions"] <= 1e-10 and gap["with positions"] >= 1e-3, required_at="always",
             gap_without=gap["without positions"], gap_with=gap["with positions"], length=src.shape[1]);

# %% [markdown]
# The consequence for translation: cross-attention does not care about the order of the memory either, so
# a model without positions cannot tell who did what to whom. Both word orders below are guaranteed the
# *same* translation from the position-free copy (whatever it is: that copy was trained with positions, so
# it may well speak nonsense). The real model at least *can* tell them apart; whether it does depends on
# how far its training got.

# %%
pair = [["tom", "aime", "marie", "."], ["marie", "aime", "tom", "."]]
for label, m in (("without positions", without_pe), ("with positions", with_pe)):
    outs = data.translate(m, pair, "cpu")
    print(f"{label:18s}", " | ".join(" ".join(o) for o in outs), "  identical:", outs[0] == outs[1])

# %% [markdown]
# ## 11. The price: attention's cost grows with the square of the length
#
# Every token scores every other token, so a sentence of $L$ tokens needs an $L \times L$ table of scores
# per head: 1,000 tokens means a million scores, 10,000 tokens a hundred million. We time our written-out
# attention and PyTorch's fused `F.scaled_dot_product_attention` for one head of width 64, and measure
# their **peak memory**. On CPU PyTorch has no peak-memory counter, so `course_lib.harness.benchmarks.attention` runs
# each call under PyTorch's profiler with `profile_memory=True`, which records every allocation and free,
# and replays them in order (on a GPU it reads `torch.cuda.max_memory_allocated`). Next to it, the
# analytic size of one score table: $L^2 \times 4$ bytes.

# %%
lengths = COST_LENGTHS[profile]
cost = measure(lengths, head_dim=64, heads=1, device=device, threads=1 if device.type == "cpu" else None)
series = {impl: [r for r in cost if r["impl"] == impl] for impl in ("written-out", "sdpa")}
plots.log_lines({impl: (lengths, [r["seconds"] * 1e3 for r in rows]) for impl, rows in series.items()},
                xlabel="sequence length L", ylabel="time per call (ms)", logx=True, fit="power",
                title="attention time vs length (log-log)");
table_mib = [r["score_table_bytes"] / 2**20 for r in series["sdpa"]]
plots.log_lines({**{f"{impl} (measured peak)": (lengths, [r["peak_bytes"] / 2**20 for r in rows])
                    for impl, rows in series.items()},
                 "one L x L score table (analytic)": (lengths, table_mib)},
                xlabel="sequence length L", ylabel="peak memory (MiB)", logx=True, fit="power",
                title="attention memory vs length (log-log)");
slopes = {impl: {"time": plots.fit_power_law(lengths, [r["seconds"] for r in rows])[1],
                 "memory": plots.fit_power_law(lengths, [r["peak_bytes"] for r in rows])[1]}
          for impl, rows in series.items()}
slopes["written-out"]["flops"] = plots.fit_power_law(lengths, [r["flops"] for r in series["written-out"]])[1]
print({impl: {k_: round(v_, 2) for k_, v_ in s.items()} for impl, s in slopes.items()})

# %% [markdown]
# A slope of 2 on a log-log plot means "double the length, four times the cost". The written-out version
# also *stores* its tables (the scores, then the weights: about two tables at the peak), so its memory grows
# quadratically too. The fused kernel computes the same numbers tile by tile and never holds the whole
# table, which is why its memory line is much flatter: that trick (FlashAttention, on GPUs) is what makes
# long contexts affordable. Its *time* still grows quadratically: the work is the same.
#
# The clock is this machine's: its slope wobbles with caches and with whatever else the machine is doing. The
# **work** does not: PyTorch's `FlopCounterMode` counts the floating-point operations of the two matrix
# products in the written-out attention, $2 \cdot 2 L^2 d$, and their slope is exactly 2 on any machine. That
# count is a check of our bookkeeping (the formula is quadratic by construction), not evidence; the evidence is
# what was *measured*: the peak memory's slope and, more noisily, the time's. (The counter has no formula for
# the fused CPU kernel, so we count the written-out one; the two do the same arithmetic.)
#
# Two precautions keep the CPU clock honest. The timing runs on one thread: with two, every operation waits
# for the slower thread, and on a busy machine that wait (not attention) is what gets measured. And the
# lengths stop below 1,000: on our shared 2-core machine, once the tables outgrew the cache, times jumped 10
# to 30 times and measured the memory system instead of the arithmetic.

# %%
written = series["written-out"][-1]
claims.check("attention_work_quadratic", abs(slopes["written-out"]["flops"] - 2) < 0.01
             and written["flops"] == 4 * written["length"] ** 2 * 64, required_at="always",
             flops_slope=slopes["written-out"]["flops"], flops_at_max_len=written["flops"], lengths=lengths)
claims.check("attention_time_quadratic", 1.6 <= slopes["written-out"]["time"] <= 2.4, required_at="never",
             time_slope=slopes["written-out"]["time"], sdpa_time_slope=slopes["sdpa"]["time"], lengths=lengths,
             device=device.type)
claims.check("attention_memory_quadratic", 1.8 <= slopes["written-out"]["memory"] <= 2.2
             and written["peak_bytes"] >= written["score_table_bytes"], required_at="always",
             memory_slope=slopes["written-out"]["memory"], sdpa_memory_slope=slopes["sdpa"]["memory"],
             peak_bytes_at_max_len=written["peak_bytes"], table_bytes_at_max_len=written["score_table_bytes"]);

# %%
lesson.finish()

# %% [markdown]
# ## 12. What still breaks
#
# 1. **Quadratic cost.** Section 11: double the context, four times the attention work. Fine for sentences,
#    painful for books. (Sparse, sliding-window and linear attentions, and FlashAttention's memory trick, are
#    the responses.)
# 2. **Writing is still one word at a time.** Training is parallel because the answer is known; translating
#    is not: each new word needs the previous ones. Our `decode_step` at least keeps each layer's earlier
#    inputs; lesson 06 keeps the keys and values themselves (the **KV cache**) and measures the speed-up.
# 3. **It needs paired data.** An encoder-decoder learns from (French, English) pairs, and there are only so
#    many of those. Text without translations is nearly unlimited. Lesson 06 keeps only the decoder and trains
#    it to predict the next word of raw text: **GPT**. Lesson 07 keeps only the encoder and trains it to fill
#    in blanks: **BERT**.

# %% [markdown]
# ## Exercises
#
# **Exercise 1 (2 points).** Build the mask of the decoder's self-attention for a batch of target token ids
# `tokens` (batch, T) padded with `pad_id`: shape (batch, 1, T, T), True where query position $i$ may look at
# key position $j$, that is when $j \le i$ *and* token $j$ is not padding.

# %% nbgrader={"grade": false, "grade_id": "ex1_decoder_mask", "locked": false, "schema_version": 3, "solution": true}
def decoder_mask(tokens, pad_id):
    ### BEGIN SOLUTION
    T = tokens.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    real = (tokens != pad_id)[:, None, None, :]
    return causal & real
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex1_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
_m = decoder_mask(torch.tensor([[4, 5, 0]]), 0)
assert _m.shape == (1, 1, 3, 3) and _m.dtype == torch.bool
### BEGIN HIDDEN TESTS
_tok = torch.tensor([[4, 5, 6, 0, 0], [7, 0, 0, 0, 0], [4, 4, 4, 4, 4]])
_expected = padding_mask(_tok, 0) & causal_mask(5)
assert torch.equal(decoder_mask(_tok, 0), _expected)
assert torch.equal(decoder_mask(_tok, 4)[2, 0], torch.zeros(5, 5, dtype=torch.bool))
_q = torch.randn(3, 2, 5, 8)
_out = F.scaled_dot_product_attention(_q, _q, _q, attn_mask=decoder_mask(_tok, 0))
assert torch.allclose(_out[:2], scaled_dot_product_attention(_q, _q, _q, _expected)[0][:2], atol=1e-5)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (2 points).** Section 4 said that moving $k$ positions along is a fixed rotation. Return the
# $d \times d$ matrix $R$ with $R \, PE_p = PE_{p+k}$ for every position $p$. Hint: each (sin, cos) pair of
# dimensions turns by the angle $k / 10000^{2i/d}$; use $\sin(a+b)$ and $\cos(a+b)$.

# %% nbgrader={"grade": false, "grade_id": "ex2_rotation", "locked": false, "schema_version": 3, "solution": true}
def shift_matrix(k, d):
    ### BEGIN SOLUTION
    R = torch.zeros(d, d)
    for i in range(d // 2):
        a = k / 10000 ** (2 * i / d)
        c, s = math.cos(a), math.sin(a)
        # sin(x + a) = sin x cos a + cos x sin a ; cos(x + a) = cos x cos a - sin x sin a
        R[2 * i, 2 * i], R[2 * i, 2 * i + 1] = c, s
        R[2 * i + 1, 2 * i], R[2 * i + 1, 2 * i + 1] = -s, c
    return R
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex2_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
assert shift_matrix(3, 8).shape == (8, 8)
### BEGIN HIDDEN TESTS
_pe = sinusoidal_encoding(80, 16)
for _k in (0, 1, 7):
    _R = shift_matrix(_k, 16)
    assert torch.allclose(_pe[: 80 - _k] @ _R.T, _pe[_k:], atol=1e-4)
assert torch.allclose(shift_matrix(5, 16) @ shift_matrix(5, 16).T, torch.eye(16), atol=1e-5)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (2 points).** Count the parameters of one *encoder layer* (`EncoderLayer(d, heads, d_ff)`)
# without building it: four $d \times d$ attention projections with biases, the two feed-forward layers
# with biases, and two LayerNorms (a scale and a shift each). Does the number of heads matter?

# %% nbgrader={"grade": false, "grade_id": "ex3_params", "locked": false, "schema_version": 3, "solution": true}
def encoder_layer_parameters(d, heads, d_ff):
    ### BEGIN SOLUTION
    attention_params = 4 * (d * d + d)
    feed_forward = d * d_ff + d_ff + d_ff * d + d
    norms = 2 * 2 * d
    return attention_params + feed_forward + norms
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex3_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
assert encoder_layer_parameters(2, 1, 4) == 4 * 6 + 8 + 4 + 8 + 2 + 8
### BEGIN HIDDEN TESTS
for _d, _h, _ff in [(16, 4, 32), (64, 8, 256), (30, 3, 7)]:
    assert encoder_layer_parameters(_d, _h, _ff) == count_parameters(EncoderLayer(_d, _h, _ff))
    assert encoder_layer_parameters(_d, _h, _ff) == count_parameters(nn.TransformerEncoderLayer(_d, _h, _ff))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 4 (2 points, predict, then measure): what the $\sqrt{d_k}$ is for.** Section 1 divided every score by
# $\sqrt{d_k}$ and showed it for one query at $d_k = 256$. Now test it properly, at the width of one head of the
# original Transformer (a model width of 512 split over 8 heads: $d_k = 64$). Take 1,000 random queries and 16 random
# keys, every number drawn from a standard normal distribution (mean 0, spread 1), and ask how much of its weight each
# query's softmax gives to its favourite key.
#
# *First predict*, before running anything: write two numbers between 1/16 and 1 in `predicted_unscaled` (the
# average largest weight when the raw scores $q \cdot k$ go into the softmax) and `predicted_scaled` (the same with
# $q \cdot k / \sqrt{d_k}$). To guess: 1/16 ≈ 0.06 would be a perfectly even spread and 1 a hard pick of one key; a
# raw score here is a sum of 64 products, so the scores spread by about $\sqrt{64} = 8$ around zero; and the softmax
# gives a score that is larger by 8 about $e^8 \approx 3000$ times the weight.
#
# *Then measure*: write `mean_largest_weight(q, k, scaled)` for queries `q` (n, $d_k$) and keys `k` (m, $d_k$): each
# query's scores against the m keys (divided by $\sqrt{d_k}$ when `scaled` is True), a softmax over the keys, and the
# mean over the n queries of the largest weight, as a float. Store its two results for the draw below in
# `measured_unscaled` and `measured_scaled`; the cell then prints your guesses next to the measurements, and the same
# measurement for other widths.
#
# *Why it matters*: a largest weight near 1 means the attention has become a hard lookup. The softmax is then
# saturated: nudging the scores barely moves the weights, so the gradient that should teach $W_Q$ and $W_K$ which keys
# matter is close to zero, and the wider the head, the worse it gets.

# %% nbgrader={"grade": false, "grade_id": "ex4_scaling", "locked": false, "schema_version": 3, "solution": true}
def mean_largest_weight(q, k, scaled):
    ### BEGIN SOLUTION
    scores = q @ k.T
    if scaled:
        scores = scores / math.sqrt(q.shape[-1])
    return scores.softmax(dim=-1).max(dim=-1).values.mean().item()
    ### END SOLUTION


g4 = torch.Generator().manual_seed(0)
q4, k4 = torch.randn(1000, 64, generator=g4), torch.randn(16, 64, generator=g4)
### BEGIN SOLUTION
predicted_unscaled, predicted_scaled = 0.9, 0.3       # my guesses, written down before running the next two lines
measured_unscaled = mean_largest_weight(q4, k4, scaled=False)
measured_scaled = mean_largest_weight(q4, k4, scaled=True)
### END SOLUTION
print(f"d_k = 64, 16 keys   {'predicted':>9s} {'measured':>9s}   (1/16 = {1 / 16:.3f} is an even spread)")
print(f"  raw scores        {predicted_unscaled:9.3f} {measured_unscaled:9.3f}")
print(f"  divided by √d_k   {predicted_scaled:9.3f} {measured_scaled:9.3f}")
for d_k in (4, 16, 64, 256):
    q_d, k_d = torch.randn(1000, d_k, generator=g4), torch.randn(16, d_k, generator=g4)
    print(f"d_k = {d_k:3d}: largest weight {mean_largest_weight(q_d, k_d, False):.3f} raw, "
          f"{mean_largest_weight(q_d, k_d, True):.3f} scaled")


# %% nbgrader={"grade": true, "grade_id": "ex4_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false}
assert isinstance(predicted_unscaled, (int, float)) and isinstance(predicted_scaled, (int, float)), \
    "write your two guesses down as numbers first"
assert 1 / 16 < measured_scaled < measured_unscaled <= 1
### BEGIN HIDDEN TESTS
_g = torch.Generator().manual_seed(5)
for _d, _n, _m in [(64, 50, 16), (9, 7, 3), (256, 20, 10)]:       # the function, against the definition
    _q, _k = torch.randn(_n, _d, generator=_g), torch.randn(_m, _d, generator=_g)
    for _scaled in (False, True):
        _w = (_q @ _k.T / (math.sqrt(_d) if _scaled else 1.0)).softmax(-1)
        assert abs(float(mean_largest_weight(_q, _k, _scaled)) - _w.max(-1).values.mean().item()) < 1e-5
# the measurement, against an independent one on fresh draws (20 sets of 16 keys): any honest draw lands close
_ref = {False: [], True: []}
for _ in range(20):
    _q, _k = torch.randn(500, 64, generator=_g), torch.randn(16, 64, generator=_g)
    for _scaled in (False, True):
        _ref[_scaled].append((_q @ _k.T / (8.0 if _scaled else 1.0)).softmax(-1).max(-1).values.mean().item())
assert abs(measured_unscaled - sum(_ref[False]) / 20) < 0.04 and abs(measured_scaled - sum(_ref[True]) / 20) < 0.04
assert 0.7 < measured_unscaled < 0.95 and 0.15 < measured_scaled < 0.35      # sanity range at d_k = 64, 16 keys
### END HIDDEN TESTS
