"""Lesson 08: what emerges. An attention-only Transformer with per-head patterns and ablation, the induction
task and its scores, in-context learning measurements, written-out answers scored smooth and sharp; the induction
circuit found and cut in a real pretrained Llama (circuits), and a few-shot task it can only learn in context.
"""
from .attention_only import (AttnOnlyConfig, Run, AttentionLayer, AttnOnlyTransformer)
from .completion import answer_correct, exact_from_correct
from .in_context import (per_position_loss, icl_score, repeat_losses, FewShotBatch, few_shot_batch,
                         few_shot_batches, few_shot_accuracy)
from .induction import (IGNORE, InductionBatch, induction_batch, induction_batches, repeated_tokens,
                        prefix_matching_score, copying_score, previous_token_score, masked_loss,
                        evaluate_induction, Cliff, cliff, steepest_rise)
from .circuits import (AttentionRecorder, attention_from_qk, recomputed_attention, head_scores, top_heads,
                       random_heads, head_means, ablate_heads, copy_losses)
from .word_labels import (LabelPrompts, made_up_words, word_label_prompts, real_positions, label_scores)
from .diagram import draw_induction_circuit
