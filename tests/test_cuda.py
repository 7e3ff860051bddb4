"""The CUDA path: the same models on a GPU give the CPU's answers, bf16 autocast trains, SDPA takes a fused kernel.

Skipped where there is no GPU (CI has none). Run them on a machine that has one:
    pytest tests/test_cuda.py
"""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib.text import lm_data

from course_lib.core import runtime
from course_lib.bert.model import BERT, BertConfig
from course_lib.gpt.generation import generate
from course_lib.gpt.model import GPT, GPTConfig
from course_lib.recurrent.lstm import LSTMCell
from course_lib.recurrent.rnn import copy_cell_into_torch, unroll
from course_lib.core.train import TrainConfig, Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def full_fp32():
    """Compare in true fp32: TF32 matmuls would differ from the CPU by ~1e-3 on their own."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_pick_device_prefers_cuda():
    assert runtime.pick_device().type == "cuda"
    assert runtime.describe(CUDA).startswith("cuda (")


def test_gpt_logits_and_loss_match_cpu():
    torch.manual_seed(0)
    model = GPT(GPTConfig.sized("baby", vocab_size=65)).eval()
    x = torch.randint(65, (4, 64))
    logits_cpu, loss_cpu = model(x, x)
    logits_gpu, loss_gpu = model.to(CUDA)(x.to(CUDA), x.to(CUDA))
    assert (logits_gpu.cpu() - logits_cpu).abs().max() < 1e-4
    assert abs(loss_gpu.item() - loss_cpu.item()) < 1e-5


def test_gpt_kv_cache_and_sampling_on_cuda():
    torch.manual_seed(0)
    model = GPT(GPTConfig.sized("baby", vocab_size=65)).to(CUDA)
    prompt = torch.randint(65, (1, 5), device=CUDA)
    cached = generate(model, prompt, 50, temperature=0.0, use_cache=True)
    plain = generate(model, prompt, 50, temperature=0.0, use_cache=False)
    assert torch.equal(cached.tokens, plain.tokens)
    a = generate(model, prompt, 50, top_k=5, generator=torch.Generator(CUDA).manual_seed(1), logprobs=True)
    b = generate(model, prompt, 50, top_k=5, generator=torch.Generator(CUDA).manual_seed(1), logprobs=True)
    assert torch.equal(a.tokens, b.tokens) and a.tokens.device.type == "cuda"
    assert torch.isfinite(a.logprobs).all() and (a.logprobs <= 0).all()


def test_sdpa_takes_the_flash_kernel_in_bf16():
    # The GPT's attention call (is_causal, head dim 32) must be eligible for FlashAttention on this GPU.
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = (torch.randn(8, 4, 256, 32, device=CUDA, dtype=torch.bfloat16) for _ in range(3))
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):       # raises if the flash kernel cannot run these inputs
        fast = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    with sdpa_kernel(SDPBackend.MATH):
        slow = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True)
    assert (fast.float() - slow).abs().max() < 2e-2


def test_bf16_autocast_training_on_cuda():
    torch.manual_seed(0)
    model = GPT(GPTConfig.sized("baby", vocab_size=65))
    data = torch.arange(4000) % 65                      # a repeating alphabet: easy to learn
    cfg = TrainConfig(steps=150, lr=3e-3, warmup=10, weight_decay=0.1, log_every=10, amp=True)
    history = Trainer(model, lm_data.lm_loss, lm_data.batches_by_step(data, 64, 16), cfg, device=CUDA,
                      name="cuda-amp").fit()
    assert next(model.parameters()).device.type == "cuda"
    assert all(p.dtype == torch.float32 for p in model.parameters())   # master weights stay fp32
    with runtime.autocast(CUDA):
        logits = model(data[:64][None].to(CUDA))
    assert logits.dtype == torch.bfloat16                               # the matmuls really ran in bf16
    assert history.losses[-1] < 0.2 * history.losses[0]


def test_bert_hidden_states_match_cpu():
    torch.manual_seed(0)
    model = BERT(BertConfig.preset("smoke", vocab_size=500)).eval()
    ids = torch.randint(5, 500, (3, 40))
    ids[1, 30:] = 0                                                     # padding
    cpu = model(ids)
    gpu = model.to(CUDA)(ids.to(CUDA)).cpu()
    keep = ids != 0
    assert (gpu[keep] - cpu[keep]).abs().max() < 1e-4


def test_lstm_cell_matches_cudnn():
    torch.manual_seed(0)
    cell = LSTMCell(16, 32).to(CUDA)
    lstm = nn.LSTM(16, 32, batch_first=True).to(CUDA)
    copy_cell_into_torch(cell, lstm)
    x = torch.randn(4, 50, 16, device=CUDA)
    ours, _ = unroll(cell, x)
    theirs, _ = lstm(x)
    assert (ours - theirs).abs().max() < 1e-5
