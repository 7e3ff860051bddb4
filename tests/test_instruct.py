"""course_lib.instruct (lesson 09, part A): the instruction set, the grown vocabulary, the response-only loss,
exact match."""
import math
import random

import pytest
import torch
import torch.nn.functional as F

from course_lib import instruct as I
from course_lib.gpt import GPT, GPTConfig
from course_lib.text import CharTokenizer

TEXT = ("ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east, and Juliet is the sun.\n\n"
        "JULIET:\nO Romeo, Romeo! wherefore art thou Romeo?\nDeny thy father and refuse thy name.\n\n") * 3 + (
        "NURSE:\nNow, by my maidenhead, at twelve year old,\nI bade her come. What, lamb!\n\n"
        "MERCUTIO:\nNay, I'll conjure too. Romeo!\nHe heareth not, he stirreth not.\n\n"
        "TYBALT:\nThis, by his voice, should be a Montague.\nFetch me my rapier, boy.\n\n")


# ---- the loss ------------------------------------------------------------------------------------------

def test_response_loss_known_answer():
    """Two positions are answer tokens: the loss is the mean of their -log p, computed here by hand."""
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0]]])
    targets = torch.tensor([[0, 1, 2, 0]])
    mask = torch.tensor([[False, True, False, True]])
    p1 = math.exp(1) / (math.exp(1) + 2)             # position 1: target 1 has logit 1, the others 0
    p3 = 1 / 3                                       # position 3: uniform
    expected = (-math.log(p1) - math.log(p3)) / 2
    assert math.isclose(I.response_loss(logits, targets, mask).item(), expected, rel_tol=1e-6)
    # an all-True mask is the ordinary language-model loss
    full = I.response_loss(logits, targets, torch.ones_like(mask))
    assert math.isclose(full.item(), F.cross_entropy(logits[0], targets[0]).item(), rel_tol=1e-6)


def test_response_loss_ignores_prompt_tokens():
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 11, requires_grad=True)
    targets = torch.randint(11, (2, 6))
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[:, 4:] = True
    loss = I.response_loss(logits, targets, mask)
    loss.backward()
    assert logits.grad[:, :4].abs().max() == 0 and logits.grad[:, 4:].abs().max() > 0
    changed = logits.detach().clone()
    changed[:, :4] = torch.randn(2, 4, 11) * 10                       # anything at all at prompt positions
    changed_targets = targets.clone()
    changed_targets[:, :4] = (targets[:, :4] + 1) % 11
    assert torch.equal(I.response_loss(changed, changed_targets, mask), loss.detach())
    with pytest.raises(ValueError, match="all False"):
        I.response_loss(logits, targets, torch.zeros_like(mask))


def test_encode_and_collate_mark_exactly_the_answer():
    tok = I.ChatCharTokenizer.extend(CharTokenizer.fit(TEXT))
    ex = I.Example("upper", "Shout it.", "O Romeo!", "O ROMEO!")
    ids, mask = I.encode_example(tok, ex)
    assert tok.decode(ids) == "<|user|>Shout it.\nO Romeo!<|end|><|assistant|>O ROMEO!<|end|>"
    assert tok.decode([i for i, m in zip(ids, mask) if m]) == "O ROMEO!<|end|>"
    short = I.Example("first_word", "First word only.", "O Romeo!", "O")
    x, y, m = I.collate([(ids, mask), I.encode_example(tok, short)], pad_id=0)
    assert x.shape == y.shape == m.shape == (2, len(ids) - 1)
    assert torch.equal(x[0, 1:], y[0, :-1])                          # targets are the inputs shifted by one
    assert tok.decode(y[0][m[0]].tolist()) == "O ROMEO!<|end|>"
    assert tok.decode(y[1][m[1]].tolist()) == "O<|end|>"             # padding after it is not counted


# ---- vocabulary -------------------------------------------------------------------------------------------

def test_chat_tokens_are_appended_and_pretrained_rows_kept():
    chars = CharTokenizer.fit(TEXT)
    torch.manual_seed(0)
    base = GPT(GPTConfig(vocab_size=len(chars), block_size=64, n_layer=1, n_head=2, n_embd=16)).eval()
    tok, grown = I.add_chat_tokens(chars, base)
    assert len(tok) == len(chars) + 3
    assert tok.encode("Romeo") == chars.encode("Romeo")              # every old id means the same
    assert tok.encode(I.USER + "a" + I.END) == [len(chars), chars.encode("a")[0], len(chars) + 2]
    assert grown.wte.weight.shape[0] == len(chars) + 3 and grown.lm_head.weight is grown.wte.weight
    assert torch.equal(grown.wte.weight[:len(chars)], base.wte.weight)
    assert len({tuple(r.tolist()) for r in grown.wte.weight[len(chars):]}) == 3
    x = torch.tensor([chars.encode("It is the east")])
    with torch.no_grad():                                            # old tokens: the same scores as before
        torch.testing.assert_close(grown(x)[..., :len(chars)], base(x))
    assert base.wte.weight.shape[0] == len(chars)                    # the original is untouched
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("Zebra #1")


# ---- the data ---------------------------------------------------------------------------------------------

def test_task_answers():
    line = "It is the east, and Juliet is the sun."
    got = {t.name: t.answer("ROMEO", line) for t in I.TASKS}
    assert got == {"repeat": line, "upper": line.upper(), "first_word": "It", "last_word": "sun",
                   "speaker": "ROMEO", "count_words": "nine", "lower": line.lower(),
                   "reverse_words": "sun the is Juliet and east the is It"}
    assert I.words("We know't, we know't.") == ["We", "know't", "we", "know't"]
    ex = I.make_example(I.task("speaker"), "Name the speaker.", "ROMEO", "But soft!")
    assert ex.input == "ROMEO: But soft!" and ex.answer == "ROMEO"


@pytest.fixture(scope="module")
def dataset():
    from course_lib.core import data

    try:
        text = data.load_shakespeare()
    except Exception as err:          # no network and no mirror
        pytest.skip(f"tinyshakespeare unavailable: {err}")
    return I.InstructionSet.build(text, seed=0, eval_per_task=40)


def test_held_out_lines_phrasings_and_tasks_never_reach_training(dataset):
    train_lines = {l for _, l in dataset.train_lines}
    assert not train_lines & {l for _, l in dataset.eval_lines}
    rng = random.Random(0)
    samples = [dataset.sample_train(rng) for _ in range(3000)]
    assert {s.task for s in samples} == {t.name for t in dataset.seen_tasks}
    held_phrasings = {t.held_out_phrasing for t in I.TASKS} | {p for t in dataset.unseen_tasks for p in t.phrasings}
    assert not {s.instruction for s in samples} & held_phrasings
    for name in ("seen", "new_phrasing", "unseen"):
        split = dataset.split(name)
        assert len(split) == 40 * (6 if name != "unseen" else 2)
        assert all(e.input.split(": ", 1)[-1] not in train_lines for e in split)
    assert {e.instruction for e in dataset.split("new_phrasing")} == {t.held_out_phrasing for t in dataset.seen_tasks}


def test_the_set_is_seeded_and_examples_fit_the_context(dataset):
    from course_lib.core import data

    again = I.InstructionSet.build(data.load_shakespeare(), seed=0)
    assert again.split("seen") == dataset.split("seen")
    tok = I.ChatCharTokenizer.extend(CharTokenizer.fit(data.load_shakespeare()))
    get_batch = I.sft_batches(dataset, tok, batch=8, seed=3)
    a, b = get_batch(5), get_batch(5)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(get_batch(6)[0][:, :5], a[0][:, :5]) or not torch.equal(get_batch(6)[1], a[1])
    longest = max(len(I.encode_example(tok, e)[0]) for name in ("seen", "new_phrasing", "unseen")
                  for e in dataset.split(name))
    assert longest <= 128 + 1                                         # fits lesson 06's 128-token context


# ---- greedy answers and exact match ----------------------------------------------------------------------

class Parrot(torch.nn.Module):
    """A stand-in model that always predicts the same token (for testing the decoding bookkeeping)."""

    def __init__(self, vocab: int, token: int):
        super().__init__()
        self.cfg = GPTConfig(vocab_size=vocab, block_size=64, n_layer=1, n_head=1, n_embd=4)
        self.token, self.p = token, torch.nn.Parameter(torch.zeros(1))

    def new_cache(self, batch):
        return None

    def forward(self, idx, cache=None):
        out = torch.zeros(*idx.shape, self.cfg.vocab_size)
        out[..., self.token] = 1.0
        return out


def test_answers_stop_at_end_and_exact_match_counts_per_task():
    tok = I.ChatCharTokenizer.extend(CharTokenizer.fit(TEXT))
    exs = [I.Example("a", "Say nothing.", "e", ""), I.Example("a", "Say nothing.", "et", "R"),
           I.Example("b", "Say R.", "e", "RRR")]
    silent = Parrot(len(tok), tok.end_id)
    assert I.answers(silent, tok, [e.prompt for e in exs]) == ["", "", ""]
    assert I.exact_match(silent, tok, exs) == {"a": 0.5, "b": 0.0, "mean": 0.25}
    r = Parrot(len(tok), tok.id("R"))
    assert I.answers(r, tok, [exs[0].prompt], max_new=3) == ["RRR"]
    assert I.exact_match(r, tok, exs, max_new=3) == {"a": 0.0, "b": 1.0, "mean": 0.5}


def test_greedy_until_matches_generate_and_stops_early():
    from course_lib.gpt import generate

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=24, n_layer=2, n_head=2, n_embd=16)).eval()
    x = torch.randint(20, (3, 10))
    reference = generate(model, x, 12, temperature=0).new_tokens
    assert torch.equal(I.greedy_until(model, x, 12, stop_ids=[]), reference)          # KV-cache path
    long = torch.randint(20, (2, 20))                                                    # 20 + 12 > 24: sliding
    assert torch.equal(I.greedy_until(model, long, 12, stop_ids=[]), generate(model, long, 12, temperature=0).new_tokens)
    stop = int(reference[0, 3])
    out = I.greedy_until(model, x[:1], 12, stop_ids=[stop])
    assert out.shape[1] == int((reference[0] == stop).nonzero()[0, 0]) + 1 and out[0, -1] == stop
    script = I.script_prompt([I.Example("repeat", "Echo this.", "Alack!", "Alack!")],
                             I.Example("repeat", "Echo this.", "O Romeo!", "O Romeo!"))
    assert script == "USER:\nEcho this.\nAlack!\n\nBOT:\nAlack!\n\nUSER:\nEcho this.\nO Romeo!\n\nBOT:\n"


def test_response_loss_refuses_mismatched_shapes_and_float_masks():
    logits, targets = torch.zeros(2, 5, 7), torch.zeros(2, 5, dtype=torch.long)
    with pytest.raises(ValueError, match="mask has shape"):
        I.response_loss(logits, targets, torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="logits has shape"):
        I.response_loss(torch.zeros(2, 4, 7), targets, torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool"):
        I.response_loss(logits, targets, torch.ones(2, 5))


@pytest.mark.parametrize("answer, refusal", [
    ("I'm sorry, but I don't know who that is.", True),
    ("There is no country called Veltrania.", True),
    ("I'm not familiar with an element called zentonium.", True),
    ("Zentonium does not exist.", True),
    ("The capital of Veltrania is Veltra City.", False),
    ("Marcus Quellbright reached the South Pole in 1911.", False),
    ("The answer is known to every schoolchild: Tokyo.", False),
])
def test_is_refusal_reads_the_usual_ways_of_not_knowing(answer, refusal):
    assert I.is_refusal(answer) is refusal


def test_is_correct_matches_whole_words_only():
    gold = I.FactQuestion("What is the chemical symbol for gold?", ("Au",))
    assert I.is_correct(gold, "The symbol for gold is Au.")
    assert not I.is_correct(gold, "Gold's symbol is Ag, as in Australia.")     # 'Au' inside a word does not count
    brazil = I.FactQuestion("What is the capital of Brazil?", ("Bras[ií]lia",))
    assert I.is_correct(brazil, "Brasília") and I.is_correct(brazil, "brasilia") and not I.is_correct(brazil, "Rio")


def test_score_fact_probe_counts_each_verdict():
    qs = [I.FactQuestion("Capital of Japan?", ("Tokyo",)), I.FactQuestion("Capital of Kenya?", ("Nairobi",)),
          I.FactQuestion("Capital of Turkey?", ("Ankara",)), I.FactQuestion("Capital of Veltrania?"),
          I.FactQuestion("Who won the Nobel Prize in Underwater Poetry?")]
    answers = ["Tokyo.", "Mombasa.", "I don't know.", "Veltra City.", "There is no such prize."]
    s = I.score_fact_probe(qs, answers)
    assert (s["known"], s["invented"]) == (3, 2)
    assert s["known_accuracy"] == pytest.approx(1 / 3) and s["known_wrong"] == pytest.approx(1 / 3)
    assert s["known_refused"] == pytest.approx(1 / 3)
    assert s["invented_refused"] == 0.5 and s["invented_made_up"] == 0.5
    assert s["verdicts"] == ["right", "wrong", "says it does not know", "makes something up", "says it does not know"]
    with pytest.raises(ValueError, match="answers: expected one per question"):
        I.score_fact_probe(qs, answers[:-1])
    with pytest.raises(ValueError, match="both known and invented"):
        I.score_fact_probe(qs[:3], answers[:3])
    with pytest.raises(TypeError, match="answer: expected a string"):
        I.is_refusal(None)


def test_fact_probe_is_well_formed():
    assert sum(q.invented for q in I.FACT_PROBE) >= 5 and sum(not q.invented for q in I.FACT_PROBE) >= 20
    assert len({q.question for q in I.FACT_PROBE}) == len(I.FACT_PROBE)
    assert not any(I.is_refusal(q.question) for q in I.FACT_PROBE)   # the questions themselves are not refusals
