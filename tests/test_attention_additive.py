"""Additive (Bahdanau) attention: the formula, weights that sum to one, and padding that changes nothing. And its
ablation, uniform attention (lesson 04): the mean of the real states, the same parameters, a fused training path
that gives the step-by-step numbers."""
import pytest
import torch

from course_lib.translation.additive_attention import AdditiveAttention, UniformAttention
from course_lib.translation.pipeline import collate
from course_lib.translation.seq2seq import Seq2Seq, Seq2SeqConfig, seq2seq_loss


def _setup(seed=0, B=3, S=5, q=6, k=4, a=7):
    torch.manual_seed(seed)
    attn = AdditiveAttention(q, k, a)
    return attn, torch.randn(B, q), torch.randn(B, S, k)


def test_matches_the_formula_written_element_by_element():
    attn, query, keys = _setup()
    mask = torch.ones(keys.shape[:2], dtype=torch.bool)
    context, weights = attn(query, keys, mask)
    W, U, b, v = attn.query_proj.weight, attn.key_proj.weight, attn.key_proj.bias, attn.v.weight[0]
    for i in range(query.shape[0]):
        scores = torch.stack([v @ torch.tanh(W @ query[i] + U @ keys[i, j] + b) for j in range(keys.shape[1])])
        expected = torch.softmax(scores, 0)
        torch.testing.assert_close(weights[i], expected)
        torch.testing.assert_close(context[i], (expected[:, None] * keys[i]).sum(0))


def test_weights_sum_to_one_and_padding_gets_none():
    attn, query, keys = _setup(1)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    _, weights = attn(query, keys, mask)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    assert (weights[~mask] == 0).all() and (weights[mask] > 0).all()
    assert torch.allclose(weights[2, 0], torch.tensor(1.0))   # one real token: all the weight on it


def test_padded_batch_equals_each_sentence_alone():
    attn, query, keys = _setup(2)
    lengths = [5, 3, 1]
    mask = torch.arange(5)[None] < torch.tensor(lengths)[:, None]
    garbage = keys.masked_fill(~mask[..., None], 1e3)         # whatever sits in the padding must not matter
    context, weights = attn(query, garbage, mask)
    for i, n in enumerate(lengths):
        c1, w1 = attn(query[i:i + 1], keys[i:i + 1, :n], torch.ones(1, n, dtype=torch.bool))
        torch.testing.assert_close(context[i], c1[0])
        torch.testing.assert_close(weights[i, :n], w1[0])


def test_precomputed_keys_give_the_same_answer():
    attn, query, keys = _setup(3)
    mask = torch.ones(keys.shape[:2], dtype=torch.bool)
    a = attn(query, keys, mask)
    b = attn(query, keys, mask, projected_keys=attn.project_keys(keys))
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[1], b[1])


def test_gradients_flow_to_every_parameter_and_not_through_padding():
    attn, query, keys = _setup(4)
    keys.requires_grad_(True)
    mask = torch.ones(keys.shape[:2], dtype=torch.bool)
    mask[:, 3:] = False
    context, _ = attn(query, keys, mask)
    context.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in attn.parameters())
    assert (keys.grad[:, 3:] == 0).all() and (keys.grad[:, :3] != 0).any()


def test_bad_inputs_are_clear_errors():
    attn, query, keys = _setup()
    with pytest.raises(ValueError, match="no real token"):
        attn(query, keys, torch.zeros(keys.shape[:2], dtype=torch.bool))
    with pytest.raises(ValueError, match="expected query"):
        attn(query, keys, torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="expected query"):
        attn(query[None], keys, torch.ones(keys.shape[:2], dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        attn(query, keys, torch.ones(keys.shape[:2], dtype=torch.long))


# -- the uniform ablation ---------------------------------------------------------------------------------------
def test_uniform_weights_are_the_mean_over_real_tokens_whatever_the_query():
    _, query, keys = _setup(5)
    uniform = UniformAttention(6, 4, 7)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    garbage = keys.masked_fill(~mask[..., None], 1e3)         # padding must not matter
    context, weights = uniform(query, garbage, mask)
    for i, n in enumerate((5, 2, 1)):
        torch.testing.assert_close(weights[i], torch.tensor([1 / n] * n + [0.0] * (5 - n)))
        torch.testing.assert_close(context[i], keys[i, :n].mean(0))
    other, _ = uniform(torch.randn_like(query) * 100, garbage, mask)
    torch.testing.assert_close(other, context)                # the query plays no part
    with pytest.raises(ValueError, match="no real token"):
        uniform(query, keys, torch.zeros(keys.shape[:2], dtype=torch.bool))


def _translators(seed=0, **kw):
    models = {}
    for weights in ("learned", "uniform"):
        torch.manual_seed(seed)
        models[weights] = Seq2Seq(Seq2SeqConfig(src_vocab=30, tgt_vocab=25, embed=8, hidden=16, attention=True,
                                                attention_weights=weights, **kw)).eval()
    return models["learned"], models["uniform"]


def _padded_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    sources = [torch.randint(4, 30, (n,), generator=g).tolist() for n in (6, 4, 2)]
    targets = [torch.randint(4, 25, (n,), generator=g).tolist() for n in (4, 2, 3)]
    return collate(sources, targets, pad_id=0, bos_id=2, eos_id=3)


def test_uniform_model_has_the_same_parameters_and_the_same_start():
    learned, uniform = _translators()
    assert isinstance(uniform.decoder.attention, UniformAttention)
    shapes = {k: v.shape for k, v in learned.state_dict().items()}
    assert shapes == {k: v.shape for k, v in uniform.state_dict().items()}
    assert sum(p.numel() for p in learned.parameters()) == sum(p.numel() for p in uniform.parameters())
    for (k, a), b in zip(learned.state_dict().items(), uniform.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)              # same seed, same initial weights: only the scoring differs
    with pytest.raises(ValueError, match="attention_weights"):
        Seq2SeqConfig(attention=True, attention_weights="hard")


def test_uniform_model_attends_evenly_and_its_fused_path_equals_step_by_step():
    _, uniform = _translators(1)
    b = _padded_batch(1)
    logits, weights = uniform(b["src"], b["src_mask"], b["tgt_in"])              # fused: one RNN call
    n = b["src_mask"].sum(-1, keepdim=True)
    torch.testing.assert_close(weights, (b["src_mask"] / n)[:, None].expand_as(weights))
    memory, state = uniform.encode(b["src"], b["src_mask"]), None
    for t in range(b["tgt_in"].shape[1]):                                          # the decoding protocol
        step, state = uniform.decode_step(b["tgt_in"][:, :t + 1], state, memory, b["src_mask"])
        torch.testing.assert_close(step, logits[:, t], atol=1e-5, rtol=1e-5)
    for i, k in enumerate(n[:, 0].tolist()):                                       # padding changes nothing
        alone, _ = uniform(b["src"][i:i + 1, :k], b["src_mask"][i:i + 1, :k], b["tgt_in"][i:i + 1])
        torch.testing.assert_close(logits[i], alone[0], atol=1e-5, rtol=1e-5)


def test_uniform_model_trains_everything_but_the_unused_scorer():
    _, uniform = _translators(2)
    uniform.train()
    seq2seq_loss(uniform, _padded_batch(2)).backward()
    for name, p in uniform.named_parameters():
        if name.startswith("decoder.attention."):
            assert p.grad is None, name                       # the scorer exists (equal size) but plays no part
        else:
            assert p.grad is not None, name
