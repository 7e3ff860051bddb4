"""The encoder-decoder of lessons 03 and 04: padding never leaks, the fast teacher-forced path equals the
step-by-step one, teacher forcing's ratio does what it says, bad input fails clearly, and it learns."""
import pytest
import torch

from course_lib.translation.decoding import greedy
from course_lib.recipes.translation import ReversalRecipe
from course_lib.translation.reversal import ReversalTask, reversal_accuracy, reversal_batch, reversal_batches_by_step
from course_lib.translation.seq2seq import Seq2Seq, Seq2SeqConfig, seq2seq_loss
from course_lib.core.train import Trainer, TrainConfig
from course_lib.translation.pipeline import collate

BOS, EOS = 2, 3


def _model(attention=False, cell="gru", seed=0, **kw):
    torch.manual_seed(seed)
    cfg = Seq2SeqConfig(src_vocab=30, tgt_vocab=25, embed=8, hidden=16, cell=cell, attention=attention, **kw)
    return Seq2Seq(cfg).eval()


def _batch(seed=0):
    """Three sentences of lengths 6, 4, 2 (padded to 6) with targets of 4, 2, 3 words."""
    g = torch.Generator().manual_seed(seed)
    sources = [torch.randint(4, 30, (n,), generator=g).tolist() for n in (6, 4, 2)]
    targets = [torch.randint(4, 25, (n,), generator=g).tolist() for n in (4, 2, 3)]
    return collate(sources, targets, pad_id=0, bos_id=BOS, eos_id=EOS)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("attention", [False, True])
def test_padding_changes_nothing_for_the_real_tokens(cell, attention):
    model, b = _model(attention, cell), _batch()
    logits, weights = model(b["src"], b["src_mask"], b["tgt_in"])
    for i, n in enumerate([6, 4, 2]):
        alone, w_alone = model(b["src"][i:i + 1, :n], b["src_mask"][i:i + 1, :n], b["tgt_in"][i:i + 1])
        torch.testing.assert_close(logits[i], alone[0], atol=1e-5, rtol=1e-5)
        if attention:
            torch.testing.assert_close(weights[i, :, :n], w_alone[0], atol=1e-5, rtol=1e-5)
            assert (weights[i, :, n:] == 0).all()
    assert (weights is None) == (not attention)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("attention", [False, True])
def test_teacher_forced_forward_equals_the_decoding_protocol_step_by_step(cell, attention):
    model, b = _model(attention, cell), _batch(1)
    logits, _ = model(b["src"], b["src_mask"], b["tgt_in"])
    memory, state = model.encode(b["src"], b["src_mask"]), None
    for t in range(b["tgt_in"].shape[1]):
        step, state = model.decode_step(b["tgt_in"][:, :t + 1], state, memory, b["src_mask"])
        torch.testing.assert_close(step, logits[:, t], atol=1e-5, rtol=1e-5)


def test_states_are_batch_first():
    for cell in ("gru", "lstm"):
        model = _model(cell=cell, layers=2)
        b = _batch()
        memory = model.encode(b["src"], b["src_mask"])
        states = memory.state if cell == "lstm" else (memory.state,)
        assert all(s.shape == (3, 2, 16) for s in states) and memory.summary.shape == (3, 16)
        assert memory.outputs.shape == (3, 6, 16) and (memory.outputs[2, 2:] == 0).all()


def test_without_teacher_forcing_the_decoder_feeds_itself_its_greedy_guesses():
    model, b = _model(True), _batch(2)
    logits, _ = model(b["src"], b["src_mask"], b["tgt_in"], teacher_forcing=0.0)
    guesses = logits.argmax(-1)
    decoded = greedy(model, b["src"], b["src_mask"], BOS, EOS, max_len=b["tgt_in"].shape[1])
    for row, out in zip(guesses.tolist(), decoded):
        assert out == row[:len(out)]           # same words up to greedy's <eos>


def test_teacher_forcing_ratio_is_used_in_training_mode_only():
    model, b = _model(False, teacher_forcing=0.0), _batch(3)
    forced, _ = model(b["src"], b["src_mask"], b["tgt_in"], teacher_forcing=1.0)
    assert torch.allclose(model(b["src"], b["src_mask"], b["tgt_in"])[0], forced)          # eval: forced
    model.train()
    free, _ = model(b["src"], b["src_mask"], b["tgt_in"])                                # train: ratio 0
    assert not torch.allclose(free, forced)
    torch.testing.assert_close(free, model(b["src"], b["src_mask"], b["tgt_in"], teacher_forcing=0.0)[0])


def test_loss_ignores_padding_and_matches_per_sentence_losses():
    model, b = _model(True), _batch(4)
    loss = seq2seq_loss(model, b)
    total, count = 0.0, 0
    for i in range(3):
        one = {k: v[i:i + 1] for k, v in b.items()}
        n = int((one["tgt_out"] != 0).sum())
        total, count = total + seq2seq_loss(model, one).item() * n, count + n
    assert loss.item() == pytest.approx(total / count, rel=1e-5)


def test_bad_inputs_are_clear_errors():
    model, b = _model(True), _batch()
    with pytest.raises(ValueError, match="no tokens"):
        model.encode(b["src"], torch.zeros_like(b["src_mask"]))
    with pytest.raises(ValueError, match="bool src_mask"):
        model.encode(b["src"], b["src_mask"].long())
    with pytest.raises(ValueError, match="cell"):
        Seq2SeqConfig(cell="rnn")
    with pytest.raises(ValueError, match="even"):
        Seq2SeqConfig(hidden=15)
    with pytest.raises(ValueError, match="teacher_forcing"):
        Seq2SeqConfig(teacher_forcing=1.5)


def test_reversal_batches_are_well_formed_and_reproducible():
    cfg = ReversalTask(n_symbols=5, min_len=2, max_len=6)
    b = reversal_batch(cfg, 4, 5, torch.Generator().manual_seed(0))
    src, tgt_in, tgt_out = b["src"], b["tgt_in"], b["tgt_out"]
    assert src.shape == (4, 6) and (src[:, -1] == EOS).all() and b["src_mask"].all()
    assert torch.equal(tgt_out[:, :5], src[:, :5].flip(1)) and (tgt_out[:, 5] == EOS).all()
    assert (tgt_in[:, 0] == BOS).all() and torch.equal(tgt_in[:, 1:], tgt_out[:, :-1])
    get = reversal_batches_by_step(cfg, seed=1)
    assert torch.equal(get(7)["src"], get(7)["src"])
    assert {get(s)["src"].shape[1] - 1 for s in range(40)} == set(range(2, 7))


def test_attention_model_learns_to_reverse_short_sequences():
    cfg = ReversalRecipe(n_symbols=4, min_len=2, max_len=4, batch_size=32, embed=16, hidden=32)
    torch.manual_seed(0)
    model = Seq2Seq(cfg.model_config(attention=True))
    before = reversal_accuracy(model, cfg, 4, "cpu")
    history = Trainer(model, seq2seq_loss, reversal_batches_by_step(cfg), TrainConfig(steps=150, lr=1e-2),
                      progress=False).fit()
    assert history.losses[-1] < 0.3 * history.losses[0]
    assert before < 0.2 and reversal_accuracy(model, cfg, 4, "cpu") > 0.8


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("layers", [1, 2])
def test_one_direction_encoder_reads_left_to_right_into_a_vector_of_the_same_size(cell, layers):
    """bidirectional=False (lesson 03's control): one RNN of `hidden` units, so c keeps its size; each output sees
    only the tokens read so far, c is the final output at the last real token, and padding still changes nothing."""
    model, b = _model(cell=cell, layers=layers, bidirectional=False), _batch(2)
    bi = _model(cell=cell, layers=layers)
    assert model.encoder.rnn.hidden_size == 16 and not model.encoder.rnn.bidirectional
    assert bi.encoder.rnn.hidden_size == 8 and bi.encoder.rnn.bidirectional
    memory = model.encode(b["src"], b["src_mask"])
    assert memory.summary.shape == bi.encode(b["src"], b["src_mask"]).summary.shape == (3, 16)
    for i, n in enumerate([6, 4, 2]):
        torch.testing.assert_close(memory.summary[i], memory.outputs[i, n - 1], atol=1e-6, rtol=1e-6)
    changed = b["src"].clone()
    changed[0, 3] = 4 if changed[0, 3] != 4 else 5            # a later token of the first sentence
    later = model.encode(changed, b["src_mask"])
    torch.testing.assert_close(later.outputs[0, :3], memory.outputs[0, :3])     # what was read before: unchanged
    assert not torch.allclose(later.summary[0], memory.summary[0])
    bi_memory, bi_later = bi.encode(b["src"], b["src_mask"]), bi.encode(changed, b["src_mask"])
    assert not torch.allclose(bi_later.outputs[0, :3], bi_memory.outputs[0, :3])  # the backward half reads it first
    logits, _ = model(b["src"], b["src_mask"], b["tgt_in"])
    for i, n in enumerate([6, 4, 2]):
        alone, _ = model(b["src"][i:i + 1, :n], b["src_mask"][i:i + 1, :n], b["tgt_in"][i:i + 1])
        torch.testing.assert_close(logits[i], alone[0], atol=1e-5, rtol=1e-5)
    Seq2SeqConfig(hidden=15, bidirectional=False)             # an odd width is fine with one direction
