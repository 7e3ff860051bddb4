"""Turning text into tokens: char and word vocabularies, byte-level BPE (06), WordPiece (07), a GGUF file's BPE
(09), language-model batches.
"""
from .bpe import (GPT2_PATTERN, KNOWN_PATTERNS, ByteBPE)
from .gguf_tokenizer import (bytes_to_unicode, GGUFTokenizer)
from .lm_data import (window_batch, batches_by_step, lm_loss, evaluate_lm, bits_per_char, uniform_loss,
                      evaluate_lm_full)
from .tokenizers import (SPECIALS, Vocab, read_json, CharTokenizer, WordVocab, pad_batch)
from .wordpiece import (BERT_SPECIALS, WordPiece)
