"""Lesson 08: what emerges. An attention-only Transformer with per-head patterns and ablation, the induction
task and its scores, in-context learning measurements, word completion scored smooth and sharp.
"""
from .attention_only import (AttnOnlyConfig, Run, AttentionLayer, AttnOnlyTransformer)
from .completion import (completion_items, Completion, exact_from_correct, word_completion)
from .in_context import (per_position_loss, icl_score, repeat_losses, FewShotBatch, few_shot_batch,
                         few_shot_batches, few_shot_accuracy)
from .induction import (IGNORE, InductionBatch, induction_batch, induction_batches, repeated_tokens,
                        prefix_matching_score, copying_score, previous_token_score, masked_loss,
                        evaluate_induction, Cliff, cliff, steepest_rise)
