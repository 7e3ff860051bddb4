"""course_lib.gpt.generation: decoding rules, the KV cache, log-probabilities, and the block-size boundary."""
import pytest
import torch
import torch.nn.functional as F

from course_lib.gpt.generation import distinct_n, filter_logits, generate, next_token, repetition, token_logprobs
from course_lib.gpt.model import GPT, GPTConfig


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=23, block_size=24, n_layer=2, n_head=2, n_embd=16)).eval()
    with torch.no_grad():   # sharper distributions than at init, like a trained model
        m.wte.weight.mul_(20)
    return m


def prompt(batch=3, length=5, seed=1):
    return torch.randint(23, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kwargs", [dict(temperature=0), dict(temperature=1.0), dict(temperature=0.8, top_k=5),
                                    dict(temperature=1.2, top_p=0.9)])
def test_cached_equals_uncached(model, kwargs):
    # 30 new tokens from a 5-token prompt crosses block_size=24: the sliding window must agree too
    outs = [generate(model, prompt(), 30, use_cache=c, generator=torch.Generator().manual_seed(7), logprobs=True,
                     **kwargs) for c in (True, False)]
    assert torch.equal(outs[0].tokens, outs[1].tokens)
    torch.testing.assert_close(outs[0].logprobs, outs[1].logprobs, atol=1e-4, rtol=1e-4)


def test_greedy_equals_top_k_1_and_tiny_temperature(model):
    greedy = generate(model, prompt(), 15, temperature=0).tokens
    top1 = generate(model, prompt(), 15, temperature=1.0, top_k=1).tokens
    cold = generate(model, prompt(), 15, temperature=1e-6).tokens
    assert torch.equal(greedy, top1) and torch.equal(greedy, cold)
    # and greedy really is the arg-max of a full forward pass at every step
    logits = model(greedy[:, :-1])[:, 4:]
    assert torch.equal(logits.argmax(-1), greedy[:, 5:])


def test_sampling_is_random_and_seeded(model):
    a = generate(model, prompt(), 15, generator=torch.Generator().manual_seed(1)).tokens
    b = generate(model, prompt(), 15, generator=torch.Generator().manual_seed(1)).tokens
    c = generate(model, prompt(), 15, generator=torch.Generator().manual_seed(2)).tokens
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_every_sampled_token_is_inside_the_top_k_set(model):
    out = generate(model, prompt(batch=4), 18, temperature=1.5, top_k=3, generator=torch.Generator().manual_seed(0))
    logits = model(out.tokens[:, :-1])[:, 4:]                  # the distribution behind every new token
    allowed = logits.topk(3, dim=-1).indices
    assert (allowed == out.new_tokens[..., None]).any(-1).all()


def nucleus_oracle(probs: torch.Tensor, p: float) -> set[int]:
    """The smallest set of most likely tokens whose probabilities sum to >= p, written the slow obvious way."""
    keep, total = set(), 0.0
    for i in sorted(range(len(probs)), key=lambda i: -probs[i].item()):
        keep.add(i)
        total += probs[i].item()
        if total >= p:
            break
    return keep


def test_every_sampled_token_is_inside_the_top_p_set():
    gen = torch.Generator().manual_seed(0)
    logits = 2 * torch.randn(200, 30, generator=gen)
    tokens, _ = next_token(logits, temperature=1.0, top_p=0.6, generator=gen)
    for row, tok in zip(logits, tokens):
        assert tok.item() in nucleus_oracle(row.softmax(-1), 0.6)
    kept = filter_logits(logits, top_p=0.6).isfinite()
    expected = torch.zeros_like(kept)
    for r, row in enumerate(logits):
        expected[r, list(nucleus_oracle(row.softmax(-1), 0.6))] = True
    assert torch.equal(kept, expected)


def test_logprobs_match_a_teacher_forced_pass(model):
    """At T=1 without filtering, what generate reports is exactly what the model assigns: RLHF relies on it."""
    out = generate(model, prompt(), 12, logprobs=True, generator=torch.Generator().manual_seed(3))
    rescored = token_logprobs(model, out.tokens)[:, 5 - 1:]
    torch.testing.assert_close(out.logprobs, rescored, atol=1e-5, rtol=1e-5)
    # with top-k the reported log-prob is under the truncated, renormalised distribution
    out_k = generate(model, prompt(), 12, top_k=2, logprobs=True, generator=torch.Generator().manual_seed(3))
    logits = model(out_k.tokens[:, :-1])[:, 4:]
    expected = F.log_softmax(filter_logits(logits, top_k=2), -1).gather(-1, out_k.new_tokens[..., None])[..., 0]
    torch.testing.assert_close(out_k.logprobs, expected, atol=1e-5, rtol=1e-5)


def test_one_dimensional_prompt_and_shapes(model):
    out = generate(model, torch.tensor([1, 2, 3]), 4, temperature=0, logprobs=True)
    assert out.tokens.shape == (7,) and out.new_tokens.shape == (4,) and out.logprobs.shape == (4,)
    assert out.tokens[:3].tolist() == [1, 2, 3]
    assert generate(model, torch.tensor([1]), 0).tokens.tolist() == [1]


def test_bad_requests_are_clear_errors(model):
    with pytest.raises(ValueError, match="block_size"):
        generate(model, torch.zeros(1, 25, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="temperature"):
        generate(model, prompt(), 3, temperature=-1)
    with pytest.raises(ValueError, match="top_k"):
        generate(model, prompt(), 3, top_k=0)
    with pytest.raises(ValueError, match="top_p"):
        generate(model, prompt(), 3, top_p=1.5)
    with pytest.raises(ValueError, match="prompt"):
        generate(model, torch.zeros(1, 0, dtype=torch.long), 3)


def test_generate_restores_training_mode(model):
    model.train()
    generate(model, prompt(), 2)
    assert model.training
    model.eval()


def test_diversity_measures():
    assert repetition("abcabcabc", 3) == pytest.approx(1 - 3 / 7)      # 7 trigrams, 3 distinct
    assert repetition("abcdefg", 3) == 0.0 and repetition("ab", 3) == 0.0
    assert distinct_n(["aaaa", "aaaa"], 2) == pytest.approx(1 / 6)
    assert distinct_n([["to", "be"], ["to", "be"]], 2) == 0.5          # words work too
