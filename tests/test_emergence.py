"""Lesson 08's pieces: the attention-only model, head ablation, the task generators and the scores."""
import math

import pytest
import torch

from course_lib import emergence as em
from course_lib.emergence.attention_only import AttnOnlyConfig, AttnOnlyTransformer
from course_lib.recipes.emergence import AdditionFamilyRecipe, FewShotRecipe, InductionRecipe, LMFamilyRecipe
from course_lib.gpt.generation import generate
from course_lib.gpt.model import GPT, GPTConfig
from course_lib.core.runtime import PROFILES


def _model(layernorm=True, heads=(2, 1), seed=0, **kw):
    torch.manual_seed(seed)
    cfg = AttnOnlyConfig(vocab_size=kw.pop("vocab_size", 16), block_size=24, d_model=16, n_layers=len(heads),
                         n_heads=heads, layernorm=layernorm, **kw)
    return AttnOnlyTransformer(cfg).eval()


# ---- prefix-matching score on hand-built patterns ------------------------------------------------------

def _repeated(n=8, batch=3, vocab=20):
    return em.repeated_tokens(batch, n, vocab, torch.Generator().manual_seed(1))


def test_prefix_matching_is_one_on_the_induction_pattern():
    tokens = _repeated()
    B, T = tokens.shape
    n = T // 2
    attn = torch.zeros(B, T, T)
    attn[:, torch.arange(T), 0] = 1.0                       # first half: anything (here: the first token)
    for t in range(n, T):
        attn[:, t, t - n + 1] = 1.0                          # the token after my earlier occurrence
    attn[:, n:, 0] -= 1.0 * (torch.arange(n, T) - n + 1 != 0)   # keep each row a distribution
    assert torch.allclose(attn.sum(-1), torch.ones(B, T))
    assert em.prefix_matching_score(attn, tokens).item() == pytest.approx(1.0)


def test_prefix_matching_of_uniform_attention_is_the_mean_of_one_over_t_plus_one():
    tokens = _repeated(n=10)
    B, T = tokens.shape
    n = T // 2
    uniform = torch.ones(T, T).tril()
    uniform = (uniform / uniform.sum(-1, keepdim=True)).expand(B, 2, T, T)   # two identical heads
    # rows t = n .. 2n-1 each have exactly one earlier occurrence, so their score is 1 / (t + 1)
    want = sum(1 / (t + 1) for t in range(n, T)) / n
    got = em.prefix_matching_score(uniform, tokens)
    assert got.shape == (2,)
    assert torch.allclose(got, torch.full((2,), want))
    assert want == pytest.approx(math.log(2) / n, rel=0.1)   # about ln 2 / n, "about 1 / T" in spirit


def test_prefix_matching_is_zero_for_a_previous_token_head():
    tokens = _repeated()
    T = tokens.shape[1]
    prev = torch.zeros(T, T)
    prev[0, 0] = 1.0
    prev[torch.arange(1, T), torch.arange(T - 1)] = 1.0
    assert em.prefix_matching_score(prev.expand(3, T, T), tokens).item() == 0.0
    assert em.previous_token_score(prev.expand(3, T, T)).item() == pytest.approx(1.0)


def test_prefix_matching_refuses_sequences_without_repeats():
    with pytest.raises(ValueError, match="no token repeats"):
        em.prefix_matching_score(torch.eye(4)[None], torch.arange(4)[None])


# ---- the attention-only model and head ablation --------------------------------------------------------

@pytest.mark.parametrize("layernorm", [False, True])
def test_explicit_attention_matches_the_fused_path_and_is_causal(layernorm):
    model = _model(layernorm)
    x = torch.randint(16, (4, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        run = model.run(x)
        fast = model(x)
    assert torch.allclose(run.logits, fast, atol=1e-5)
    for attn in run.attn:
        assert torch.allclose(attn.sum(-1), torch.ones_like(attn[..., 0]), atol=1e-6)
        assert attn.triu(diagonal=1).abs().max() == 0
    # the layer's output is the sum of its heads' outputs
    for i, per_head in enumerate(run.head_out):
        assert torch.allclose(run.resid[i + 1] - run.resid[i], per_head.sum(1), atol=1e-5)


def test_ablating_a_head_changes_only_that_heads_contribution():
    model = _model(layernorm=True, heads=(2, 2))
    x = torch.randint(16, (4, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = model.run(x)
        cut = model.run(x, head_mask=model.head_mask([(1, 0)]))
    assert torch.equal(cut.resid[1], full.resid[1])                      # layers below are untouched
    assert torch.equal(cut.head_out[1][:, 1], full.head_out[1][:, 1])    # the other head of that layer too
    assert cut.head_out[1][:, 0].abs().max() == 0                        # the ablated head writes nothing
    # the stream after that layer differs by exactly the head's (unablated) output
    assert torch.allclose(full.resid[2] - cut.resid[2], full.head_out[1][:, 0], atol=1e-6)
    assert not torch.allclose(full.logits, cut.logits)
    with torch.no_grad():   # the fused forward takes the same mask
        assert torch.allclose(model(x, head_mask=model.head_mask([(1, 0)])), cut.logits, atol=1e-5)
        per_row = model.head_mask().expand(4, 2, 2).clone()
        per_row[2, 1, 0] = 0                                              # ablate for sequence 2 only
        mixed = model(x, head_mask=per_row)
    assert torch.allclose(mixed[2], cut.logits[2], atol=1e-5)
    assert torch.allclose(mixed[0], full.logits[0], atol=1e-5)


def test_head_mask_checks_its_heads():
    model = _model(heads=(2, 1))
    assert model.head_mask([(0, 1)]).tolist() == [[1.0, 0.0], [1.0, 1.0]]
    with pytest.raises(IndexError):
        model.head_mask([(1, 1)])                 # layer 1 has a single head
    with pytest.raises(ValueError, match="head_mask must have shape"):
        model(torch.zeros(1, 4, dtype=torch.long), head_mask=torch.ones(3))
    with pytest.raises(ValueError, match="one count per layer"):
        AttnOnlyConfig(n_layers=2, n_heads=(1, 1, 1))


def test_copying_score_reads_the_ov_circuit():
    model = _model(layernorm=False, heads=(1,), vocab_size=16)
    with torch.no_grad():
        for w in (model.W_E.weight, model.layers[0].W_V.weight, model.layers[0].W_O.weight, model.W_U.weight):
            w.copy_(torch.eye(16))
    assert em.copying_score(model, 0, 0) == pytest.approx(1.0)
    with torch.no_grad():
        model.layers[0].W_O.weight.mul_(-1)
    assert em.copying_score(model, 0, 0) == pytest.approx(-1.0)


# ---- the generators -----------------------------------------------------------------------------------

def test_induction_batches_are_seeded():
    a = em.induction_batch(8, generator=torch.Generator().manual_seed(3))
    b = em.induction_batch(8, generator=torch.Generator().manual_seed(3))
    c = em.induction_batch(8, generator=torch.Generator().manual_seed(4))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a.x, c.x)
    get = em.induction_batches(8, seed=1)
    assert torch.equal(get(5)[0], get(5)[0]) and not torch.equal(get(5)[0], get(6)[0])


def test_induction_batch_hides_one_segment_at_random_places():
    b = em.induction_batch(500, seq_len=48, vocab=32, min_len=6, max_len=12,
                           generator=torch.Generator().manual_seed(0))
    assert torch.equal(b.x[:, 1:], b.y[:, :-1])
    lengths, gaps, starts = set(), set(), set()
    for i in range(500):
        seq = torch.cat([b.x[i], b.y[i, -1:]])
        f, r = b.first[i].nonzero().flatten(), b.repeat[i].nonzero().flatten()
        L = len(f) + 1
        assert len(r) == len(f) and 6 <= L <= 12
        assert torch.equal(f, torch.arange(f[0], f[0] + L - 1)) and torch.equal(r, torch.arange(r[0], r[0] + L - 1))
        p1, p2 = int(f[0]), int(r[0])
        assert p1 + L <= p2                                                   # the copies do not overlap
        segment = seq[p1:p1 + L]
        assert torch.equal(seq[p2:p2 + L], segment) and len(set(segment.tolist())) == L
        rest = torch.ones(49, dtype=torch.bool)
        rest[p1:p1 + L] = rest[p2:p2 + L] = False
        assert not set(seq[rest].tolist()) & set(segment.tolist())           # only the copy matches
        lengths.add(L), gaps.add(p2 - p1), starts.add(p1)
    # the trap is avoided: neither the length, the offset between copies, nor the place is fixed
    assert len(lengths) == 7 and len(gaps) > 20 and len(starts) > 20
    # ... and the trap itself is available for comparison: same offset every time
    trap = em.induction_batch(50, generator=torch.Generator().manual_seed(0), fixed_offset=True)
    assert trap.repeat.sum(0).tolist() == trap.repeat[0].float().mul(50).tolist()


def test_repeat_only_training_targets():
    x, y = em.induction_batches(16, seed=0)(0)
    b = em.induction_batch(16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, b.x)
    assert torch.equal(y != em.IGNORE, b.repeat) and torch.equal(y[b.repeat], b.y[b.repeat])
    assert torch.equal(em.induction_batches(16, seed=0, graded="all")(0)[1], b.y)


def test_few_shot_batches_draw_a_fresh_mapping_per_sequence():
    g = torch.Generator().manual_seed(0)
    b = em.few_shot_batch(400, n_pairs=8, n_items=32, n_labels=2, n_way=2, bursty=True, generator=g)
    assert b.x.shape == (400, 15) and b.y.shape == (400, 15)
    assert torch.equal(b.x[:, 0::2], b.items) and torch.equal(b.x[:, 1::2], b.labels[:, :-1] + 32)
    assert torch.equal(b.y[:, 0::2], b.labels + 32) and (b.y[:, 1::2] == em.IGNORE).all()
    mappings = set()
    for i in range(400):
        pairs = dict()
        for item, label in zip(b.items[i].tolist(), b.labels[i].tolist()):
            assert pairs.setdefault(item, label) == label                    # consistent inside a sequence
        assert len(pairs) <= 2 and len(set(pairs.values())) == len(pairs)   # two classes, distinct labels
        mappings.add(tuple(sorted(pairs.items())))
        seen = [item in b.items[i, :k].tolist() for k, item in enumerate(b.items[i].tolist())]
        assert b.seen[i].tolist() == seen
    assert len(mappings) > 300                                                # fresh every time
    # the same item gets either label across sequences: no weight can store the answer
    item0 = [b.labels[i][b.items[i] == b.items[0, 0]] for i in range(400)]
    assert {int(v) for t in item0 for v in t} == {0, 1}
    flat = em.few_shot_batch(400, n_items=32, bursty=False, generator=g)
    assert flat.seen.float().mean() < 0.2 < b.seen.float().mean()
    again = em.few_shot_batch(5, generator=torch.Generator().manual_seed(9))
    assert torch.equal(again.x, em.few_shot_batch(5, generator=torch.Generator().manual_seed(9)).x)


def test_few_shot_batches_with_more_classes_than_labels():
    b = em.few_shot_batch(300, n_pairs=16, n_items=32, n_labels=2, n_way=8, generator=torch.Generator().manual_seed(1))
    sizes = []
    for i in range(300):
        pairs = dict()
        for item, label in zip(b.items[i].tolist(), b.labels[i].tolist()):
            assert pairs.setdefault(item, label) == label                    # still consistent inside a sequence
        assert len(pairs) <= 8 and set(pairs.values()) <= {0, 1}
        sizes.append(len(pairs))
    assert max(sizes) > 2 and b.seen.float().mean() > 0.3                  # many bindings, and they recur
    with pytest.raises(ValueError, match="n_way"):
        em.few_shot_batch(2, n_items=4, n_labels=2, n_way=5)


def test_few_shot_accuracy_and_the_lookup_rule():
    b = em.few_shot_batch(200, n_pairs=6, n_items=10, n_labels=2, n_way=2, generator=torch.Generator().manual_seed(0))

    class Oracle(torch.nn.Module):      # copies the label of an earlier pair, else says label 0
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            out = torch.zeros(*x.shape, 12)
            for i in range(x.shape[0]):
                for t in range(0, x.shape[1], 2):
                    earlier = [j for j in range(0, t, 2) if x[i, j] == x[i, t]]
                    out[i, t, int(x[i, earlier[0] + 1]) if earlier else 10] = 1.0
            return out

    acc = em.few_shot_accuracy(Oracle(), b, n_items=10, n_labels=2)
    assert acc["seen"] == 1.0 and acc["by_k"][0] == (b.labels[:, 0] == 0).float().mean()
    assert torch.allclose(acc["lookup"], b.seen.float().mean(0) + (~b.seen).float().mean(0) / 2)
    hits = total = 0                    # the no-binding control, by hand: the label shown most often so far
    for i in range(200):
        for k in range(6):
            if b.seen[i, k]:
                before = b.labels[i, :k].tolist()
                hits += int(max(range(2), key=lambda lab: (before.count(lab), -lab)) == b.labels[i, k])
                total += 1
    assert acc["majority_seen"] == pytest.approx(hits / total)


# ---- in-context learning score -------------------------------------------------------------------------

def test_icl_score_sign_and_default_positions():
    falling = torch.linspace(3.0, 1.0, 128)               # the more it has read, the better it predicts
    assert em.icl_score(falling) < 0
    assert em.icl_score(falling.flip(0)) > 0
    assert em.icl_score(torch.full((128,), 2.0)) == pytest.approx(0.0)
    spike = torch.zeros(128)
    spike[12], spike[125] = 1.0, 6.0                      # Olsson's 50th and 500th of 512, scaled to 128
    assert em.icl_score(spike, band=0) == pytest.approx(5.0)


def test_per_position_loss_and_repeat_losses_shapes():
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=11, block_size=16, n_layer=1, n_head=1, n_embd=8)).eval()
    data = torch.randint(11, (500,))
    loss = em.per_position_loss(gpt, data, 16, windows=20, batch=8)
    assert loss.shape == (16,) and torch.isfinite(loss).all()
    first, second = em.repeat_losses(gpt, _repeated(n=8, vocab=11))
    assert first > 0 and second > 0


def test_cliff_tells_a_phase_change_from_a_slide():
    steps = list(range(0, 2001, 50))
    cliff = [3.4 if s < 1000 else (0.2 if s > 1100 else 1.8) for s in steps]
    slide = [3.4 - 3.2 * s / 2000 for s in steps]
    c = em.cliff(steps, cliff)
    assert (c.start, c.end) == (950, 1150) and c.width == pytest.approx(0.1) and c.fall == pytest.approx(1.0)
    assert em.cliff(steps, slide).width >= 0.69
    assert em.steepest_rise(steps, [-v for v in cliff]) in ((950, 1000), (1100, 1150))


# ---- smooth and sharp metrics --------------------------------------------------------------------------

def test_exact_match_is_the_product_of_character_hits():
    correct = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [0, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    lengths = torch.tensor([3, 4, 4, 2])       # word 0 ends before its wrong 4th slot; word 3 before its 3rd
    assert em.exact_from_correct(correct, lengths) == pytest.approx(3 / 4)
    # with independent characters, exact match is accuracy ** length
    g = torch.Generator().manual_seed(0)
    p, L = 0.7, 5
    hits = torch.rand(200_000, L, generator=g) < p
    assert em.exact_from_correct(hits, torch.full((200_000,), L)) == pytest.approx(p ** L, abs=0.005)


def test_answer_correct_is_greedy_decoding_position_by_position():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=6, block_size=16, n_layer=1, n_head=1, n_embd=8)).eval()
    with torch.no_grad():
        model.wte.weight.mul_(30)
    prompts = torch.randint(6, (40, 5), generator=torch.Generator().manual_seed(1))
    greedy = generate(model, prompts, 4, temperature=0).tokens          # (40, 9): prompt + greedy answer
    rows = greedy.clone()
    rows[::2, 6] = (rows[::2, 6] + 1) % 6                                # every other row: a wrong 2nd answer token
    table = em.answer_correct(model, rows, prompt_len=5, batch=7)
    assert table.shape == (40, 4)
    assert table[1::2].all() and not table[::2, 1].any() and table[::2, 0].all()
    assert (table.all(1) == torch.tensor([i % 2 == 1 for i in range(40)])).all()
    with pytest.raises(ValueError, match="prompt_len"):
        em.answer_correct(model, rows, prompt_len=9)


# ---- recipes -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [InductionRecipe, FewShotRecipe, LMFamilyRecipe])
def test_every_recipe_has_every_profile_and_counts_steps_not_seconds(cls):
    for profile in PROFILES:
        r = cls.preset(profile)
        assert r.train_config().max_seconds is None and r.train_config().steps == r.steps > 0


def test_addition_family_counts_steps_and_grows():
    for profile in PROFILES:
        r = AdditionFamilyRecipe.preset(profile)
        cfgs = [r.format_recipe(w) for w in r.widths]
        assert all(c.train_config().max_seconds is None and c.train_config().steps == r.steps > 0 for c in cfgs)
        assert r.widths == sorted(set(r.widths)) and all(w % r.n_head == 0 for w in r.widths)
        assert r.ratio_band[0] < 1 < r.ratio_band[1]


@pytest.mark.parametrize("profile", PROFILES)
def test_one_layer_control_has_at_least_as_many_parameters(profile):
    r = InductionRecipe.preset(profile)
    two = AttnOnlyTransformer(r.model_config(2)).num_params()
    one = AttnOnlyTransformer(r.model_config(1)).num_params()
    assert one >= two
