"""Word vectors (lesson 07): analogies and neighbours on embeddings built so the answers are known, and the
course's analogy set checked against BERT's vocabulary."""
import pytest
import torch

from course_lib.bert import (ANALOGY_PAIRS, analogy_accuracy, analogy_questions, nearest_tokens, solve_analogies,
                             whole_word_mask)


def toy_embeddings(n_concepts=6, dims=20):
    """Token 2i is concept i in form A, token 2i+1 the same concept in form B: e_i + f_A and e_i + f_B, with all the
    e's and f's orthonormal, so b - a + c lands exactly on d for every analogy. Norms are all sqrt(2)."""
    eye = torch.eye(dims)
    f_a, f_b = eye[-1], eye[-2]
    rows = []
    for i in range(n_concepts):
        rows += [eye[i] + f_a, eye[i] + f_b]
    return torch.stack(rows)


def test_analogies_on_exact_embeddings_are_all_right():
    emb = toy_embeddings()
    pairs = {"A -> B": [(2 * i, 2 * i + 1) for i in range(6)]}
    qs = analogy_questions(pairs)
    assert len(qs) == 6 * 5
    ids = torch.tensor([[a, b, c] for _, a, b, c, _ in qs])
    answers = torch.tensor([d for *_, d in qs])
    scores = analogy_accuracy(emb, ids, answers, [q[0] for q in qs])
    assert scores == {"A -> B": 1.0, "all": 1.0}
    # without the offset the query is c itself, which must still never be answered (nor a, nor b)
    guesses = solve_analogies(emb, ids, offset=False)
    assert not (guesses[:, None] == ids).any()


def test_inputs_are_never_the_answer_and_allowed_is_respected():
    emb = torch.tensor([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [0.7, 0.7], [-1.0, 0.0]])
    q = torch.tensor([[0, 1, 3]])                   # b - a + c is almost c itself: c must be skipped
    assert solve_analogies(emb, q).item() not in (0, 1, 3)
    allowed = torch.tensor([True, True, False, True, True])
    assert solve_analogies(emb, q, allowed).item() == 4
    near = nearest_tokens(emb, 0, k=2)
    assert [i for i, _ in near] == [1, 3] and near[0][1] == pytest.approx(1.0, abs=1e-3)
    assert [i for i, _ in nearest_tokens(emb, 0, k=1, allowed=torch.tensor([True, False, True, True, True]))] == [3]


def test_random_vectors_solve_almost_nothing():
    emb = torch.randn(5000, 64, generator=torch.Generator().manual_seed(0))
    pairs = {"r": [(2 * i, 2 * i + 1) for i in range(10)]}
    qs = analogy_questions(pairs)
    ids = torch.tensor([[a, b, c] for _, a, b, c, _ in qs])
    scores = analogy_accuracy(emb, ids, torch.tensor([d for *_, d in qs]), [q[0] for q in qs])
    assert scores["all"] < 0.05


def test_whole_word_mask():
    assert whole_word_mask(["[PAD]", "[unused3]", "the", "##ing", "[", "a"]).tolist() == [False, False, True, False,
                                                                                          True, True]


def test_the_course_set_is_single_tokens_of_bert_vocabulary():
    from course_lib.bert import minilm_dir
    vocab = set((minilm_dir() / "vocab.txt").read_text(encoding="utf-8").splitlines())
    words = [w for pairs in ANALOGY_PAIRS.values() for pair in pairs for w in pair]
    assert not [w for w in words if w not in vocab]
    assert len(set(words)) == len(words)                            # no word plays two parts
    assert all(len(p) == 10 for p in ANALOGY_PAIRS.values()) and len(analogy_questions(ANALOGY_PAIRS)) == 450


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="questions"):
        solve_analogies(torch.randn(4, 3), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="embeddings"):
        solve_analogies(torch.randn(4), torch.tensor([[0, 1, 2]]))
    with pytest.raises(ValueError, match="one answer"):
        analogy_accuracy(torch.randn(4, 3), torch.tensor([[0, 1, 2]]), torch.tensor([3, 3]), ["r"])
