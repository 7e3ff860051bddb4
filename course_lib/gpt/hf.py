"""Loading a Hugging Face GPT-2 checkpoint (config.json + model.safetensors) into the course's GPT."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from .model import GPT, GPTConfig

_HF_TRANSPOSED = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def from_hf(path: str | Path, device: torch.device | str = "cpu") -> GPT:
    """Load a Hugging Face GPT-2-format checkpoint directory (config.json + model.safetensors) into `GPT`.

    HF stores these four projections as `Conv1D` with (in, out) weights, so they are transposed on the way in.
    """
    path = Path(path)
    config_file, weights_file = path / "config.json", path / "model.safetensors"
    for f in (config_file, weights_file):
        if not f.exists():
            raise FileNotFoundError(f"{path} is not a GPT-2 checkpoint directory: {f.name} is missing")
    hf = json.loads(config_file.read_text(encoding="utf-8"))
    if hf.get("model_type") != "gpt2":
        raise ValueError(f"{config_file} describes a {hf.get('model_type')!r} model, expected 'gpt2'")
    # what this class implements; a checkpoint that needs anything else is refused, not loaded wrongly
    implemented = {"activation_function": ("gelu_new",), "layer_norm_epsilon": (1e-5,), "scale_attn_weights": (True,),
                   "scale_attn_by_inverse_layer_idx": (False,), "n_inner": (None, 4 * hf["n_embd"])}
    for key, allowed in implemented.items():
        value = hf.get(key, allowed[0])
        if value not in allowed:
            raise ValueError(f"{key}={value!r} is not supported by course_lib.gpt.model (it implements {allowed[0]!r})")
    cfg = GPTConfig(vocab_size=hf["vocab_size"], block_size=hf["n_positions"], n_layer=hf["n_layer"],
                    n_head=hf["n_head"], n_embd=hf["n_embd"], dropout=0.0, bias=True)
    state = {}
    for key, value in load_file(str(weights_file)).items():
        key = key.removeprefix("transformer.")
        if key.endswith((".attn.bias", ".attn.masked_bias")) or key == "lm_head.weight":
            continue  # old causal-mask buffers; the head is tied to wte
        state[key] = value.t() if key.endswith(_HF_TRANSPOSED) else value
    model = GPT(cfg)
    state["lm_head.weight"] = state["wte.weight"]
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()
