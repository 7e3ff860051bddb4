"""Lesson 07: BERT, masked-language modelling, the real MiniLM, LoRA.
"""
from .lora import (LoRALinear, add_lora, merge_lora)
from .minilm import (PACKAGE, WEIGHTS_SHA256, MAX_LEN, minilm_dir, verify_weights, load_minilm,
                     sentence_embeddings)
from .mlm import (IGNORE, mask_tokens, ordinary_ids, clean_wikitext, token_stream, mlm_batch,
                  mlm_batches_by_step, mlm_loss, evaluate_mlm, fill_mask, length_bucketed_batches,
                  classification_batches_by_step, classify_loss, predict, accuracy_on, fit_probe)
from .model import (BertConfig, Embeddings, EncoderLayer, BERT, hf_to_ours, mean_pool)
from .word_vectors import (ANALOGY_PAIRS, analogy_questions, whole_word_mask, nearest_tokens, solve_analogies,
                           analogy_accuracy)
