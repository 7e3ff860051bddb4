import os

import pytest
import torch
import torch.nn.functional as F

from course_lib.rlhf.judge import JudgeConfig, SentimentJudge, words


def hand_judge() -> SentimentJudge:
    return SentimentJudge(["good", "bad", "the"], torch.tensor([2.0, -3.0, 0.0]), bias=0.5,
                          known_words=["thee", "the"], nonword_penalty=1.0, repeat_penalty=0.25)


def test_words_lowercases_and_drops_a_word_cut_at_the_end():
    assert words("Good, my LORD! thee") == ["good", "my", "lord"]
    assert words("Good, my LORD! thee.") == ["good", "my", "lord", "thee"]
    assert words("") == []


def test_score_is_sentiment_of_distinct_words_minus_penalties():
    j = hand_judge()
    # good (+2) bad (-3) bias 0.5; "xyzzy" is not a word (-1); the second "good" is a repeat (-0.25)
    assert j.score(["good bad xyzzy good the "]).item() == pytest.approx(0.5 + 2 - 3 - 1 - 0.25)
    assert j.score(["good good good good "]).item() == pytest.approx(0.5 + 2 - 3 * 0.25)
    assert j.score(["thee the "]).item() == pytest.approx(0.5)


def test_explain_adds_up_to_the_score():
    j = hand_judge()
    text = "the good, the bad and thee. "
    parts = j.explain(text)
    assert [w for w, _ in parts] == words(text)
    assert j.bias + sum(c for _, c in parts) == pytest.approx(j.score([text]).item())


def test_score_refuses_a_bare_string():
    with pytest.raises(ValueError, match="list of texts"):
        hand_judge().score("good")


def test_fit_learns_the_sign_of_words_on_a_toy_corpus():
    labelled = [("a truly wonderful film", 1), ("wonderful and fun", 1), ("fun fun", 1),
                ("a dull awful mess", 0), ("awful", 0), ("dull and slow", 0)] * 20
    j = SentimentJudge.fit(labelled, "wonderful awful", JudgeConfig(epochs=20, lr=0.1, min_count=1))
    pos, neg = j.top_words(2)
    assert {w for w, _ in pos} <= {"wonderful", "fun", "truly"}
    assert {w for w, _ in neg} <= {"awful", "dull", "mess", "slow"}
    assert j.accuracy(labelled) == 1.0


def test_fit_refuses_empty_data():
    with pytest.raises(ValueError, match="labelled"):
        SentimentJudge.fit([], "text")


@pytest.mark.skipif(not os.environ.get("COURSE_DATA_MIRROR") and not (
        __import__("course_lib.core.paths").core.paths.data_dir() / "sst2" / "train.tsv").exists(),
                    reason="SST-2 not available (set COURSE_DATA_MIRROR)")
def test_sst2_judge_reaches_80_percent_and_reads_shakespeare_sensibly():
    from course_lib.core import data

    j = SentimentJudge.fit(data.load_sst2("train"), "thee thou shalt villain", JudgeConfig(epochs=1))
    assert j.accuracy(data.load_sst2("dev")) >= 0.80
    happy, grim = j.score(["O, I do love thee, sweet and gentle friend, my joy.",
                           "Villain, thou shalt die a foul and bloody death."]).tolist()
    assert happy > 2 and grim < 0


# ---- the second judge: log-likelihood under an independent language model ----------------------------------

class _ByteTokenizer:
    def __init__(self, bos_id=None):
        self.bos_id = bos_id

    def encode(self, text, specials=True):
        return [1 + (b % 200) for b in text.encode()]


def _tiny_llama():
    from course_lib.gpt.llama import Llama, LlamaConfig
    torch.manual_seed(0)
    return Llama(LlamaConfig.preset("tiny")).eval()


def test_language_model_judge_sums_token_logprobs_and_pads_without_leaking():
    from course_lib.rlhf.judge import LanguageModelJudge
    model = _tiny_llama()
    judge = LanguageModelJudge(model, _ByteTokenizer(bos_id=0), batch=3)
    texts = ["thou art", "a much longer line of text, padded in its batch", "ok", "the same words", "x y"]
    batched = judge.score(texts)
    for text, got in zip(texts, batched.tolist()):
        ids = torch.tensor([[0] + _ByteTokenizer().encode(text)])
        with torch.no_grad():
            want = F.log_softmax(model(ids[:, :-1]), -1).gather(-1, ids[:, 1:, None]).sum().item()
        assert got == pytest.approx(want, abs=1e-4)        # the same alone as inside a padded batch
    assert batched.shape == (5,) and (batched < 0).all()


def test_language_model_judge_scores_the_first_token_only_with_a_bos():
    from course_lib.rlhf.judge import LanguageModelJudge
    model = _tiny_llama()
    with_bos = LanguageModelJudge(model, _ByteTokenizer(bos_id=0)).score(["abc"]).item()
    without = LanguageModelJudge(model, _ByteTokenizer(bos_id=None)).score(["abc"]).item()
    assert with_bos < without < 0          # one more (negative) log-probability term with the BOS


def test_language_model_judge_refuses_bad_input():
    from course_lib.rlhf.judge import LanguageModelJudge
    judge = LanguageModelJudge(_tiny_llama(), _ByteTokenizer(bos_id=None))
    with pytest.raises(ValueError, match="list of texts"):
        judge.score("thou")
    with pytest.raises(ValueError, match="fewer than 2 tokens"):
        judge.score(["ok", "a"])
    with pytest.raises(ValueError, match="batch"):
        LanguageModelJudge(_tiny_llama(), _ByteTokenizer(), batch=0)
