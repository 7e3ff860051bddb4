"""The eng-fra pipeline: normalisation, the split (fixed, leak-free, the same in every process), batches
with masks, and translation of awkward inputs (empty, all-unknown) without a crash."""
import hashlib
import json
import os
import subprocess
import sys

import pytest
import torch

from course_lib.core import paths

from course_lib.translation import pipeline
from course_lib.translation.seq2seq import Seq2Seq, Seq2SeqConfig
from course_lib.translation.pipeline import (TranslationConfig, TranslationData, collate, groups, make_splits, normalize,
                                    split_of)

HAVE_ENGFRA = bool(os.environ.get("COURSE_DATA_MIRROR")) or (paths.data_dir() / "eng-fra" / "eng-fra.txt").exists()
needs_engfra = pytest.mark.skipif(not HAVE_ENGFRA, reason="eng-fra not available (set COURSE_DATA_MIRROR)")


def test_normalize_french_spaces_accents_punctuation_and_elision():
    assert normalize("Qu'est-ce que c'est\u202f?", "fr") == ["qu'", "est-ce", "que", "c'", "est", "?"]
    assert normalize("J'ai\u00a0payé 14\u2009€ !", "fr") == ["j'", "ai", "payé", "14", "€", "!"]
    assert normalize("«\u00a0Élève\u00a0»,  l’été.", "fr") == ["«", "élève", "»", ",", "l'", "été", "."]


def test_normalize_english_clitics_and_hyphens():
    assert normalize("I don't think it's John's well-known car, Tom.", "en") == \
        ["i", "do", "n't", "think", "it", "'s", "john", "'s", "well-known", "car", ",", "tom", "."]
    assert normalize("", "en") == []
    with pytest.raises(ValueError, match="lang"):
        normalize("hello", "de")


def test_groups_link_pairs_that_share_a_sentence():
    pairs = [("run !", "cours !"), ("run !", "courez !"), ("flee !", "courez !"), ("hi .", "salut .")]
    names = groups(pairs)
    assert names[0] == names[1] == names[2] == "flee !" and names[3] == "hi ."


def test_split_is_a_pure_function_of_seed_and_group():
    assert split_of("hello .", 0, 0.1, 0.1) == split_of("hello .", 0, 0.1, 0.1)
    names = [f"sentence {i}" for i in range(4000)]
    share = sum(split_of(n, 0, 0.1, 0.2) == "test" for n in names) / len(names)
    assert 0.17 < share < 0.23
    assert [split_of(n, 0, 0.1, 0.2) for n in names] != [split_of(n, 1, 0.1, 0.2) for n in names]


def _digest(splits) -> str:
    return hashlib.sha256(json.dumps(splits, ensure_ascii=False).encode()).hexdigest()


@needs_engfra
def test_split_is_identical_in_another_process_and_leak_free():
    code = ("import hashlib, json; from course_lib.translation.pipeline import TranslationConfig, make_splits; "
            "s = make_splits(TranslationConfig.preset('lesson')); "
            "print(hashlib.sha256(json.dumps(s, ensure_ascii=False).encode()).hexdigest())")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}            # a different hash seed must not matter
    other = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    cfg = TranslationConfig.preset("lesson")
    splits = make_splits(cfg)                                   # meanwhile, the same here
    assert other.communicate(timeout=300)[0].strip() == _digest(splits)
    assert len(splits["test"]) > 5000 and len(splits["val"]) == cfg.val_pairs
    train_src = {" ".join(s) for s, _ in splits["train"]}
    train_tgt = {" ".join(t) for _, t in splits["train"]}
    assert not any(" ".join(s) in train_src or " ".join(t) in train_tgt for s, t in splits["test"])


def test_build_caches_the_split_under_build(tmp_build, monkeypatch):
    pairs = [(["le", "chat"], ["the", "cat"]), (["un", "chien"], ["a", "dog"])]
    calls = []
    monkeypatch.setattr(pipeline, "make_splits",
                        lambda cfg: calls.append(cfg) or {"train": pairs, "val": pairs[:1], "test": pairs[1:]})
    cfg = TranslationConfig(min_freq=1)
    first = TranslationData.build(cfg)
    assert len(calls) == 1 and len(list((tmp_build / "cache").glob("eng-fra-split-*.json"))) == 1
    again = TranslationData.build(cfg)                          # read back, not recomputed
    assert len(calls) == 1 and again.train == first.train == pairs and again.test == pairs[1:]
    TranslationData.build(TranslationConfig(min_freq=1, max_len=12))     # another split: another file
    assert len(calls) == 2 and len(list((tmp_build / "cache").glob("eng-fra-split-*.json"))) == 2
    TranslationData.build(cfg, cache=False)
    assert len(calls) == 3


def test_collate_pads_and_masks():
    b = collate([[5, 6, 3], [7, 3]], [[8], [9, 10, 11]], pad_id=0, bos_id=2, eos_id=3)
    assert b["src"].tolist() == [[5, 6, 3], [7, 3, 0]]
    assert b["src_mask"].tolist() == [[True, True, True], [True, True, False]]
    assert b["tgt_in"].tolist() == [[2, 8, 0, 0], [2, 9, 10, 11]]
    assert b["tgt_out"].tolist() == [[8, 3, 0, 0], [9, 10, 11, 3]]
    with pytest.raises(ValueError, match="empty"):
        collate([[]], [[1]], 0, 2, 3)
    with pytest.raises(ValueError, match="one target per source"):
        collate([[1]], [], 0, 2, 3)


def _toy_data(batch_size=2):
    words = ["le", "chat", "noir", "dort", "un", "chien", "blanc", "mange"]
    train = [(words[i:i + n], words[j:j + n]) for n in (1, 2, 3) for i in range(4) for j in range(4)]
    return TranslationData(TranslationConfig(min_freq=1, batch_size=batch_size, max_len=4, buckets=(2, 4)),
                           train, val=[], test=train[:5])


def test_batches_are_reproducible_bucketed_and_cover_an_epoch():
    data = _toy_data()
    get = data.batches_by_step(seed=3)
    n = data.batches_per_epoch
    assert torch.equal(get(5)["src"], get(5)["src"])
    epoch = [get(s) for s in range(n)]
    seen = sorted(tuple(r) for b in epoch for r in b["src"].tolist())
    assert len(seen) == len(data.train)
    assert all(b["src_mask"].sum(1).max() - b["src_mask"].sum(1).min() <= 1 for b in epoch)   # similar lengths
    with pytest.raises(ValueError, match="no training pairs"):
        TranslationData(TranslationConfig(), [], [], [])


def test_empty_and_unknown_sources_translate_without_crashing():
    data = _toy_data()
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(src_vocab=len(data.src_vocab), tgt_vocab=len(data.tgt_vocab), embed=8,
                                  hidden=8, attention=True))
    out = data.translate(model, [[], ["zzz", "qqq"], ["le", "chat"]], beam=2)
    assert len(out) == 3 and all(isinstance(o, list) and len(o) <= data.cfg.max_len + 5 for o in out)
    assert data.encode_source([]) == [data.src_vocab.eos_id]
    assert data.encode_source(["zzz"]) == [data.src_vocab.unk_id, data.src_vocab.eos_id]
    report = data.evaluate(model, data.test)
    assert len(report.hypotheses) == 5 and [b["bucket"] for b in report.by_bucket] == ["1-2"]
    assert 0 <= report.bleu <= 100
