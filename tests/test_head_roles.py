"""Head roles (lesson 05): offset profiles, key shares and entropies on attention patterns with known answers."""

import pytest
import torch

from course_lib.transformer import (MultiHeadAttention, attention_entropy, head_roles, key_share, offset_profile,
                                    record_attention)


def patterns(L=5):
    """Three heads on one sentence of L tokens: itself, the previous token (the first token: itself), uniform."""
    eye = torch.eye(L)
    prev = torch.zeros(L, L)
    prev[0, 0] = 1
    prev[torch.arange(1, L), torch.arange(L - 1)] = 1
    uniform = torch.full((L, L), 1 / L)
    return torch.stack([eye, prev, uniform])[None]                  # (1, 3, L, L)


def test_offset_profile_known_answers():
    L = 5
    real = torch.ones(1, L, dtype=torch.bool)
    prof = offset_profile(patterns(L), real, window=2)               # columns: -2, -1, 0, +1, +2
    assert torch.allclose(prof[0], torch.tensor([0, 0, 1.0, 0, 0]))
    assert torch.allclose(prof[1], torch.tensor([0, (L - 1) / L, 1 / L, 0, 0]))
    # uniform: the key at offset d exists for L - |d| of the L queries, each giving it 1/L
    assert torch.allclose(prof[2], torch.tensor([(L - abs(d)) / L / L for d in range(-2, 3)]))


def test_padding_is_ignored():
    L = 5
    w = torch.cat([patterns(L), patterns(L)])                       # two sentences, the second padded after 3
    w[1] = 0
    w[1, :, :3, :3] = patterns(3)[0]
    real = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    prof = offset_profile(w, real, window=1)
    assert torch.allclose(prof[0], torch.tensor([0, 1.0, 0]))       # "itself" stays 1 with padding around
    assert torch.allclose(prof[1], torch.tensor([(4 + 2) / 8, 2 / 8, 0]))   # 8 real queries, 6 look back
    ent = attention_entropy(w, real, real)
    assert ent[0] == pytest.approx(0.0, abs=1e-6) and ent[1] == pytest.approx(0.0, abs=1e-6)
    assert ent[2] == pytest.approx(1.0, abs=1e-5)                   # uniform over the real keys: the maximum


def test_key_share_and_head_roles():
    L = 5
    real = torch.ones(1, L, dtype=torch.bool)
    last = torch.zeros(1, L, dtype=torch.bool)
    last[0, -1] = True                                              # say, the <eos> token
    share = key_share(patterns(L), real, last)
    assert torch.allclose(share, torch.tensor([1 / L, 0.0, 1 / L]))
    names, table = head_roles(patterns(L), real, {"<eos>": last})
    assert names == ["previous", "itself", "next", "<eos>"] and table.shape == (3, 4)
    assert torch.allclose(table[1, :3], torch.tensor([(L - 1) / L, 1 / L, 0.0]))
    assert torch.allclose(table[:, 3], share)


def test_on_recorded_weights_rows_sum_to_one():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4).eval()
    x = torch.randn(2, 7, 16)
    real = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    with torch.no_grad(), record_attention(mha) as w:
        mha(x, mask=real[:, None, None, :])
    prof = offset_profile(w[""], real, window=6)                    # every offset covered: rows sum to 1
    assert torch.allclose(prof.sum(1), torch.ones(4), atol=1e-5)
    ent = attention_entropy(w[""], real, real)
    assert ((ent > 0) & (ent <= 1 + 1e-6)).all()


def test_bad_inputs_are_refused():
    real = torch.ones(1, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match="weights"):
        offset_profile(torch.ones(5, 5), real)
    with pytest.raises(ValueError, match="real masks"):
        offset_profile(patterns(5), torch.ones(1, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="boolean"):
        offset_profile(patterns(5), torch.ones(1, 5))
    with pytest.raises(ValueError, match="window"):
        offset_profile(patterns(5), real, window=-1)
    with pytest.raises(ValueError, match="self-attention"):
        offset_profile(torch.ones(1, 1, 5, 3) / 3, real)
