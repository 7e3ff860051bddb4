"""WordPiece (lesson 07) against Hugging Face `tokenizers` on BERT's real uncased vocabulary: every SST-2 dev
sentence, odd Unicode, and the trimmed vocabularies a small model uses."""
import pytest
from tokenizers import BertWordPieceTokenizer

from course_lib.core import data
from course_lib.bert.minilm import minilm_dir
from course_lib.text.tokenizers import pad_batch
from course_lib.text.wordpiece import BERT_SPECIALS as SPECIALS, WordPiece


@pytest.fixture(scope="module")
def vocab_path():
    return minilm_dir() / "vocab.txt"


@pytest.fixture(scope="module")
def ours(vocab_path):
    return WordPiece.from_file(vocab_path)


@pytest.fixture(scope="module")
def hf(vocab_path):
    return BertWordPieceTokenizer(str(vocab_path), lowercase=True)


def test_every_sst2_dev_sentence_matches_hf_tokenizers(ours, hf):
    dev = data.load_sst2("dev")
    assert len(dev) == 872
    mismatches = [s for s, _ in dev if ours.encode(s) != hf.encode(s).ids]
    assert mismatches == []


@pytest.mark.parametrize("text", [
    "Unaffable! The café's naïve résumé",             # accents stripped, apostrophe split
    "東京 and 北京",                                     # CJK ideographs become words of their own
    "tab\there\nnew\u00a0nbsp\u2003em\u2028line",      # every kind of whitespace
    "ctrl\x00\x07\x7f\u200bchars\ufffd",               # controls and zero-width chars vanish
    "$5.00 + 3^2 ~ x_y {z} `q` @you #tag",             # ASCII symbols count as punctuation
    "«quoted» — dash… ¿qué? ¡sí!",                      # Unicode punctuation
    "İstanbul ÅNGSTRÖM Ǆ ﬁne",                          # case folding + accents
    "x" * 101 + " ok",                                  # over-long word -> [UNK]
    "zzqxjv ☃ 🙂",                                      # no pieces cover it -> [UNK]
])
def test_odd_text_matches_hf_tokenizers(ours, hf, text):
    assert ours.tokenize(text) == hf.encode(text).tokens[1:-1]


def test_pairs_segments_and_truncation(ours, hf):
    a, b = "the quick brown fox jumps", "over the lazy dog"
    enc = hf.encode(a, b)
    assert ours.encode(a, b) == enc.ids
    assert ours.segments(ours.encode(a, b)) == enc.type_ids
    cut = ours.encode(a, b, max_len=8)
    assert len(cut) == 8 and cut[0] == ours.cls_id and cut.count(ours.sep_id) == 2
    with pytest.raises(ValueError, match="no room"):
        ours.encode(a, max_len=1)


def test_decode_glues_pieces(ours):
    ids = ours.encode("Unaffable ideas")
    assert ours.decode(ids) == "unaffable ideas"
    assert ours.decode(ids, skip_specials=False).startswith("[CLS]")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        ours.decode([len(ours)])


def test_vocab_must_hold_the_specials():
    with pytest.raises(ValueError, match="special tokens"):
        WordPiece(["[PAD]", "a", "b"])
    with pytest.raises(ValueError, match="duplicate"):
        WordPiece(list(SPECIALS) + ["a", "a"])


def test_trimmed_vocab_keeps_frequent_words_and_never_unknowns(ours, tmp_path):
    texts = ["the film is charming", "the film is dull", "a charming , dull , strange film"]
    small = ours.trimmed(texts, size=60)
    assert len(small) <= 60 and small.itos[:len(SPECIALS)] == list(SPECIALS)
    for t in texts:                        # frequent words are whole tokens
        assert "film" in small.tokenize(t)
    pieces = small.tokenize("a fresh mcguffin")  # unseen words fall back to pieces of seen characters
    assert "[UNK]" not in pieces and "".join(p.removeprefix("##") for p in pieces) == "afreshmcguffin"
    path = small.save(tmp_path / "vocab.txt")
    assert WordPiece.from_file(path).itos == small.itos
    with pytest.raises(ValueError, match="too small"):
        ours.trimmed(texts, size=10)


def test_pad_batch():
    ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
