"""Greedy and beam search (course_lib.translation.decoding) on scripted models whose best answer is known, and on the
real Seq2Seq models: beam 1 == greedy, <eos> and the length cap stop decoding, beams reorder the state."""
import math

import pytest
import torch

from course_lib.translation.decoding import beam_search, greedy, map_tensors
from course_lib.translation.seq2seq import Seq2Seq, Seq2SeqConfig

PAD, BOS, EOS, A, B = 0, 1, 2, 3, 4


class Markov:
    """A protocol model whose next-token probabilities depend only on the last token: table[last] -> probs.
    Its state is the sum of each row's tokens so far, so a state that beam search failed to reorder along
    with the tokens would be caught."""

    def __init__(self, table: dict[int, dict[int, float]], vocab: int = 5):
        self.logp = torch.full((vocab, vocab), -1e9)
        for last, probs in table.items():
            for tok, p in probs.items():
                self.logp[last, tok] = math.log(p)

    def encode(self, src, src_mask):
        return {"src": src.float()}

    def decode_step(self, tokens, state, memory, src_mask):
        if state is not None:
            assert torch.equal(state, tokens[:, :-1].sum(1)), "state rows do not follow their tokens"
        return self.logp[tokens[:, -1]], tokens.sum(1)


def _src(batch=1, length=3):
    return torch.full((batch, length), 5), torch.ones(batch, length, dtype=torch.bool)


def test_greedy_stops_at_eos_and_drops_it():
    model = Markov({BOS: {A: 0.9, EOS: 0.1}, A: {B: 0.8, EOS: 0.2}, B: {EOS: 0.7, A: 0.3}})
    assert greedy(model, *_src(), BOS, EOS, max_len=10) == [[A, B]]


def test_decoding_stops_at_the_length_cap():
    model = Markov({BOS: {A: 0.99, B: 0.01}, A: {A: 0.99, B: 0.01}, B: {B: 1.0}})   # never says <eos>
    assert greedy(model, *_src(2), BOS, EOS, max_len=4) == [[A] * 4] * 2
    assert beam_search(model, *_src(2), BOS, EOS, max_len=4, beam=3) == [[A] * 4] * 2


def test_beam_finds_the_better_sentence_greedy_misses():
    # greedy takes A (0.6) and then stops: p = 0.6 * 0.5 = 0.30; B then <eos> has p = 0.4 * 0.99 = 0.396
    model = Markov({BOS: {A: 0.6, B: 0.4}, A: {EOS: 0.5, A: 0.25, B: 0.25}, B: {EOS: 0.99, A: 0.01}})
    assert greedy(model, *_src(), BOS, EOS, max_len=5) == [[A]]
    assert beam_search(model, *_src(), BOS, EOS, max_len=5, beam=2) == [[B]]
    assert beam_search(model, *_src(), BOS, EOS, max_len=5, beam=1) == [[A]]


def test_length_normalisation_changes_the_winner():
    # [] scores log 0.4 = -0.92; [A] scores 2 log 0.6 = -1.02 in total but -0.51 per token
    model = Markov({BOS: {EOS: 0.4, A: 0.6}, A: {EOS: 0.6, B: 0.4}, B: {EOS: 1.0}})
    assert beam_search(model, *_src(), BOS, EOS, max_len=5, beam=2, alpha=0.0) == [[]]
    assert beam_search(model, *_src(), BOS, EOS, max_len=5, beam=2, alpha=1.0) == [[A]]


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("attention", [False, True])
def test_beam_one_equals_greedy_on_real_models(cell, attention):
    for seed in range(4):
        torch.manual_seed(seed)
        model = Seq2Seq(Seq2SeqConfig(src_vocab=20, tgt_vocab=15, embed=8, hidden=16, cell=cell,
                                      attention=attention)).eval()
        src = torch.randint(4, 20, (6, 7))
        mask = torch.ones_like(src, dtype=torch.bool)
        mask[3:, 5:] = False
        src = src.masked_fill(~mask, 0)
        g = greedy(model, src, mask, BOS, EOS, max_len=9)
        assert beam_search(model, src, mask, BOS, EOS, max_len=9, beam=1) == g
        assert all(len(row) <= 9 and EOS not in row for row in g)


def test_bad_arguments_are_clear_errors():
    model = Markov({BOS: {EOS: 1.0}})
    src, mask = _src()
    with pytest.raises(ValueError, match="max_len"):
        greedy(model, src, mask, BOS, EOS, max_len=0)
    with pytest.raises(ValueError, match="same shape"):
        greedy(model, src, mask[:, :2], BOS, EOS, max_len=3)
    with pytest.raises(ValueError, match="beam"):
        beam_search(model, src, mask, BOS, EOS, max_len=3, beam=0)


def test_map_tensors_keeps_structure():
    tree = {"a": (torch.arange(3), None), "b": [torch.ones(3, 2)], "n": 7}
    out = map_tensors(tree, lambda t: t[:2])
    assert out["a"][0].tolist() == [0, 1] and out["a"][1] is None and out["b"][0].shape == (2, 2)
    assert out["n"] == 7 and isinstance(out["a"], tuple) and isinstance(out["b"], list)
