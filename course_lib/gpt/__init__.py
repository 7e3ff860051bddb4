"""Lesson 06 (and 08-10): the GPT, generation with a KV cache, checkpoints, Hugging Face GPT-2 loading; lesson 09:
the modern Llama-style decoder (`llama`) and reading a real one from a GGUF file (`gguf_model`).
"""
from .checkpoint import (Loaded, save, load)
from .generation import (Generation, filter_logits, next_token, generate, token_logprobs, distinct_n,
                         repetition)
from .hf import (from_hf)
from .model import (GPTConfig, KVCache, CausalSelfAttention, MLP, Block, GPT)
from .gguf_model import (GGUFError, smollm2_path, open_gguf, dequantize_q8_0, dequantize_q4_1, dequantize,
                         unpermute_rope_rows, permute_rope_rows, config_from_metadata, state_dict_from_gguf, LoadInfo,
                         load_gguf)
# llama's KVCache, Attention and Block stay qualified (course_lib.gpt.llama.*): the GPT has its own of each.
from .llama import (LlamaConfig, RMSNorm, rope_cos_sin, rotate_half, apply_rope, SwiGLU, Llama, rope_interleaved)
