import pytest

from course_lib.text.tokenizers import BOS, EOS, PAD, SPECIALS, UNK, CharTokenizer, WordVocab


def test_char_round_trip_and_save_load(tmp_path):
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n"
    tok = CharTokenizer.fit(text)
    assert tok.decode(tok.encode(text)) == text
    assert len(tok) == len(set(text))
    tok.save(tmp_path / "v.json")
    again = CharTokenizer.load(tmp_path / "v.json")
    assert again.itos == tok.itos and again.encode(text) == tok.encode(text)


def test_char_unknown_symbol_without_unk_is_a_clear_error():
    tok = CharTokenizer.fit("abc")
    with pytest.raises(ValueError, match="'z'.*no <unk>"):
        tok.encode("abz")


def test_char_unknown_with_unk_and_specials():
    tok = CharTokenizer.fit("abc", specials=SPECIALS)
    assert tok.itos[:4] == [PAD, UNK, BOS, EOS]
    ids = tok.encode("az", bos=True, eos=True)
    assert ids == [tok.bos_id, tok.id("a"), tok.unk_id, tok.eos_id]
    assert tok.decode(ids) == f"a{UNK}"                 # <bos>/<eos> skipped, <unk> kept visible
    assert tok.decode(ids, skip_specials=False) == f"{BOS}a{UNK}{EOS}"


def test_word_vocab_min_freq_and_unk_rate(tmp_path):
    sents = [["the", "cat", "sat"], ["the", "dog", "sat"], ["a", "cat"]]
    vocab = WordVocab.fit(sents, min_freq=2)
    assert "the" in vocab and "cat" in vocab and "dog" not in vocab
    assert vocab.decode(vocab.encode(["the", "dog"])) == ["the", UNK]
    assert vocab.unk_rate(sents) == pytest.approx(2 / 8)
    vocab.save(tmp_path / "w.json")
    assert WordVocab.load(tmp_path / "w.json").itos == vocab.itos
    with pytest.raises(ValueError, match="'word' vocabulary, expected 'char'"):
        CharTokenizer.load(tmp_path / "w.json")


def test_word_vocab_ids_are_stable_and_min_freq_needs_unk():
    a = WordVocab.fit([["b", "a", "a"]])
    b = WordVocab.fit([["a", "b", "a"]])
    assert a.itos == b.itos
    with pytest.raises(ValueError, match="needs <unk>"):
        WordVocab.fit([["a"]], min_freq=2, specials=(PAD,))


def test_decode_rejects_out_of_range_ids():
    tok = CharTokenizer.fit("ab")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([5])
