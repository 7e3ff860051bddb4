"""Lesson 08's real-model circuit tools: attention rebuilt from q and k (checked against the layer's own output),
head scores with a known answer, head ablation by hooks, the made-up-word few-shot prompts, and SmolLM2 itself."""
import math

import pytest
import torch

from course_lib import emergence as em
from course_lib.emergence import circuits as C
from course_lib.gpt import gguf_model as G
from course_lib.gpt.llama import Llama, LlamaConfig


def _tiny(seed=0, **kw):
    torch.manual_seed(seed)
    return Llama(LlamaConfig.preset("tiny", **kw)).eval()     # 4 query heads share 2 key/value heads


def _repeats(batch=2, n=10, vocab=256, start=0, seed=1):
    toks = em.repeated_tokens(batch, n, vocab - 17, torch.Generator().manual_seed(seed)) + 17
    return torch.cat([torch.full((batch, 1), start), toks], dim=1)


def test_rebuilt_attention_reproduces_every_layer_of_the_model():
    model, x = _tiny(), _repeats()
    with C.AttentionRecorder(model) as rec, torch.no_grad():
        model(x)
    for layer in range(model.cfg.n_layer):
        probs, err = C.recomputed_attention(model, rec, layer)
        assert err < 1e-5
        assert probs.shape == (2, 4, x.shape[1], x.shape[1])
        assert torch.allclose(probs.sum(-1), torch.ones(2, 4, x.shape[1]))
        assert probs.triu(1).abs().max() == 0                     # causal


def test_the_check_catches_the_wrong_gqa_tiling(monkeypatch):
    """`repeat` instead of `repeat_interleave` pairs query heads with the wrong key/value heads: the rebuilt
    output must then disagree with the model (the check can fail)."""
    model, x = _tiny(), _repeats()
    with C.AttentionRecorder(model) as rec, torch.no_grad():
        model(x)
    monkeypatch.setattr(torch.Tensor, "repeat_interleave",
                        lambda self, g, dim: self.repeat(*[g if d == dim else 1 for d in range(self.dim())]))
    _, err = C.recomputed_attention(model, rec, 0)
    assert err > 1e-3


def test_hooks_leave_the_model_unchanged_afterwards():
    model, x = _tiny(), _repeats()
    with torch.no_grad():
        before = model(x)
        with C.AttentionRecorder(model):
            model(x)
        with C.ablate_heads(model, [(0, 1), (1, 3)]):
            ablated = model(x)
        after = model(x)
    assert torch.equal(before, after)
    assert not torch.allclose(before, ablated)
    assert all(not l.self_attn._forward_hooks and not l.self_attn.o_proj._forward_pre_hooks for l in model.layers)


def test_head_scores_of_uniform_attention_have_the_known_answer():
    """Zero query weights make every score 0, so attention is uniform over the causal past: the row at position
    t puts 1 / (t + 1) on each key. A second-copy row has one earlier occurrence: prefix score 1 / (t + 1);
    the previous-token score is the mean of 1 / (t + 1) over rows t >= 1 (positions counted from 0)."""
    model = _tiny()
    for layer in model.layers:
        torch.nn.init.zeros_(layer.self_attn.q_proj.weight)
    n = 10
    x = _repeats(n=n)
    s = C.head_scores(model, x, score_from=1)
    # after leaving out position 0, row t' (0-based among the scored) is original position t = t' + 1
    want_prefix = sum(1 / (t + 2) for t in range(n, 2 * n)) / n
    want_prev = sum(1 / (t + 2) for t in range(1, 2 * n)) / (2 * n - 1)
    assert s["prefix"].shape == (2, 4) and s["previous"].shape == (2, 4)
    assert torch.allclose(s["prefix"], torch.full((2, 4), want_prefix), atol=1e-6)
    assert torch.allclose(s["previous"], torch.full((2, 4), want_prev), atol=1e-6)


def test_head_scores_on_the_hand_built_induction_pattern(monkeypatch):
    """Feed head_scores a hand-built pattern: head 0 a perfect induction stripe, head 1 a previous-token head."""
    model, x = _tiny(), _repeats(n=8)
    T, n = x.shape[1], 8
    stripe = torch.zeros(T, T)
    prev = torch.zeros(T, T)
    stripe[0, 0] = prev[0, 0] = 1.0
    for t in range(1, T):
        prev[t, t - 1] = 1.0
        stripe[t, t - n + 1 if t > n else 0] = 1.0               # second copy: the token after my first occurrence
    pattern = torch.stack([stripe, prev, stripe, prev])[None].expand(2, 4, T, T)
    real = C.attention_from_qk
    monkeypatch.setattr(C, "attention_from_qk", lambda m, *a: (pattern, real(m, *a)[1]))
    s = C.head_scores(model, x, score_from=1)
    assert torch.allclose(s["prefix"][:, 0], torch.ones(2))
    assert torch.allclose(s["prefix"][:, 1], torch.zeros(2))
    assert torch.allclose(s["previous"][:, 1], torch.ones(2))
    assert set(C.top_heads(s["prefix"], 4)) == {(0, 0), (0, 2), (1, 0), (1, 2)}


def test_mean_ablation_with_the_sequence_own_means_changes_nothing():
    """A batch of one: the 'mean' at each position is the head's own output there, so swapping it in is a no-op;
    zero-ablation of the same head is not."""
    model, x = _tiny(), _repeats(batch=1)
    means = C.head_means(model, x)
    with torch.no_grad():
        clean = model(x)
        with C.ablate_heads(model, [(0, 0), (1, 2)], means):
            same = model(x)
        with C.ablate_heads(model, [(0, 0), (1, 2)]):
            zeroed = model(x)
    assert torch.allclose(clean, same, atol=1e-6)
    assert not torch.allclose(clean, zeroed, atol=1e-4)


def test_zero_ablating_every_head_of_a_layer_removes_its_attention():
    model, x = _tiny(), _repeats()
    with torch.no_grad(), C.ablate_heads(model, [(0, h) for h in range(4)]), C.AttentionRecorder(model, [0]) as rec:
        model(x)
    assert rec.outputs[0].abs().max() == 0


def test_masked_means_leave_out_the_padding():
    model = _tiny()
    x = _repeats(batch=2, n=6)
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[1, 5:] = False
    padded = x.clone()
    padded[1, 5:] = 3
    m_all = C.head_means(model, x[:1])
    m_masked = C.head_means(model, torch.cat([x[:1], padded[1:]]), mask=torch.cat([mask[:1], mask[1:]]))
    both = C.head_means(model, torch.cat([x[:1], padded[1:]]))
    for layer in m_all:
        assert not torch.allclose(m_masked[layer][5:], both[layer][5:])      # padding would have counted
        assert torch.allclose(m_masked[layer][5:], m_all[layer][5:], atol=1e-6)


def test_ablation_works_on_the_attention_only_model_too():
    from course_lib.emergence.attention_only import AttnOnlyConfig, AttnOnlyTransformer
    torch.manual_seed(0)
    model = AttnOnlyTransformer(AttnOnlyConfig(vocab_size=16, block_size=24, d_model=16, n_layers=2,
                                               n_heads=(2, 1), layernorm=True)).eval()
    x = torch.randint(16, (3, 20))
    with torch.no_grad():
        with C.ablate_heads(model, [(1, 0)]):
            hooked = model(x)
        masked = model(x, head_mask=model.head_mask([(1, 0)]))
    assert torch.allclose(hooked, masked, atol=1e-6)


def test_bad_arguments_are_refused_by_name():
    model = _tiny()
    with pytest.raises(ValueError, match="head \\(5, 0\\)"):
        with C.ablate_heads(model, [(5, 0)]):
            pass
    with pytest.raises(ValueError, match="no mean recorded for layer 1"):
        with C.ablate_heads(model, [(1, 0)], {0: torch.zeros(4, 64)}):
            pass
    with pytest.raises(ValueError, match="k=9"):
        C.top_heads(torch.zeros(2, 4), 9)
    with pytest.raises(ValueError, match="layers \\[7\\]"):
        C.AttentionRecorder(model, [7])
    with pytest.raises(ValueError, match="start \\+ 2n"):
        C.copy_losses(model, _repeats(n=5), 6)


def test_random_heads_avoid_the_excluded_and_are_distinct():
    excl = [(0, 0), (1, 1)]
    got = C.random_heads(2, 4, 6, exclude=excl, generator=torch.Generator().manual_seed(0))
    assert len(set(got)) == 6 and not set(got) & set(excl)
    with pytest.raises(ValueError, match="k=7"):
        C.random_heads(2, 4, 7, exclude=excl)


def test_copy_losses_split_the_two_copies():
    """A model that is certain of the second copy (a hand-made logit table) has ~0 loss there."""
    n, x = 6, _repeats(batch=1, n=6)

    class Oracle(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, idx):
            out = torch.zeros(idx.shape[0], idx.shape[1], 256)
            nxt = x[0, 1:idx.shape[1] + 1]
            out[0, torch.arange(idx.shape[1]), nxt] = 50.0 * (torch.arange(idx.shape[1]) >= n)
            return out
    first, second, curve = C.copy_losses(Oracle(), x, n, curve=True)
    assert first == pytest.approx(math.log(256), rel=1e-5) and second < 1e-6 and curve.shape == (2 * n,)


# ---- the few-shot prompts --------------------------------------------------------------------------------

def _char_encode(s):
    return [ord(c) for c in s]


def test_word_label_prompts_score_the_right_positions():
    labels = ("r", "b", "g", "y")                                  # single tokens for a char "tokenizer"
    p = em.word_label_prompts(_char_encode, 5, labels, n_pairs=8, start=[0], seed=3, sep="=")
    assert p.where.shape == (5, 8) and p.answer.shape == (5, 8)
    for i in range(5):
        ids = p.ids[i, :p.lengths[i]]
        assert ids[0] == 0 and _char_encode(p.texts[i]) == ids[1:].tolist()
        assert (ids[p.where[i]] == ord("=")).all()
        assert torch.equal(ids[p.where[i] + 1], p.label_ids[p.answer[i]])
        counts = torch.bincount(p.answer[i], minlength=4)
        assert (counts == 2).all()                                 # balanced: each label twice
        lines = p.texts[i].splitlines()
        assert sorted(lines[:8]) == sorted(lines[8:])              # the queries are the examples, reordered
    z = em.word_label_prompts(_char_encode, 5, labels, n_pairs=8, start=[0], seed=3, sep="=", shots=False)
    assert (z.lengths < p.lengths).all() and torch.equal(z.answer, p.answer)
    with pytest.raises(ValueError, match="single tokens"):
        em.word_label_prompts(_char_encode, 1, ("red", "b"), n_pairs=2)
    with pytest.raises(ValueError, match="multiple of the 4 labels"):
        em.word_label_prompts(_char_encode, 1, labels, n_pairs=6)


def test_label_scores_ignore_the_padding():
    model = _tiny()
    p = em.word_label_prompts(_char_encode, 4, ("r", "b", "g", "y"), n_pairs=4, start=[0], seed=0, sep="=")
    together = em.label_scores(model, p)
    acc, lp = [], []
    for i in range(4):
        one = em.LabelPrompts(p.ids[i:i + 1, :p.lengths[i]], p.lengths[i:i + 1], p.where[i:i + 1],
                              p.answer[i:i + 1], p.label_ids, p.texts[i:i + 1])
        r = em.label_scores(model, one)
        acc.append(r["accuracy"])
        lp.append(r["logprob"])
    assert together["accuracy"] == pytest.approx(sum(acc) / 4)
    assert together["logprob"] == pytest.approx(sum(lp) / 4, abs=1e-5)


# ---- the real model: SmolLM2-135M through the course's own Llama -------------------------------------------

@pytest.fixture(scope="module")
def smollm2():
    try:
        path = G.smollm2_path()
    except FileNotFoundError as err:
        pytest.skip(f"SmolLM2 GGUF not available ({err})")
    model, tok, _ = G.load_gguf(path)
    return model, tok


def test_smollm2_copies_random_tokens_through_induction_heads(smollm2):
    """The 135M path end to end on a small batch: the rebuilt attention equals every layer's output, the second
    copy is far cheaper than the first, and some head is a strong induction head (Olsson et al.'s probe)."""
    model, _ = smollm2
    n = 24
    x = _repeats(batch=2, n=n, vocab=model.cfg.vocab_size, seed=5)
    first, second = C.copy_losses(model, x, n)
    assert second < first / 3
    s = C.head_scores(model, x, score_from=1)
    assert s["max_error"] < 1e-4
    assert float(s["prefix"].max()) > 0.5
    best = C.top_heads(s["prefix"], 1)
    means = C.head_means(model, x)
    with C.ablate_heads(model, best, means):
        assert C.copy_losses(model, x, n)[1] > second


def test_smollm2_labels_are_single_tokens_and_prompts_tokenize_canonically(smollm2):
    _, tok = smollm2
    labels = (" red", " blue", " green", " yellow")
    p = em.word_label_prompts(tok.encode, 3, labels, start=[0], seed=0, sep=" =")
    for i in range(3):
        assert tok.encode(p.texts[i]) == p.ids[i, 1:p.lengths[i]].tolist()
