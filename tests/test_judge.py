import os

import pytest
import torch

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
