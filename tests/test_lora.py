"""LoRA (lesson 07): starts as the identity change, trains only the adapters, merges to the same function."""
import pytest
import torch
import torch.nn as nn

from course_lib.bert.model import BERT, BertConfig
from course_lib.bert.lora import LoRALinear, add_lora, merge_lora
from course_lib.core.parameters import count_parameters


def small_bert():
    torch.manual_seed(0)
    return BERT(BertConfig(vocab_size=60, max_len=16, d_model=32, n_layers=2, n_heads=4, d_ff=64, dropout=0.0,
                           attn_dropout=0.0)).eval()


def test_lora_linear_starts_equal_and_merges_exactly():
    torch.manual_seed(0)
    base = nn.Linear(12, 7)
    x = torch.randn(5, 12)
    want = base(x)
    lora = LoRALinear(base, rank=3, alpha=6)
    torch.testing.assert_close(lora(x), want)                 # B = 0: no change at the start
    with torch.no_grad():
        lora.lora_B.normal_()
    moved = lora(x)
    assert not torch.allclose(moved, want)
    delta = 2.0 * x @ lora.lora_A.T @ lora.lora_B.T            # scale = alpha / rank = 2
    torch.testing.assert_close(moved, want + delta)
    merged = lora.merged()
    assert type(merged) is nn.Linear
    torch.testing.assert_close(merged(x), moved, atol=1e-5, rtol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="rank"):
        LoRALinear(nn.Linear(4, 4), rank=5)
    with pytest.raises(ValueError, match="nn.Linear"):
        LoRALinear(nn.Conv1d(4, 4, 1))
    with pytest.raises(ValueError, match="nothing to adapt"):
        add_lora(small_bert(), targets=("no_such_layer",))


def test_add_lora_trains_only_adapters_and_head_then_merged_bert_gives_same_outputs():
    model = small_bert()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    wrapped = add_lora(model, targets=("q_proj", "v_proj"), rank=4, alpha=8, train=("classifier",))
    assert wrapped == [f"layers.{i}.attn.{p}" for i in range(2) for p in ("q_proj", "v_proj")]
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"layers.{i}.attn.{p}.lora_{m}" for i in range(2) for p in ("q_proj", "v_proj")
                         for m in "AB"} | {"classifier.weight", "classifier.bias"}
    n_train, n_all = count_parameters(model, trainable_only=True), count_parameters(model)
    assert n_train == 2 * 2 * 4 * (32 + 32) + 32 * 2 + 2 and n_all > n_train

    ids = torch.randint(5, 60, (4, 10))
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    for _ in range(3):
        loss = model.classify(ids).logsumexp(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = model.state_dict()
    frozen_same = [k for k in before if k.replace(".q_proj.", ".q_proj.base.").replace(".v_proj.", ".v_proj.base.")
                   in after and torch.equal(before[k], after[k.replace(".q_proj.", ".q_proj.base.")
                                                              .replace(".v_proj.", ".v_proj.base.")])]
    assert set(before) - set(frozen_same) == {"classifier.weight", "classifier.bias"}
    with torch.no_grad():
        adapted = model.classify(ids)
        assert merge_lora(model) == 4
        assert not any(isinstance(m, LoRALinear) for m in model.modules())
        torch.testing.assert_close(model.classify(ids), adapted, atol=1e-5, rtol=1e-5)
    assert set(model.state_dict()) == set(before)              # a plain BERT again: saves and loads as one
