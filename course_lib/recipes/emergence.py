"""Lesson 08's run budgets, one preset per profile (`smoke`, `lesson`, `gpu`), in steps, never in seconds:
what a run learns must not depend on how fast the machine is.

    recipe = InductionRecipe.preset(profile)
    model = AttnOnlyTransformer(recipe.model_config(n_layers=2))
    Trainer(model, loss, batches, recipe.train_config(), ...)
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core.presets import Presets
from ..core.train import TrainConfig
from ..emergence.attention_only import AttnOnlyConfig
from ..gpt.model import GPTConfig
from .reasoning import FormatRecipe


@dataclass
class InductionRecipe(Presets):
    """Induction heads from scratch: the task, the two attention-only models, the budget they share."""
    vocab: int = 32
    seq_len: int = 48
    min_len: int = 6              # the repeated segment is 6-12 tokens long, both copies at random places
    max_len: int = 12
    d_model: int = 64
    heads: tuple[int, ...] = (2, 1)   # two heads in layer 0, one in layer 1
    one_layer_d_model: int = 96   # the 1-layer control is wider, so it has at least as many parameters
    one_layer_heads: int = 2
    steps: int = 2500
    batch: int = 32
    lr: float = 1e-3
    eval_every: int = 50          # fine enough to see where the cliff is
    eval_size: int = 256          # fixed held-out sequences for every evaluation

    PRESETS = {
        "smoke": dict(d_model=32, one_layer_d_model=48, steps=60, eval_every=20, eval_size=64),
        "lesson": dict(),
        "gpu": dict(steps=4000, eval_every=25, eval_size=1024),
    }

    def task(self, **overrides) -> dict:
        """Keyword arguments for `emergence.induction_batch`."""
        return {"seq_len": self.seq_len, "vocab": self.vocab, "min_len": self.min_len, "max_len": self.max_len,
                **overrides}

    def model_config(self, n_layers: int) -> AttnOnlyConfig:
        if n_layers == 1:
            return AttnOnlyConfig(vocab_size=self.vocab, block_size=self.seq_len, d_model=self.one_layer_d_model,
                                  n_layers=1, n_heads=self.one_layer_heads, layernorm=True)
        heads = self.heads if len(self.heads) == n_layers else (self.heads[0],) * n_layers
        return AttnOnlyConfig(vocab_size=self.vocab, block_size=self.seq_len, d_model=self.d_model,
                              n_layers=n_layers, n_heads=heads, layernorm=True)

    def train_config(self, **overrides) -> TrainConfig:
        # a constant learning rate: a decaying one would flatten the end of the curve and blur the cliff
        return TrainConfig(**{"steps": self.steps, "lr": self.lr, "schedule": "constant", "warmup": 0,
                              "eval_every": self.eval_every, "log_every": 10, **overrides})


@dataclass
class FewShotRecipe(Presets):
    """Few-shot classification learned in context (Chan et al. 2022): Transformer vs LSTM, same budget, at several
    numbers of item-label bindings per sequence (`ways`): a fresh pair of models for each."""
    n_pairs: int = 16             # (item, label) pairs per sequence; the model answers after each item
    n_items: int = 32
    n_labels: int = 2
    ways: tuple[int, ...] = (2, 4, 8)   # bursty sequences: items from n_way classes (bindings to hold at once)
    d_model: int = 64             # the attention-only Transformer of section 2
    heads: tuple[int, ...] = (2, 1)
    lstm_embed: int = 32          # lesson 02's LSTM language model, sized to about the same parameters
    lstm_hidden: int = 80
    steps: int = 3000
    batch: int = 32
    lr: float = 1e-3
    eval_every: int = 250
    eval_size: int = 1000
    min_gap_growth: float = 0.1   # the claim: Transformer-minus-LSTM gap rises at every n_way, by this much in all
    at_no_binding: float = 0.03   # a model this close to the no-binding rule has learned no binding
    above_no_binding: float = 0.1  # ... and this far above it has
    compare_bursty: bool = True   # also train the Transformer on non-bursty sequences

    PRESETS = {
        "smoke": dict(steps=30, eval_every=15, eval_size=200, d_model=32, lstm_hidden=40, lstm_embed=16),
        "lesson": dict(),
        "gpu": dict(steps=6000, eval_every=500, eval_size=4000),
    }

    @property
    def vocab(self) -> int:
        return self.n_items + self.n_labels

    def task(self, bursty: bool = True, n_way: int | None = None) -> dict:
        """The task's settings at `n_way` bindings (default: the first of `ways`)."""
        return {"n_pairs": self.n_pairs, "n_items": self.n_items, "n_labels": self.n_labels,
                "n_way": self.ways[0] if n_way is None else n_way, "bursty": bursty}

    def transformer_config(self) -> AttnOnlyConfig:
        return AttnOnlyConfig(vocab_size=self.vocab, block_size=2 * self.n_pairs, d_model=self.d_model,
                              n_layers=len(self.heads), n_heads=self.heads, layernorm=True)

    def train_config(self, **overrides) -> TrainConfig:
        return TrainConfig(**{"steps": self.steps, "lr": self.lr, "schedule": "constant", "warmup": 50,
                              "eval_every": self.eval_every, **overrides})


@dataclass
class LMFamilyRecipe(Presets):
    """Section 1's character GPT on tiny Shakespeare (lesson 06's recipe, at a budget this lesson can afford): the
    in-context-learning subject when lesson 06's own model is not in build/. (Section 5's family is
    `AdditionFamilyRecipe`.)"""
    width: int = 128
    n_layer: int = 2
    n_head: int = 4               # 2 for widths under 32
    block: int = 64
    batch: int = 32
    steps: int = 600
    lr: float = 3e-3
    warmup: int = 50
    use_lesson_06: bool = True    # use lesson 06's saved model in section 1 when it is in build/
    max_val_loss_06: float = 2.0  # ... and good enough (a smoke run's checkpoint is not)
    icl_windows: int = 256        # random validation windows for the loss-by-position curve
    repeat_len: int = 60          # the random string repeated twice (at most half the window)

    PRESETS = {
        "smoke": dict(width=16, n_layer=1, batch=8, steps=20, warmup=5, use_lesson_06=False, icl_windows=32,
                      repeat_len=20),
        "lesson": dict(),
        "gpu": dict(width=512, n_layer=4, block=128, batch=64, steps=3000, lr=1e-3, warmup=100),
    }

    def model_config(self, vocab_size: int) -> GPTConfig:
        return GPTConfig(vocab_size=vocab_size, block_size=self.block, n_layer=self.n_layer,
                         n_head=self.n_head if self.width >= 32 else 2, n_embd=self.width, bias=False)

    def train_config(self, **overrides) -> TrainConfig:
        return TrainConfig(**{"steps": self.steps, "lr": self.lr, "min_lr": self.lr / 10, "warmup": self.warmup,
                              "betas": (0.9, 0.99), "weight_decay": 0.1, **overrides})


@dataclass
class AdditionFamilyRecipe(Presets):
    """Section 5's family: GPTs of growing width, every one trained with the same steps and batches on 3-digit
    addition written column by column (lesson 11's scratchpad format, `478+365=3c1,4c1,8c0>843$`), then scored
    on held-out problems by a smooth ruler (per-character accuracy) and a sharp one (exact match)."""
    widths: list[int] = field(default_factory=lambda: [8, 16, 24, 32, 48, 64])
    fmt: str = "scratchpad"
    n_layer: int = 3
    n_head: int = 4
    train_problems: int = 20_000
    test_problems: int = 2000     # held out; binomial standard error of a rate of 0.1: 0.0067
    steps: int = 600
    batch: int = 64
    lr: float = 3e-3
    warmup: int = 50
    flat: float = 0.05            # exact match "still about zero" below this
    min_climb: float = 0.1        # per-character accuracy must climb at least this much while exact match is flat
    steep: float = 0.5            # the largest model must reach this exact match: the steep part of the curve
    min_predicted: float = 0.1    # the formula is compared with exact match only where it predicts at least this,
    ratio_band: tuple[float, float] = (0.8, 1.25)   # ... and must land within a factor 1.25 of it (3 standard errors)
    check_greedy: int = 200       # problems also completed by real greedy decoding, to check the identity

    PRESETS = {
        "smoke": dict(widths=[8, 16], n_layer=2, train_problems=2000, test_problems=200, steps=30, warmup=5,
                      check_greedy=20),
        "lesson": dict(),
        "gpu": dict(widths=[8, 12, 16, 20, 24, 28, 32, 48, 64, 96], steps=1500, test_problems=5000),
    }

    def format_recipe(self, width: int) -> FormatRecipe:
        """Lesson 11's recipe at this width and this family's budget (`train_format` reads it)."""
        return FormatRecipe(n_layer=self.n_layer, n_head=self.n_head, n_embd=width, train_problems=self.train_problems,
                            val_problems=1, test_problems=1, seeds=1, steps=self.steps, batch=self.batch, lr=self.lr,
                            warmup=self.warmup, eval_every=self.steps)


@dataclass
class CircuitRecipe(Presets):
    """In-context copying and its circuit in a real pretrained model, SmolLM2-135M-Instruct read into the course's
    own Llama (lesson 09's loader). Costs are forward passes only: no training."""
    real_model: bool = True       # False: a tiny random Llama of the same code stands in (smoke; numbers are noise)
    sequences: int = 8            # random-token sequences, each shown twice after a start token
    n_random: int = 40            # tokens per copy
    first_id: int = 17            # random ids start above SmolLM2's special tokens (0-16)
    start_id: int = 0             # SmolLM2's <|endoftext|>: the start token in front of every sequence
    top_k: tuple[int, ...] = (1, 3, 5, 10)     # how many top induction heads to ablate
    claim_k: int = 5              # the k of the claim: top-k vs k random heads
    random_draws: int = 3         # random k-head draws (the control)
    exclude_previous: int = 5     # the top previous-token heads (the circuit's other half) stay out of the draws
    prompts: int = 16             # few-shot prompts, each scoring every one of its n_pairs words: 128 queries
    n_pairs: int = 8
    labels: tuple[str, ...] = (" red", " blue", " green", " yellow")
    sep: str = " ="
    fewshot_k: int = 10           # top induction heads ablated in the few-shot test
    slider_heads: int = 12        # heads in the interactive figure (the best induction and previous-token heads)

    PRESETS = {
        "smoke": dict(real_model=False, sequences=2, n_random=12, top_k=(1, 3), claim_k=3, random_draws=2,
                      exclude_previous=2, prompts=2, n_pairs=4, fewshot_k=3, slider_heads=4),
        "lesson": dict(),
        "gpu": dict(sequences=32, n_random=50, random_draws=5, prompts=48),
    }
