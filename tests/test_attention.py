"""Scaled dot-product and multi-head attention (lesson 05) against PyTorch's own implementations."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib.transformer.attention import (MultiHeadAttention, as_torch_attention, attend, causal_mask, combine_masks,
                                  key_mask, padding_mask, record_attention, scaled_dot_product_attention)

TOL = dict(atol=1e-5, rtol=1e-5)


def qkv(batch=3, heads=2, lq=5, lk=7, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, heads, lq, d, generator=g), torch.randn(batch, heads, lk, d, generator=g),
            torch.randn(batch, heads, lk, d, generator=g))


def test_causal_mask_is_lower_triangular_and_keeps_newest_rows():
    m = causal_mask(4)
    assert m.dtype == torch.bool and m.shape == (4, 4)
    assert m.tolist() == [[True, False, False, False], [True, True, False, False],
                          [True, True, True, False], [True, True, True, True]]
    assert torch.equal(causal_mask(4, queries=2), m[2:])
    with pytest.raises(ValueError, match="queries"):
        causal_mask(3, queries=4)


def test_padding_mask_hides_pad_tokens_and_broadcasts():
    tokens = torch.tensor([[5, 6, 0, 0], [7, 8, 9, 0]])
    m = padding_mask(tokens, pad_id=0)
    assert m.shape == (2, 1, 1, 4)
    assert m[:, 0, 0].tolist() == [[True, True, False, False], [True, True, True, False]]
    with pytest.raises(ValueError, match="batch, length"):
        padding_mask(tokens[0], pad_id=0)
    assert torch.equal(key_mask(tokens != 0), m)
    with pytest.raises(ValueError, match="bool mask"):
        key_mask(tokens)


def test_combine_masks_ands_and_skips_none():
    a, b = torch.tensor([True, True, False]), torch.tensor([True, False, True])
    assert combine_masks(a, None, b).tolist() == [True, False, False]
    assert combine_masks(None, None) is None


@pytest.mark.parametrize("masked", ["none", "padding", "causal"])
def test_written_out_matches_pytorch_sdpa(masked):
    q, k, v = qkv(lq=6, lk=6)
    tokens = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4])
    mask = {"none": None, "padding": padding_mask(tokens, 0), "causal": causal_mask(6)}[masked]
    out, w = scaled_dot_product_attention(q, k, v, mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, ref, **TOL)
    torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]), **TOL)
    if mask is not None:
        assert (w.masked_select(~mask.expand_as(w)) == 0).all()
    torch.testing.assert_close(attend(q, k, v, mask), ref, **TOL)


def test_attend_causal_flag_equals_explicit_mask_even_with_cached_keys():
    q, k, v = qkv(lq=6, lk=6)
    torch.testing.assert_close(attend(q, k, v, causal=True), attend(q, k, v, causal_mask(6)), **TOL)
    # two newest queries over six keys: rows 4 and 5 of the full causal computation
    full = attend(q, k, v, causal=True)
    torch.testing.assert_close(attend(q[:, :, 4:], k, v, causal=True), full[:, :, 4:], **TOL)
    pad = padding_mask(torch.tensor([[1] * 6, [1] * 5 + [0], [1] * 3 + [0] * 3]), 0)
    torch.testing.assert_close(attend(q, k, v, pad, causal=True), attend(q, k, v, pad & causal_mask(6)), **TOL)


def test_query_with_nothing_to_attend_gives_zero_not_nan():
    q, k, v = qkv(batch=1)
    mask = torch.zeros(1, 1, 1, 7, dtype=torch.bool)
    out, w = scaled_dot_product_attention(q, k, v, mask)
    assert not out.isnan().any() and (out == 0).all() and (w == 0).all()


def test_scaled_dot_product_rejects_mismatched_shapes():
    q, k, v = qkv()
    with pytest.raises(ValueError, match="share"):
        scaled_dot_product_attention(q, k[..., :4], v)


def mha_pair(d=16, heads=4, seed=0):
    torch.manual_seed(seed)
    ours = MultiHeadAttention(d, heads).eval()
    theirs = as_torch_attention(ours).eval()
    assert isinstance(theirs, nn.MultiheadAttention) and theirs.batch_first
    return ours, theirs


def test_multi_head_self_attention_matches_nn_multiheadattention_with_padding():
    ours, theirs = mha_pair()
    x = torch.randn(3, 6, 16)
    tokens = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] + [0] * 5])
    ref, ref_w = theirs(x, x, x, key_padding_mask=tokens == 0, average_attn_weights=False)
    torch.testing.assert_close(ours(x, mask=padding_mask(tokens, 0)), ref, **TOL)
    with record_attention(ours) as rec:
        out = ours(x, mask=padding_mask(tokens, 0))
    torch.testing.assert_close(out, ref, **TOL)
    torch.testing.assert_close(rec[""], ref_w, **TOL)
    assert ours.keep_weights is False and ours.last_weights is None   # the context manager cleans up


def test_multi_head_causal_and_cross_attention_match_nn_multiheadattention():
    ours, theirs = mha_pair(seed=1)
    y, memory = torch.randn(2, 5, 16), torch.randn(2, 8, 16)
    ref, _ = theirs(y, y, y, attn_mask=~causal_mask(5))          # PyTorch's bool masks mean "blocked"
    torch.testing.assert_close(ours(y, causal=True), ref, **TOL)
    with record_attention(ours):
        torch.testing.assert_close(ours(y, causal=True), ref, **TOL)
    src = torch.tensor([[3] * 8, [3] * 6 + [0] * 2])
    ref, _ = theirs(y, memory, memory, key_padding_mask=src == 0)
    torch.testing.assert_close(ours(y, memory, mask=padding_mask(src, 0)), ref, **TOL)


def test_multi_head_gradients_match_nn_multiheadattention():
    ours, theirs = mha_pair(seed=2)
    x = torch.randn(2, 4, 16)
    ours(x, causal=True).square().sum().backward()
    theirs(x, x, x, attn_mask=~causal_mask(4))[0].square().sum().backward()
    torch.testing.assert_close(ours.q_proj.weight.grad, theirs.in_proj_weight.grad[:16], **TOL)
    torch.testing.assert_close(ours.out_proj.weight.grad, theirs.out_proj.weight.grad, **TOL)


def test_multi_head_validates_its_input():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="batch, length, 16"):
        MultiHeadAttention(16, 4)(torch.randn(2, 5, 8))


# ---- the cost measurements behind lesson 05's log-log plot and `make bench` (course_lib.harness.benchmarks.attention)

def test_peak_memory_counts_the_busiest_moment_not_the_total():
    from course_lib.harness.benchmarks.attention import peak_memory_bytes

    def two_temporaries():
        a = torch.ones(1000, 1000)          # 4 MB, freed before the next one is made
        del a
        return torch.ones(500, 1000).sum()  # 2 MB

    assert peak_memory_bytes(lambda: torch.ones(1000, 1000)) == 4_000_000
    assert 4_000_000 <= peak_memory_bytes(two_temporaries) < 5_000_000
    with pytest.raises(ValueError, match="cpu' or 'cuda"):
        peak_memory_bytes(lambda: None, "meta")


def test_written_out_attention_stores_its_score_tables_and_sdpa_does_not():
    from course_lib.harness.benchmarks.attention import measure

    rows = measure([256, 512], repeats=1)
    assert {(r["impl"], r["length"]) for r in rows} == {(i, n) for i in ("written-out", "sdpa") for n in (256, 512)}
    for r in rows:
        assert r["seconds"] > 0 and r["score_table_bytes"] == r["length"] ** 2 * 4
        if r["impl"] == "written-out":    # scores and weights: two tables alive at once
            assert r["peak_bytes"] >= 2 * r["score_table_bytes"]
        else:
            assert r["peak_bytes"] < r["score_table_bytes"]
            # ...but more than its output: the fused kernel's scratch space, allocated and freed inside one
            # operator, is part of the peak (the replay puts an operator's own frees at its end)
            assert r["peak_bytes"] > r["length"] * 64 * 4 + 65536
