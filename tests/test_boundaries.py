"""Every public function refuses bad input where it enters, with a ValueError/TypeError that names the argument
and says what was expected: no silent broadcast, no truncated float, no error from deep inside torch.

One parametrized table per area (the cases observed by the reliability probes, issue 16), then property-based
tests (hypothesis) over the same boundaries: valid input is accepted and gives what it gave before, invalid
input is refused.
"""
import json
import math
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course_lib.bert.lora import add_lora
from course_lib.bert.model import BERT, BertConfig
from course_lib.core.data import train_val_split
from course_lib.core.metrics import accuracy, bleu, bleu_by_bucket, corpus_bleu, wilson_interval
from course_lib.core.runtime import seed_everything
from course_lib.core.train import TrainConfig
from course_lib.gpt.generation import distinct_n, generate, next_token
from course_lib.gpt.model import GPT, GPTConfig
from course_lib.rlhf.dpo import DPOConfig, dpo_loss
from course_lib.rlhf.loop import kl_estimate
from course_lib.rlhf.ppo import PPOConfig, ppo_policy_loss, ppo_value_loss
from course_lib.rlhf.preferences import bradley_terry_loss
from course_lib.text.bpe import GPT2_PATTERN, ByteBPE
from course_lib.text.tokenizers import SPECIALS, CharTokenizer, WordVocab
from course_lib.text.wordpiece import BERT_SPECIALS, WordPiece
from course_lib.transformer.attention import MultiHeadAttention, attend, scaled_dot_product_attention
from course_lib.transformer.model import TransformerConfig

SMALL = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
t = torch.tensor
z = torch.zeros


def nano_gpt(**kw) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8, **kw)).eval()


def small_bert() -> BERT:
    torch.manual_seed(0)
    return BERT(BertConfig(vocab_size=60, max_len=16, d_model=16, n_layers=1, n_heads=2, d_ff=32, dropout=0.0,
                           attn_dropout=0.0)).eval()


@pytest.fixture(scope="module")
def bpe() -> ByteBPE:
    return ByteBPE.train("to be or not to be, that is the question " * 4, vocab_size=270, specials=["<|eot|>"])


# ---- losses: equal shapes, no broadcasting, nothing empty ------------------------------------------------

LOSS_CASES = {
    "dpo (4,1) vs (4,)": (lambda: dpo_loss(z(4, 1), z(4), z(4), z(4), 0.1), ValueError, "policy_rejected.*(4,).*(4, 1)"),
    "dpo ref shape": (lambda: dpo_loss(z(4), z(4), z(4), z(1), 0.1), ValueError, "ref_rejected has shape \\(1,\\)"),
    "dpo empty": (lambda: dpo_loss(z(0), z(0), z(0), z(0), 0.1), ValueError, "policy_chosen is empty"),
    "dpo beta 0": (lambda: dpo_loss(z(4), z(4), z(4), z(4), 0.0), ValueError, "beta=0.0"),
    "ppo advantages (4,) vs (4,4)": (lambda: ppo_policy_loss(z(4, 4), z(4, 4), z(4)), ValueError,
                                     "advantages has shape \\(4,\\) but logp has \\(4, 4\\)"),
    "ppo old_logp": (lambda: ppo_policy_loss(z(4, 4), z(4, 1), z(4, 4)), ValueError, "old_logp has shape"),
    "ppo value returns": (lambda: ppo_value_loss(z(4), z(4), z(1)), ValueError, "returns has shape \\(1,\\)"),
    "ppo value empty": (lambda: ppo_value_loss(z(0), z(0), z(0)), ValueError, "values is empty"),
    "bradley-terry (4,) vs (1,)": (lambda: bradley_terry_loss(z(4), z(1)), ValueError, "r_rejected has shape"),
    "kl (2,3) vs (3,)": (lambda: kl_estimate(z(2, 3), z(3)), ValueError, "ref_logp has shape \\(3,\\)"),
    "loss of a list": (lambda: bradley_terry_loss([1.0], z(1)), TypeError, "r_chosen: expected a torch.Tensor"),
    "GPT targets (1,8) for idx (2,4)": (lambda: nano_gpt()(z(2, 4, dtype=torch.long), z(1, 8, dtype=torch.long)),
                                        ValueError, "targets has shape \\(1, 8\\) but idx has \\(2, 4\\)"),
    "GPT targets (2,3)": (lambda: nano_gpt()(z(2, 4, dtype=torch.long), z(2, 3, dtype=torch.long)),
                          ValueError, "targets has shape"),
}


@pytest.mark.parametrize("case", LOSS_CASES)
def test_losses_refuse_mismatched_or_empty_tensors(case):
    call, error, match = LOSS_CASES[case]
    with pytest.raises(error, match=match):
        call()


# ---- attention masks are bool ----------------------------------------------------------------------------

def qkv():
    g = torch.Generator().manual_seed(0)
    return [torch.randn(1, 2, 3, 4, generator=g) for _ in range(3)]


MASK_CASES = {
    "attend float mask": lambda: attend(*qkv(), mask=torch.ones(3, 3)),
    "attend int mask": lambda: attend(*qkv(), mask=torch.ones(3, 3, dtype=torch.long)),
    "written-out float mask": lambda: scaled_dot_product_attention(*qkv(), mask=torch.ones(3, 3)),
    "MultiHeadAttention float mask": lambda: MultiHeadAttention(8, 2)(torch.zeros(1, 3, 8), mask=torch.ones(3, 3)),
    "mask as a list": lambda: attend(*qkv(), mask=[[True] * 3] * 3),
}


@pytest.mark.parametrize("case", MASK_CASES)
def test_attention_refuses_non_bool_masks(case):
    with pytest.raises(TypeError, match="mask: expected a bool tensor"):
        MASK_CASES[case]()


# ---- configs: integers >= 1 checked before divisibility ------------------------------------------------

CONFIG_CASES = {
    "GPT n_head=0": (lambda: GPTConfig(n_head=0), ValueError, "n_head=0: expected an integer >= 1"),
    "GPT n_embd=0": (lambda: GPTConfig(n_embd=0), ValueError, "n_embd=0"),
    "GPT n_embd=-8": (lambda: GPTConfig(n_embd=-8), ValueError, "n_embd=-8"),
    "GPT block_size=8.5": (lambda: GPTConfig(block_size=8.5), TypeError, "block_size=8.5: expected an integer"),
    "GPT n_layer=True": (lambda: GPTConfig(n_layer=True), TypeError, "n_layer=True"),
    "Transformer n_heads=0": (lambda: TransformerConfig(n_heads=0), ValueError, "n_heads=0"),
    "Transformer d_model=0": (lambda: TransformerConfig(d_model=0), ValueError, "d_model=0"),
    "BERT n_heads=0": (lambda: BertConfig(n_heads=0), ValueError, "n_heads=0"),
    "BERT n_segments=0": (lambda: BertConfig(n_segments=0), ValueError, "n_segments=0"),
    "MHA n_heads=0": (lambda: MultiHeadAttention(8, 0), ValueError, "n_heads=0"),
    "MHA d_model=8.0": (lambda: MultiHeadAttention(8.0, 2), TypeError, "d_model=8.0"),
    "PPO epochs=0": (lambda: PPOConfig(epochs=0), ValueError, "epochs=0"),
    "PPO minibatch=0": (lambda: PPOConfig(minibatch=0), ValueError, "minibatch=0"),
    "PPO rloo_k=1": (lambda: PPOConfig(rloo_k=1), ValueError, "rloo_k=1: expected an integer >= 2"),
    "PPO clip=0": (lambda: PPOConfig(clip=0.0), ValueError, "clip=0.0"),
    "DPO batch=0": (lambda: DPOConfig(batch=0), ValueError, "batch=0"),
    "DPO beta=-1": (lambda: DPOConfig(beta=-1.0), ValueError, "beta=-1.0"),
    "Train eval_every=-2": (lambda: TrainConfig(eval_every=-2), ValueError, "eval_every=-2"),
    "Train checkpoint_every=1.5": (lambda: TrainConfig(checkpoint_every=1.5), TypeError, "checkpoint_every=1.5"),
    "Train max_seconds=0": (lambda: TrainConfig(max_seconds=0), ValueError, "max_seconds=0"),
    "Train grad_clip=-1": (lambda: TrainConfig(grad_clip=-1), ValueError, "grad_clip=-1: expected a finite number > 0"),
    "Train grad_clip=0": (lambda: TrainConfig(grad_clip=0), ValueError, "grad_clip=0: .*or None"),
    "Train grad_clip=inf": (lambda: TrainConfig(grad_clip=float("inf")), ValueError, "grad_clip=inf"),
    "seed 'a'": (lambda: seed_everything("a"), TypeError, "seed='a': expected an integer >= 0"),
    "seed -1": (lambda: seed_everything(-1), ValueError, "seed=-1"),
    "seed 2**32": (lambda: seed_everything(2**32), ValueError, r"seed=4294967296: expected an integer in \[0, 2\*\*32\)"),
    "split 1.5": (lambda: train_val_split("abcdef", 1.5), ValueError, "val_fraction=1.5"),
    "split -0.1": (lambda: train_val_split("abcdef", -0.1), ValueError, "val_fraction=-0.1"),
    "split nan": (lambda: train_val_split("abcdef", float("nan")), ValueError, "val_fraction=nan"),
}


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_configs_refuse_bad_numbers(case):
    call, error, match = CONFIG_CASES[case]
    with pytest.raises(error, match=match):
        call()


# ---- tokenizers --------------------------------------------------------------------------------------------

char = CharTokenizer.fit("abcde")
words = WordVocab.fit([["to", "be"], ["or", "not"]])
wordpiece = WordPiece(list(BERT_SPECIALS) + ["to", "be", "##s"])

TOKENIZER_CASES = {
    "char decode floats": (lambda: char.decode([1.7, 2.2]), TypeError, "ids: expected integer token ids, got 1.7"),
    "char decode float tensor": (lambda: char.decode(t([1.0])), TypeError, "ids: .*float32"),
    "char decode -1": (lambda: char.decode([-1]), ValueError, "ids: id -1 is outside the vocabulary"),
    "char decode a string": (lambda: char.decode("ab"), TypeError, "ids: expected a sequence of integer"),
    "bpe decode -1": (lambda bpe: bpe.decode([-1]), ValueError, "ids: id -1 is outside the vocabulary \\(0..269\\)"),
    "bpe decode 2.5": (lambda bpe: bpe.decode([2.5]), TypeError, "ids: expected integer token ids"),
    "word encode a string": (lambda: words.encode("ab"), TypeError, "words: expected a list of words.*split"),
    "word encode ints": (lambda: words.encode([1, 2]), TypeError, "words: expected strings"),
    "char bos without specials": (lambda: char.encode("ab", bos=True), ValueError, "bos=True needs the special token <bos>"),
    "char eos without specials": (lambda: char.encode("ab", eos=True), ValueError, "eos=True needs the special token <eos>"),
    "char pad_id without specials": (lambda: char.pad_id, ValueError, "<pad>"),
    "char encode 123": (lambda: char.encode(123), TypeError, "text: expected a str, got int"),
    "bpe encode 123": (lambda bpe: bpe.encode(123), TypeError, "text: expected a str, got int"),
    "bpe encode bytes": (lambda bpe: bpe.encode(b"ab"), TypeError, "text: expected a str, got bytes"),
    "wordpiece decode floats": (lambda: wordpiece.decode([5.9]), TypeError, "ids: expected integer token ids"),
    "wordpiece decode -1": (lambda: wordpiece.decode([-1]), ValueError, "ids: id -1 is outside"),
    "wordpiece encode 123": (lambda: wordpiece.encode(123), TypeError, "text: expected a str, got int"),
    "wordpiece pair 123": (lambda: wordpiece.encode("to", pair=123), TypeError, "pair: expected a str or None"),
}


@pytest.mark.parametrize("case", TOKENIZER_CASES)
def test_tokenizers_refuse_bad_ids_and_text(case, bpe):
    call, error, match = TOKENIZER_CASES[case]
    with pytest.raises(error, match=match):
        call(bpe) if call.__code__.co_argcount else call()


@pytest.mark.parametrize("content,match", [
    ("{not json", "is not valid JSON.*truncated or not"),
    ('["a list"]', "holds a JSON list, not an object"),
    ('{"kind": "char", "itos": 5, "specials": []}', "must be lists of strings"),
])
@pytest.mark.parametrize("cls", [CharTokenizer, ByteBPE])
def test_a_corrupt_tokenizer_file_is_named_in_the_error(tmp_path, content, match, cls):
    path = tmp_path / "corrupt-tok.json"
    path.write_text(content, encoding="utf-8")
    if cls is ByteBPE and "itos" in content:
        match = "corrupt-tok.json: expected a 'bytebpe' tokenizer"
    with pytest.raises(ValueError, match="corrupt-tok.json") as info:
        cls.load(path)
    assert info.match(match)


@pytest.mark.parametrize("pattern", [r"(a|aa)+$", r".", GPT2_PATTERN + "|x"])
def test_a_bpe_split_pattern_from_a_file_must_be_the_courses(bpe, tmp_path, pattern):
    data = {**bpe.to_json(), "pattern": pattern}
    with pytest.raises(ValueError, match="pattern=.*not a split pattern the course defines"):
        ByteBPE.from_json(data)
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="evil.json: pattern="):
        ByteBPE.load(path)
    assert ByteBPE.from_json(bpe.to_json()).encode("to be") == bpe.encode("to be")   # the course's own: fine


def test_the_crafted_pattern_is_refused_before_it_can_cost_time(bpe):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"\(a\|aa\)\+\$"):
        ByteBPE.from_json({**bpe.to_json(), "pattern": r"(a|aa)+$"})
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("bad,match", [
    ({"merges": [[1]]}, "merges: expected a list of \\[id, id\\] pairs"),
    ({"merges": [[1.5, 2]]}, "merges:"),
    ({"specials": "<|eot|>"}, "specials: expected a list"),
])
def test_bpe_from_json_checks_merges_and_specials(bpe, bad, match):
    with pytest.raises(ValueError, match=match):
        ByteBPE.from_json({**bpe.to_json(), **bad})


# ---- LoRA ----------------------------------------------------------------------------------------------

def lora_gpt():
    return nano_gpt()


LORA_CASES = {
    "targets as a string": (lambda: add_lora(lora_gpt(), targets="c_proj_x"), TypeError,
                            "targets='c_proj_x': expected a sequence of names"),
    "train as a string": (lambda: add_lora(lora_gpt(), targets=("c_attn",), train="wte"), TypeError,
                          "train='wte': expected a sequence of names"),
    "train prefix of a name": (lambda: add_lora(lora_gpt(), targets=("c_attn",), train=("wt",)), ValueError,
                               "train=\\['wt'\\]: no parameters under"),
    "no targets": (lambda: add_lora(lora_gpt(), targets=()), ValueError, "targets: expected at least one name"),
    "alpha=0": (lambda: add_lora(lora_gpt(), targets=("c_attn",), alpha=0), ValueError, "alpha=0"),
    "alpha=nan": (lambda: add_lora(lora_gpt(), targets=("c_attn",), alpha=float("nan")), ValueError, "alpha=nan"),
    "rank=2.5": (lambda: add_lora(lora_gpt(), targets=("c_attn",), rank=2.5), TypeError,
                 "rank=2.5: expected an integer >= 1"),
    "rank=0": (lambda: add_lora(lora_gpt(), targets=("c_attn",), rank=0), ValueError, "rank=0"),
}


@pytest.mark.parametrize("case", LORA_CASES)
def test_lora_refuses_bad_arguments(case):
    call, error, match = LORA_CASES[case]
    with pytest.raises(error, match=match):
        call()


def test_lora_targets_and_train_match_whole_names_and_a_second_call_says_already_adapted():
    model = lora_gpt()
    wrapped = add_lora(model, targets=("c_attn",), rank=2, train=("wte",))
    assert wrapped == ["h.0.attn.c_attn"]
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "wte.weight" in trainable and "wpe.weight" not in trainable        # "wte" no longer unfreezes "wpe"
    assert trainable == {"wte.weight", "h.0.attn.c_attn.lora_A", "h.0.attn.c_attn.lora_B"}
    with pytest.raises(ValueError, match="already adapted.*h.0.attn.c_attn.*merge_lora"):
        add_lora(model, targets=("c_attn",))
    with pytest.raises(ValueError, match="targets=\\['c_proj_x'\\]: no nn.Linear"):
        add_lora(lora_gpt(), targets=("c_proj_x",))              # a whole name: "c_proj" is not matched


# ---- metrics -------------------------------------------------------------------------------------------

METRIC_CASES = {
    "bleu empty": (lambda: bleu([], []), ValueError, "hypotheses is empty"),
    "corpus_bleu empty": (lambda: corpus_bleu([], []), ValueError, "hypotheses is empty"),
    "bleu max_n=0": (lambda: bleu([["a"]], [["a"]], max_n=0), ValueError, "max_n=0"),
    "bucket edges unsorted": (lambda: bleu_by_bucket([["a"]] * 2, [["a"]] * 2, [1, 4], edges=[5, 2]), ValueError,
                              "edges=\\[5, 2\\]: expected strictly increasing"),
    "bucket edges empty": (lambda: bleu_by_bucket([["a"]], [["a"]], [1], edges=[]), ValueError, "edges=\\[\\]"),
    "bucket edge 2.5": (lambda: bleu_by_bucket([["a"]], [["a"]], [1], edges=[2.5]), TypeError, "edges=2.5"),
    "accuracy empty": (lambda: accuracy(z(0, 3), z(0, dtype=torch.long)), ValueError, "targets is empty"),
    "accuracy shapes": (lambda: accuracy(z(4, 3), z(4, 1, dtype=torch.long)), ValueError,
                        "targets has shape \\(4, 1\\) but logits has \\(4, 3\\)"),
    "wilson 5 of 3": (lambda: wilson_interval(5, 3), ValueError, "successes=5: expected a count between 0 and n=3"),
    "wilson -1": (lambda: wilson_interval(-1, 3), ValueError, "successes=-1"),
    "wilson n=0": (lambda: wilson_interval(0, 0), ValueError, "n=0"),
    "wilson n=2.5": (lambda: wilson_interval(1, 2.5), TypeError, "n=2.5"),
}


@pytest.mark.parametrize("case", METRIC_CASES)
def test_metrics_refuse_empty_or_inconsistent_input(case):
    call, error, match = METRIC_CASES[case]
    with pytest.raises(error, match=match):
        call()


# ---- generation ------------------------------------------------------------------------------------------

PROMPT = torch.zeros(1, 2, dtype=torch.long)
GENERATION_CASES = {
    "temperature inf": (lambda: generate(nano_gpt(), PROMPT, 2, temperature=float("inf")), ValueError,
                        "temperature=inf: expected a finite number >= 0"),
    "temperature nan": (lambda: generate(nano_gpt(), PROMPT, 2, temperature=float("nan")), ValueError,
                        "temperature=nan"),
    "temperature string": (lambda: generate(nano_gpt(), PROMPT, 2, temperature="hot"), TypeError, "temperature='hot'"),
    "top_k 2.5": (lambda: generate(nano_gpt(), PROMPT, 2, top_k=2.5), TypeError, "top_k=2.5: expected an integer"),
    "top_p nan": (lambda: generate(nano_gpt(), PROMPT, 2, top_p=float("nan")), ValueError, "top_p=nan"),
    "max_new_tokens 1.5": (lambda: generate(nano_gpt(), PROMPT, 1.5), TypeError, "max_new_tokens=1.5"),
    "next_token temperature inf": (lambda: next_token(z(1, 5), float("inf")), ValueError, "temperature=inf"),
    "distinct_n n=0": (lambda: distinct_n([[1, 2, 3]], n=0), ValueError, "n=0: expected an integer >= 1"),
}


@pytest.mark.parametrize("case", GENERATION_CASES)
def test_generation_refuses_bad_settings(case):
    call, error, match = GENERATION_CASES[case]
    with pytest.raises(error, match=match):
        call()


# ---- BERT ----------------------------------------------------------------------------------------------

IDS = torch.tensor([[2, 5, 6, 3]])
BERT_CASES = {
    "mlm no masked position": (lambda: small_bert().mlm_loss(IDS, torch.full_like(IDS, -100)), ValueError,
                               "labels has no masked position"),
    "mlm labels shape": (lambda: small_bert().mlm_loss(IDS, IDS[:, :2]), ValueError, "labels has shape \\(1, 2\\)"),
    "segment 2 of 2": (lambda: small_bert()(IDS, segments=torch.tensor([[0, 0, 1, 2]])), ValueError,
                       "segments holds ids 0..2: expected 0..1 \\(n_segments=2\\)"),
    "segment -1": (lambda: small_bert()(IDS, segments=torch.tensor([[0, -1, 0, 0]])), ValueError, "segments holds"),
    "segments shape": (lambda: small_bert()(IDS, segments=torch.zeros(1, 3, dtype=torch.long)), ValueError,
                       "segments has shape \\(1, 3\\)"),
    "segments float": (lambda: small_bert()(IDS, segments=torch.zeros(1, 4)), TypeError, "segments: expected integer"),
}


@pytest.mark.parametrize("case", BERT_CASES)
def test_bert_refuses_bad_labels_and_segments(case):
    call, error, match = BERT_CASES[case]
    with pytest.raises(error, match=match):
        call()


# ---- property-based tests ------------------------------------------------------------------------------

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


@SMALL
@given(a=shapes, b=shapes, seed=st.integers(0, 2 ** 16))
def test_losses_accept_equal_shapes_and_refuse_unequal_ones(a, b, seed):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(a, generator=g), torch.randn(b, generator=g)
    calls = {
        "dpo": lambda p, q: dpo_loss(p, q, p.detach(), p.detach(), 0.1)[0],
        "ppo_policy": lambda p, q: ppo_policy_loss(p, p.detach(), q)[0],
        "ppo_value": lambda p, q: ppo_value_loss(p, p.detach(), q),
        "bradley_terry": bradley_terry_loss,
        "kl": lambda p, q: kl_estimate(p, q, "k3").mean(),
    }
    for name, f in calls.items():
        same = f(x, torch.randn(a, generator=g))
        assert same.dim() == 0 and math.isfinite(same.item()), name
        if a != b:
            with pytest.raises(ValueError, match="expected equal shapes"):
                f(x, y)


@SMALL
@given(ids=st.lists(st.integers(-3, 10), max_size=12))
def test_char_ids_round_trip_or_are_refused(ids):
    tok = CharTokenizer.fit("abcde", specials=SPECIALS)      # 9 ids: 4 specials + 5 characters
    if all(0 <= i < len(tok) for i in ids):
        assert len(tok.decode(ids, skip_specials=False)) >= len(ids)
        content = [i for i in ids if i >= 4]
        assert tok.encode(tok.decode(content)) == content
    else:
        with pytest.raises(ValueError, match="ids: id -?\\d+ is outside the vocabulary"):
            tok.decode(ids)
    if ids:
        with pytest.raises(TypeError, match="ids: expected integer token ids"):
            tok.decode([float(i) + 0.5 for i in ids])


@SMALL
@given(text=st.text(max_size=30), junk=st.lists(st.integers(-300, 600), max_size=6))
def test_bpe_encode_decode_round_trips_and_out_of_range_ids_are_refused(bpe, text, junk):
    ids = bpe.encode(text)
    assert bpe.decode(ids) == text
    assert all(0 <= i < len(bpe) for i in ids)
    if any(not 0 <= i < len(bpe) for i in junk):
        with pytest.raises(ValueError, match="ids: id -?\\d+ is outside the vocabulary"):
            bpe.decode(junk)
    else:
        assert isinstance(bpe.decode(junk), str)
    assert bpe.decode(torch.tensor(ids, dtype=torch.long)) == text      # tensors of ids are fine too


@SMALL
@given(keep=st.lists(st.booleans(), min_size=9, max_size=9), seed=st.integers(0, 2 ** 16))
def test_attention_takes_bool_masks_and_refuses_their_float_twins(keep, seed):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(1, 1, 3, 4, generator=g) for _ in range(3))
    mask = torch.tensor(keep).view(3, 3)
    mask[:, 0] = True                        # every query sees at least one key (the fused kernel gives nan else)
    fused = attend(q, k, v, mask=mask)
    written, weights = scaled_dot_product_attention(q, k, v, mask)
    assert torch.allclose(fused, written, atol=1e-5)
    assert torch.all(weights[..., ~mask] == 0)
    for dtype in (torch.float32, torch.float16, torch.long):
        with pytest.raises(TypeError, match="mask: expected a bool tensor"):
            attend(q, k, v, mask=mask.to(dtype))
    mha = MultiHeadAttention(4, 2)
    assert mha(torch.randn(1, 3, 4, generator=g), mask=mask).shape == (1, 3, 4)
    with pytest.raises(TypeError, match="mask: expected a bool tensor"):
        mha(torch.randn(1, 3, 4, generator=g), mask=mask.float())


@SMALL
@given(n_head=st.integers(-3, 6), n_embd=st.integers(-8, 24), block=st.integers(-2, 16), layers=st.integers(-1, 3))
def test_gpt_config_integers_accepted_when_valid_refused_with_their_name_otherwise(n_head, n_embd, block, layers):
    args = dict(n_head=n_head, n_embd=n_embd, block_size=block, n_layer=layers, vocab_size=7)
    bad = [name for name, v in args.items() if v < 1]
    if bad:
        with pytest.raises(ValueError, match=f"({'|'.join(bad)})=-?\\d+: expected an integer >= 1"):
            GPTConfig(**args)
    elif n_embd % n_head:
        with pytest.raises(ValueError, match="divisible"):
            GPTConfig(**args)
    else:
        assert GPTConfig(**args).n_head == n_head
    with pytest.raises(TypeError, match="n_embd=.*expected an integer"):
        GPTConfig(n_embd=float(max(n_embd, 1)) + 0.5)


@SMALL
@given(batch=st.integers(-2, 64), minibatch=st.integers(-2, 16), epochs=st.integers(-1, 4), k=st.integers(-1, 5))
def test_ppo_config_integers(batch, minibatch, epochs, k):
    args = dict(batch=batch, minibatch=minibatch, epochs=epochs, rloo_k=k, advantage="rloo")
    low = {"batch": 1, "minibatch": 1, "epochs": 1, "rloo_k": 2}
    bad = [name for name in low if args[name] < low[name]]
    if bad:
        with pytest.raises(ValueError, match=f"({'|'.join(bad)})=-?\\d+: expected an integer"):
            PPOConfig(**args)
    elif batch % minibatch or batch % k:
        with pytest.raises(ValueError, match="multiple"):
            PPOConfig(**args)
    else:
        assert PPOConfig(**args).minibatch == minibatch


@SMALL
@given(every=st.integers(-5, 5), fraction=st.floats(-1, 2, allow_nan=False))
def test_train_config_and_split_ranges(every, fraction):
    if every < 0:
        with pytest.raises(ValueError, match=f"eval_every={every}"):
            TrainConfig(eval_every=every)
    else:
        assert TrainConfig(eval_every=every).eval_every == every
    text = "abcdefghij"
    if 0 <= fraction < 1:
        train, val = train_val_split(text, fraction)
        assert train + val == text
    else:
        with pytest.raises(ValueError, match="val_fraction="):
            train_val_split(text, fraction)


@SMALL
@given(temperature=st.one_of(st.just(0.0), st.floats(0.05, 50), st.floats(max_value=-1e-9),
                             st.sampled_from([math.inf, -math.inf, math.nan])), top_k=st.integers(-2, 12))
def test_sampling_settings(temperature, top_k):
    logits = torch.randn(2, 11, generator=torch.Generator().manual_seed(0))
    ok_t = math.isfinite(temperature) and temperature >= 0
    if not ok_t:
        with pytest.raises(ValueError, match="temperature="):
            next_token(logits, temperature)
    elif top_k >= 1:
        tok, lp = next_token(logits, temperature, top_k=top_k, generator=torch.Generator().manual_seed(1))
        assert tok.shape == (2,) and torch.all(lp <= 0)
    else:
        with pytest.raises(ValueError, match="top_k="):
            next_token(logits, max(temperature, 1.0), top_k=top_k)


def test_grad_clip_still_accepts_a_positive_norm_and_none():
    assert TrainConfig(grad_clip=0.5).grad_clip == 0.5 and TrainConfig(grad_clip=None).grad_clip is None


@pytest.mark.parametrize("ids, error, match", [
    ([[0, 5, 11]], ValueError, r"prompt: token ids must be in \[0, 11\) \(the model's vocab_size\), got ids from 0 to 11"),
    ([[-1, 3]], ValueError, r"prompt: token ids must be in \[0, 11\)"),
    ([[0.0, 1.0]], TypeError, "prompt: expected integer token ids, got dtype torch.float32"),
])
def test_generate_refuses_ids_outside_the_vocabulary(ids, error, match):
    model = nano_gpt()
    assert model.cfg.vocab_size == 11
    with pytest.raises(error, match=match):
        generate(model, torch.tensor(ids), 2)


def test_gguf_tokenizer_names_a_byte_its_vocabulary_lacks():
    from course_lib.text.gguf_tokenizer import GGUFTokenizer, bytes_to_unicode

    spell = bytes_to_unicode()
    tok = GGUFTokenizer([spell[b] for b in b"abc "], [], [])
    assert tok.encode("abc") == [0, 1, 2]
    with pytest.raises(ValueError, match=r"text: 'abz' needs the token 'z' \(byte 0x7a\), which this vocabulary lacks"):
        tok.encode("abz")


def test_a_gguf_file_is_checked_against_the_checksum_beside_it(tmp_path):
    import hashlib

    from course_lib.gpt.gguf_model import GGUFError, open_gguf

    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + bytes(100))
    (tmp_path / "model.gguf.sha256").write_text(hashlib.sha256(b"something else").hexdigest() + "  model.gguf\n")
    with pytest.raises(GGUFError, match=r"model.gguf has sha256 [0-9a-f]{64}, but model.gguf.sha256 says .*corrupt"):
        open_gguf(path)
    (tmp_path / "model.gguf.sha256").write_text(hashlib.sha256(path.read_bytes()).hexdigest() + "  model.gguf\n")
    with pytest.raises(GGUFError, match="could not be read as GGUF"):   # past the checksum, to the parser
        open_gguf(path)
    (tmp_path / "model.gguf.sha256").write_text("not a digest\n")
    with pytest.raises(GGUFError, match=r"model.gguf.sha256: expected a sha256 \(64 hex digits"):
        open_gguf(path)


@pytest.mark.parametrize("body", ["", "x"])
def test_a_chat_template_that_loops_without_end_is_stopped_by_its_budget(body):
    from course_lib.text.gguf_tokenizer import GGUFTokenizer, bytes_to_unicode

    spell = bytes_to_unicode()
    tok = GGUFTokenizer([spell[b] for b in range(256)], [], [],
                        chat_template="{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}")
    assert tok.render_chat([{"role": "user", "content": "hi"}]) == "<user>hi"
    tok.chat_template = "{% for i in range(100000) %}{% for j in range(100000) %}" + body + "{% endfor %}{% endfor %}"
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"chat template: more than 1,000,000 steps"):
        tok.render_chat([])
    assert time.perf_counter() - start < 30       # each range is capped, 10**10 steps were not
