"""Lessons 03-04: the eng-fra pipeline, seq2seq with and without additive attention, greedy and beam
decoding, the reversal task.
"""
from .additive_attention import (AdditiveAttention, UniformAttention)
from .decoding import (EncoderDecoder, map_tensors, greedy, beam_search)
from .pipeline import (normalize, groups, split_of, load_pairs, TranslationConfig, make_splits, collate,
                       TranslationReport, TranslationData)
from .reversal import (ReversalTask, reversal_batch, reversal_batches_by_step, accuracy_by_position,
                       reversal_outputs, reversal_accuracy, reversal_accuracy_by_position)
from .seq2seq import (Seq2SeqConfig, Memory, Encoder, Decoder, AttentionDecoder, Seq2Seq, seq2seq_loss,
                      mean_loss)
