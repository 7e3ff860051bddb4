"""Additive (Bahdanau) attention: the formula, weights that sum to one, and padding that changes nothing."""
import pytest
import torch

from course_lib.translation.additive_attention import AdditiveAttention


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
