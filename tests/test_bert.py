"""BERT (lesson 07): our model against Hugging Face `transformers` BERTs with random weights (saved to a temp
folder, loaded by `BERT.from_hf`), MLM masking statistics, and the fine-tuning helpers."""
import json

import pytest
import torch
import transformers

from course_lib.bert.model import BERT, BertConfig, hf_to_ours, mean_pool
from course_lib.recipes.bert import BertRecipe
from course_lib.bert.mlm import (IGNORE, accuracy_on, classification_batches_by_step, clean_wikitext, fill_mask, fit_probe,
                            mask_tokens, mlm_batches_by_step, token_stream)
from course_lib.text.wordpiece import BERT_SPECIALS as SPECIALS, WordPiece

TOL = dict(atol=1e-5, rtol=1e-4)
HF_SMALL = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                max_position_embeddings=40, type_vocab_size=2, hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0)


def randomised(model):
    """Random LayerNorms and biases too (fresh ones are 1 / 0, which would hide a mix-up)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.uniform_(-0.5, 0.5) if name.endswith("bias") else p.uniform_(0.5, 1.5)
    return model.eval()


def saved(model, tmp_path):
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    return tmp_path


def inputs():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 99, (3, 11), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = 0
    segments = torch.zeros_like(ids)
    segments[:, 5:] = 1
    return ids, segments, mask


def test_hidden_states_and_pooler_match_hf_bert_model(tmp_path):
    torch.manual_seed(0)
    hf = randomised(transformers.BertModel(transformers.BertConfig(**HF_SMALL)))
    ours = BERT.from_hf(saved(hf, tmp_path)).eval()
    ids, seg, mask = inputs()
    with torch.no_grad():
        want = hf(input_ids=ids, token_type_ids=seg, attention_mask=mask)
        got = ours(ids, seg, mask)
    real = mask.bool()
    torch.testing.assert_close(got[real], want.last_hidden_state[real], **TOL)
    torch.testing.assert_close(ours.pooled(got), want.pooler_output, **TOL)


def test_mlm_logits_match_hf_bert_for_masked_lm(tmp_path):
    torch.manual_seed(0)
    hf = randomised(transformers.BertForMaskedLM(transformers.BertConfig(**HF_SMALL)))
    ours = BERT.from_hf(saved(hf, tmp_path)).eval()
    ids, seg, mask = inputs()
    with torch.no_grad():
        want = hf(input_ids=ids, token_type_ids=seg, attention_mask=mask).logits
        got = ours.mlm_logits(ours(ids, seg, mask))
    real = mask.bool()
    torch.testing.assert_close(got[real], want[real], **TOL)
    assert ours.mlm_logits(torch.zeros(1, 32)).shape == (1, 99)
    # the output layer *is* the embedding matrix: one tensor, not a copy
    assert ours.embeddings.tokens.weight.data_ptr() == ours.state_dict()["embeddings.tokens.weight"].data_ptr()


def test_classifier_matches_hf_bert_for_sequence_classification(tmp_path):
    torch.manual_seed(0)
    hf = randomised(transformers.BertForSequenceClassification(transformers.BertConfig(**HF_SMALL, num_labels=3)))
    ours = BERT.from_hf(saved(hf, tmp_path), n_classes=3).eval()
    ids, seg, mask = inputs()
    with torch.no_grad():
        torch.testing.assert_close(ours.classify(ids, seg, mask), hf(input_ids=ids, token_type_ids=seg,
                                                                         attention_mask=mask).logits, **TOL)
    with pytest.raises(ValueError, match="classes"):
        BERT.from_hf(tmp_path, n_classes=2)


def test_from_hf_refuses_what_it_cannot_load(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        BERT.from_hf(tmp_path)
    hf = transformers.BertModel(transformers.BertConfig(**{**HF_SMALL, "hidden_act": "relu"}))
    with pytest.raises(ValueError, match="gelu"):
        BERT.from_hf(saved(hf, tmp_path / "relu"))
    with pytest.raises(ValueError, match="unknown BERT parameter"):
        hf_to_ours("encoder.layer.0.attention.self.rotary.weight")
    assert hf_to_ours("bert.embeddings.position_ids") is None


def test_config_is_checked():
    with pytest.raises(ValueError, match="divisible"):
        BertConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="no preset"):
        BertConfig.preset("huge")


def tiny_model(**kw):
    torch.manual_seed(0)
    return BERT(BertConfig(vocab_size=50, max_len=16, d_model=16, n_layers=2, n_heads=2, d_ff=32, dropout=0.0,
                           attn_dropout=0.0, **kw)).eval()


def test_attention_is_bidirectional_and_ignores_padding():
    model = tiny_model()
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    changed = ids.clone()
    changed[0, 3] = 20
    with torch.no_grad():
        h, h2 = model(ids), model(changed)
        padded = model(torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], dim=1))
    assert not torch.allclose(h[0, 1], h2[0, 1])   # an *earlier* token sees the later change (GPT's would not)
    torch.testing.assert_close(padded[:, :5], h, **TOL)   # padding is invisible to real tokens
    with pytest.raises(ValueError, match="batch, time"):
        model(ids[0])
    with pytest.raises(ValueError, match="max_len"):
        model(torch.ones(1, 17, dtype=torch.long))


def test_mask_tokens_follows_bert_proportions():
    torch.manual_seed(0)
    specials = [0, 1, 2, 3, 4]
    ids = torch.randint(5, 1000, (400, 128))
    ids[:, 0], ids[:, -1], ids[:, 100:110] = 2, 3, 0          # [CLS], [SEP], padding: never picked
    inputs_, labels = mask_tokens(ids, specials, mask_id=4, random_ids=torch.arange(5, 1000),
                                  generator=torch.Generator().manual_seed(0))
    picked = labels != IGNORE
    eligible = ~torch.isin(ids, torch.tensor(specials))
    n = int(eligible.sum())
    rate = picked.sum().item() / n
    assert abs(rate - 0.15) < 4 * (0.15 * 0.85 / n) ** 0.5          # within 4 standard deviations
    assert not picked[~eligible].any()
    assert torch.equal(labels[picked], ids[picked])
    assert torch.equal(inputs_[~picked], ids[~picked])                # unpicked tokens are untouched
    k = int(picked.sum())
    masked = (inputs_[picked] == 4).float().mean().item()
    kept = (inputs_[picked] == ids[picked]).float().mean().item()
    randomised_ = 1 - masked - kept
    for got, want in ((masked, 0.8), (randomised_, 0.1 * (1 - 1 / 995)), (kept, 0.1 + 0.1 / 995)):
        assert abs(got - want) < 4 * (want * (1 - want) / k) ** 0.5, (got, want)
    with pytest.raises(ValueError, match="p_mask"):
        mask_tokens(ids, specials, 4, torch.arange(5, 10), p_mask=0.95, p_random=0.1)


def test_mlm_batches_repeat_and_a_batch_can_be_learned():
    tok = WordPiece(list(SPECIALS) + list("abcdefgh"))
    stream = token_stream(tok, ["a b", "c d", "e f", "g h"] * 50)
    get_batch = mlm_batches_by_step(stream, tok, block=12, batch=16, seed=3)
    x, y = get_batch(5)
    assert x.shape == (16, 12) and (x[:, 0] == tok.cls_id).all() and (x[:, -1] == tok.sep_id).all()
    assert torch.equal(get_batch(5)[0], x) and not torch.equal(get_batch(6)[0], x)
    torch.manual_seed(0)
    model = BERT(BertConfig(vocab_size=len(tok), max_len=12, d_model=32, n_layers=1, n_heads=2, d_ff=64,
                            dropout=0.0, attn_dropout=0.0))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    batch = get_batch(0)
    first = model.mlm_loss(*batch)[0].item()
    for _ in range(40):                     # gradients reach every part: one batch is memorised
        loss, extra = model.mlm_loss(*batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first and extra["acc"] == 1.0
    guesses = fill_mask(model, tok, "a b [MASK] d [MASK]", k=3)
    assert len(guesses) == 2 and all(len(g) == 3 for g in guesses)
    assert all(g[0][1] >= g[1][1] >= g[2][1] and sum(p for _, p in g) <= 1 + 1e-6 for g in guesses)
    with pytest.raises(ValueError, match="MASK"):
        fill_mask(model, tok, "no mask here")


def test_clean_wikitext():
    text = " = Title = \n \n The 1 @,@ 000 km @-@ long <unk> road , 2 @.@ 5 m wide \n"
    assert clean_wikitext(text) == ["The 1,000 km-long road , 2.5 m wide"]


def test_classification_batches_cover_each_epoch_once():
    rows = [[2] + [7] * n + [3] for n in range(1, 24)]
    labels = [n % 2 for n in range(1, 24)]
    get_batch = classification_batches_by_step(rows, labels, batch=5, pad_id=0, seed=1)
    seen = []
    for step in range(5):               # ceil(23 / 5) = 5 batches per epoch
        ids, mask, y = get_batch(step)
        assert ids.shape == mask.shape and len(y) == len(ids) <= 5
        seen += mask.sum(1).tolist()
    assert sorted(seen) == sorted(len(r) for r in rows)
    assert torch.equal(get_batch(2)[0], get_batch(2)[0])
    with pytest.raises(ValueError, match="labels"):
        classification_batches_by_step(rows, labels[:-1], 5, 0)


def test_mean_pool_ignores_padding():
    h = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]]])
    assert mean_pool(h, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 2.0]]


def test_hf_config_roundtrip(tmp_path):
    cfg = BertConfig.from_hf(json.loads(transformers.BertConfig(**HF_SMALL).to_json_string()))
    assert (cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.d_ff, cfg.max_len) == (32, 2, 4, 64, 40)


def test_probe_fits_only_the_classifier_and_accuracy_reads_it():
    model = tiny_model(pooling="mean")
    rows = [[2] + [10 + y * 10] * n + [3] for n in range(1, 9) for y in (0, 1)]
    labels = [y for _ in range(1, 9) for y in (0, 1)]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert fit_probe(model, rows, labels, pad_id=0, steps=200, lr=0.05) == 1.0
    assert accuracy_on(model, rows, labels, pad_id=0) == 1.0
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"classifier.weight", "classifier.bias"}


@pytest.mark.parametrize("profile", ["smoke", "lesson", "gpu"])
def test_recipes_fit_their_models(profile):
    r = BertRecipe.preset(profile)
    assert len(r.label_budgets) >= 2 and list(r.label_budgets) == sorted(set(r.label_budgets))
    assert r.transfer_budgets and list(r.transfer_budgets) == sorted(set(r.transfer_budgets))
    assert r.transfer_budgets[0] == r.label_budgets[0]         # both models' few-label rows have the same labels
    cfg = r.finetune_config(lr=1e-4)
    # early stopping: scored every stop_every steps, patience a whole number of scorings, best weights kept
    assert cfg.steps == r.finetune_max_steps and cfg.lr == 1e-4 and cfg.keep_best == "stop_error"
    assert cfg.eval_every == r.stop_every and r.patience % r.stop_every == 0 and r.patience < r.finetune_max_steps
    assert r.finetune_config(7).steps == 7 and r.finetune_config().lr == r.finetune_lr
    assert r.block <= BertConfig.preset(profile).max_len and r.max_sentence <= BertConfig.preset(profile).max_len
    assert r.pretrain_config().steps == r.pretrain_steps and r.minilm_config(lr=1e-3).lr == 1e-3
