"""Lesson 03's look inside the reversal task: token accuracy by output position."""
import pytest
import torch

from course_lib.recipes import ReversalRecipe
from course_lib.translation import (Seq2Seq, accuracy_by_position, reversal_accuracy, reversal_accuracy_by_position,
                                    reversal_outputs)


def test_accuracy_by_position_known_answer():
    targets = [[1, 2, 3], [4, 5, 6]]
    outputs = [[1, 2, 0], [4, 0]]                     # the second output stops early: position 3 counts as wrong
    assert accuracy_by_position(outputs, targets) == [1.0, 0.5, 0.0]
    assert accuracy_by_position([[1, 2, 3, 9]], [[1, 2, 3]]) == [1.0, 1.0, 1.0]   # extra symbols are not scored
    with pytest.raises(ValueError, match="same length"):
        accuracy_by_position([[1], [1, 2]], [[1], [1, 2]])
    with pytest.raises(ValueError, match="one output per target"):
        accuracy_by_position([[1]], [[1], [2]])


def test_by_position_agrees_with_exact_match_and_teacher_forcing():
    cfg = ReversalRecipe(n_symbols=4, min_len=2, max_len=6, eval_examples=64, embed=8, hidden=16)
    torch.manual_seed(0)
    model = Seq2Seq(cfg.model_config(attention=False))
    length = 5
    greedy = reversal_accuracy_by_position(model, cfg, length, "cpu")
    forced = reversal_accuracy_by_position(model, cfg, length, "cpu", teacher_forced=True)
    assert len(greedy) == len(forced) == length
    assert greedy[0] == pytest.approx(forced[0])          # step 1 is fed <bos> either way: the same prediction
    assert reversal_accuracy(model, cfg, length, "cpu") <= min(greedy) + 1e-9
    out, targets = reversal_outputs(model, cfg, length, "cpu", teacher_forced=True)
    assert len(out) == len(targets) == cfg.eval_examples
    assert all(len(o) == length for o in out) and all(len(t) == length for t in targets)
