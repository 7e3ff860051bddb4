"""course_lib.gpt.model: shapes, causality, the KV cache, checkpoints, and a Hugging Face GPT-2 oracle."""
import math

import pytest
import torch

from course_lib import gpt
from course_lib.gpt.model import GPT, GPTConfig
from course_lib.recipes.gpt import BabyGPTRecipe
from course_lib.text import ByteBPE, CharTokenizer

TINY = dict(vocab_size=37, block_size=16, n_layer=2, n_head=2, n_embd=16)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return GPT(GPTConfig(**TINY)).eval()


def test_shapes_loss_at_init_and_hidden(model):
    idx, targets = torch.randint(37, (2, 3, 10))
    logits, loss = model(idx, targets)
    assert logits.shape == (3, 10, 37)
    assert model(idx).shape == (3, 10, 37)
    assert model.hidden(idx).shape == (3, 10, 16)
    # small initial weights -> nearly uniform predictions -> loss close to ln(vocab)
    assert abs(loss.item() - math.log(37)) < 0.1
    torch.testing.assert_close(model.lm_head(model.hidden(idx)), logits)


def test_future_tokens_do_not_change_the_past(model):
    idx = torch.randint(37, (2, 12))
    changed = idx.clone()
    changed[:, 7:] = (changed[:, 7:] + 1) % 37
    a, b = model(idx), model(changed)
    torch.testing.assert_close(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7], b[:, 7])


def test_weight_tying_and_parameter_count():
    cfg = GPTConfig.sized("baby", vocab_size=65)
    m = GPT(cfg)
    assert m.lm_head.weight is m.wte.weight
    d, L = cfg.n_embd, cfg.n_layer
    # per block: qkv 3d^2 + proj d^2 + mlp 8d^2 + two LayerNorm weights (no biases in this preset)
    expected = 65 * d + L * (12 * d * d + 2 * d) + d
    assert m.num_params() == expected
    assert m.num_params(non_embedding=False) == expected + cfg.block_size * d
    assert round(m.num_params() / 1e6, 2) == 0.80   # nanoGPT prints "number of parameters: 0.80M"


def test_kv_cache_matches_full_forward(model):
    idx = torch.randint(37, (2, 16))
    full = model(idx)
    cache = model.new_cache(2)
    pieces = [model(idx[:, :5], cache=cache)]             # prefill
    pieces += [model(idx[:, t:t + 1], cache=cache) for t in range(5, 9)]   # one token at a time
    pieces.append(model(idx[:, 9:], cache=cache))          # a chunk after a cache: needs the offset mask
    torch.testing.assert_close(torch.cat(pieces, 1), full, atol=1e-5, rtol=1e-5)
    assert cache.pos == 16


def test_too_long_input_is_a_clear_error(model):
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))
    cache = model.new_cache(1)
    model(torch.zeros(1, 16, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 1, dtype=torch.long), cache=cache)


def test_bad_config_and_preset_raise():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=10, n_head=4)
    with pytest.raises(ValueError, match="dropout"):
        GPTConfig(dropout=1.5)
    with pytest.raises(ValueError, match="no GPT size 'huge'"):
        GPTConfig.sized("huge")
    run = BabyGPTRecipe.preset("lesson")
    cfg, batch = run.train_config(), run.batch
    assert (batch, cfg.steps, cfg.lr, cfg.min_lr, cfg.warmup, cfg.betas) == (12, 2000, 1e-3, 1e-4, 100, (0.9, 0.99))
    baby = run.model_config()
    assert baby == GPTConfig.sized("baby")
    assert (baby.n_layer, baby.n_head, baby.n_embd, baby.block_size, baby.dropout) == (4, 4, 128, 64, 0.0)


def test_dropout_only_in_training():
    torch.manual_seed(0)
    m = GPT(GPTConfig(**TINY, dropout=0.5))
    idx = torch.randint(37, (2, 8))
    m.train()
    assert not torch.allclose(m(idx), m(idx))
    m.eval()
    torch.testing.assert_close(m(idx), m(idx))


@pytest.mark.parametrize("make_tok", [lambda: CharTokenizer.fit("hello world"),
                                      lambda: ByteBPE.train("hello world " * 20, 260)])
def test_save_and_load_roundtrip(tmp_path, make_tok):
    tok = make_tok()
    torch.manual_seed(0)
    model = GPT(GPTConfig(**{**TINY, "vocab_size": len(tok)})).eval()
    path = gpt.save(model, tmp_path / "m.safetensors", tokenizer=tok, val_loss=1.5)
    loaded, tok2, meta = gpt.load(path)
    idx = torch.randint(len(tok), (1, 9))
    torch.testing.assert_close(loaded(idx), model(idx))
    assert loaded.cfg == model.cfg and meta == {"val_loss": 1.5}
    assert tok2.encode("hello") == tok.encode("hello")
    with pytest.raises(FileNotFoundError):
        gpt.load(tmp_path / "missing.safetensors")


def test_a_checkpoint_with_altered_bytes_or_a_foreign_tokenizer_is_refused(tmp_path, model):
    from course_lib.core.checkpoints import CheckpointError
    path = gpt.save(model, tmp_path / "m.safetensors", tokenizer=CharTokenizer.fit("hello world"))
    gpt.load(path)                                                   # 8 tokens in a 37-row table: allowed
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF                                                  # flip one byte of the last tensor
    (tmp_path / "flipped.safetensors").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="flipped.safetensors.*altered or damaged"):
        gpt.load(tmp_path / "flipped.safetensors")
    (tmp_path / "cut.safetensors").write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cut.safetensors: truncated or not a course checkpoint"):
        gpt.load(tmp_path / "cut.safetensors")
    big = gpt.save(model, tmp_path / "big.safetensors", tokenizer=ByteBPE.train("hello world " * 20, 260))
    with pytest.raises(CheckpointError, match="260 tokens but the model's vocab_size is only 37"):
        gpt.load(big)


# ---- the oracle: a randomly initialised transformers GPT-2, saved to disk, loaded by from_hf -----------

@pytest.fixture(scope="module")
def hf_checkpoint(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=101, n_positions=24, n_embd=32, n_layer=2, n_head=4,
                                     bos_token_id=0, eos_token_id=0, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    hf = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():   # make LayerNorms and biases non-trivial so a mis-mapped weight cannot hide
        for p in hf.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("hf_gpt2")
    hf.save_pretrained(path)
    assert (path / "model.safetensors").exists()
    return hf, path


def test_from_hf_matches_transformers_logits_and_greedy_tokens(hf_checkpoint):
    from course_lib.gpt.generation import generate

    hf, path = hf_checkpoint
    ours = gpt.from_hf(path)
    idx = torch.randint(101, (2, 20))
    with torch.no_grad():
        theirs = hf(idx).logits
    assert (ours(idx) - theirs).abs().max().item() <= 1e-4
    prompt = idx[:1, :4]
    hf_tokens = hf.generate(prompt, max_new_tokens=16, do_sample=False, pad_token_id=0,
                            attention_mask=torch.ones_like(prompt))
    assert torch.equal(generate(ours, prompt, 16, temperature=0).tokens, hf_tokens)


def test_from_hf_rejects_what_it_cannot_load(hf_checkpoint, tmp_path):
    import json

    _, path = hf_checkpoint
    with pytest.raises(FileNotFoundError, match="config.json"):
        gpt.from_hf(tmp_path)
    config = json.loads((path / "config.json").read_text())
    (tmp_path / "model.safetensors").write_bytes((path / "model.safetensors").read_bytes())
    for change in ({"model_type": "bert"}, {"activation_function": "relu"}):
        (tmp_path / "config.json").write_text(json.dumps({**config, **change}))
        with pytest.raises(ValueError):
            gpt.from_hf(tmp_path)
