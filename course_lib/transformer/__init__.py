"""Lesson 05: scaled dot-product and multi-head attention, masks, positions, the encoder-decoder.
"""
from .attention import (causal_mask, key_mask, padding_mask, check_mask, combine_masks,
                        scaled_dot_product_attention, attend, MultiHeadAttention, as_torch_attention,
                        record_attention)
from .head_roles import (offset_profile, key_share, head_roles, attention_entropy)
from .model import (TransformerConfig, sinusoidal_encoding, FeedForward, EncoderLayer, DecoderLayer,
                    as_torch_layer, Transformer)
