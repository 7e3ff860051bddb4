"""Lesson 06 (and 08-10): the GPT, generation with a KV cache, checkpoints, Hugging Face GPT-2 loading.
"""
from .checkpoint import (Loaded, save, load)
from .generation import (Generation, filter_logits, next_token, generate, token_logprobs, distinct_n,
                         repetition)
from .hf import (from_hf)
from .model import (GPTConfig, KVCache, CausalSelfAttention, MLP, Block, GPT)
