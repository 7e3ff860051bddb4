"""Run budgets of lesson 07 (BERT): text, steps and labels per profile (the model's sizes are BertConfig's)."""
from __future__ import annotations

from dataclasses import dataclass

from ..core.presets import Presets
from ..core.train import TrainConfig


@dataclass
class BertRecipe(Presets):
    """Lesson 07's budgets per profile: text, steps and labels (the model's sizes are BertConfig's presets)."""
    corpus_lines: int = 0                # unlabeled lines to pretrain on (0: all)
    vocab: int = 8000                    # BERT's vocabulary trimmed to this many tokens
    held_out_tokens: int = 20000         # the end of the token stream, for evaluation only
    block: int = 32                      # tokens per pretraining window, [CLS] and [SEP] included
    batch: int = 16
    pretrain_steps: int = 1500           # 7.4 % held-out masked accuracy; 2000 steps gave 8.7 %, not worth 30 s
    pretrain_lr: float = 1e-3           # 3e-3 left this post-norm model stuck near unigram guesses (3 % accuracy)
    pretrain_dropout: float = 0.0        # a short pretraining run is far from overfitting
    val_batches: int = 4
    min_mlm_gain: float = 0.05           # held-out masked-token accuracy must rise at least this much
    gpt_steps: int = 700                 # a GPT step scores every position: 700 cost about BERT's 1500
    max_sentence: int = 64               # fine-tuning inputs are cut to this many tokens
    dev_sentences: int = 0               # 0: all 872
    label_budgets: tuple[int, ...] = (100, 1000)         # our small BERT, pretrained vs from scratch
    finetune_batch: int = 32
    finetune_lr: float = 3e-4            # our small BERT's fine-tuning (both sides); MiniLM's sides use minilm_lr
    transfer_budgets: tuple[int, ...] = (100,)           # MiniLM, pretrained vs the same network from scratch
                                         # (1,000 labels cost up to 300 MiniLM steps a side: the gpu profile has them)
    # Every transfer run (both models, both sides) trains until it stops improving: early stopping on a stopping
    # set of SST-2 *training* sentences outside every label budget (never the dev set that is reported)
    finetune_max_steps: int = 300        # the cap; at 1,000 labels about 10 passes over the examples
    stop_every: int = 10                 # score the stopping set every this many steps
    patience: int = 100                  # stop when this many steps bring no new best stopping-set accuracy: a model
                                         # from scratch can sit at the commoner label for 80 steps before it learns
                                         # (50 stopped our small BERT at 1,000 labels there, on seed 0)
    stop_sentences: int = 200
    probe_examples: int = 2000
    minilm_steps: int = 750              # mid-run dev accuracy of a 900-step run: 85.2 % at 300, 87.3 % at 600
    minilm_lr: float = 1e-4
    lora_rank: int = 8
    lora_step_ratio: float = 1.5         # LoRA steps per full fine-tuning step: the same arithmetic (see lora_steps)
    lora_lr: float = 1e-3                # 10x full fine-tuning's; 2e-3 left LoRA 1.3 points behind on average over 3 seeds
                                         # x fp32/bf16 (worst 1.8), 1e-3 0.9 (worst 1.3), 3e-3 7 points (1 run)
    eval_every: int = 375

    PRESETS = {
        "smoke": dict(corpus_lines=3000, vocab=2000, held_out_tokens=2000, pretrain_steps=30, val_batches=1,
                      gpt_steps=15, dev_sentences=64, label_budgets=(20, 40), transfer_budgets=(20,),
                      finetune_max_steps=4, stop_every=2, patience=2, stop_sentences=32, finetune_batch=8,
                      probe_examples=64, minilm_steps=3, eval_every=0),
        "lesson": dict(),
        "gpu": dict(vocab=16000, block=128, batch=64, pretrain_steps=20000, pretrain_lr=1e-3,
                    pretrain_dropout=0.1, min_mlm_gain=0.2, gpt_steps=10000, label_budgets=(100, 1000, 10000, 67349),
                    transfer_budgets=(100, 1000, 10000), finetune_max_steps=3000, stop_every=50, patience=500,
                    stop_sentences=1000, minilm_steps=4000, minilm_lr=5e-5,
                    eval_every=500),
    }

    @property
    def lora_steps(self) -> int:
        """LoRA's steps: 1.5x the full fine-tune's, about the same arithmetic. A LoRA step computes no gradients
        for the frozen matrices (forward and input gradients: about 2 of a full step's 3 units). Measured at
        lesson, 3 seeds x bf16/fp32: at equal steps LoRA ended 0.9 points behind on average (worst 1.3, and 2.1
        in one notebook run); at 1.5x, 0.3 (worst 1.0)."""
        return round(self.lora_step_ratio * self.minilm_steps)

    def pretrain_config(self, steps: int | None = None):
        steps = steps or self.pretrain_steps
        return TrainConfig(steps=steps, lr=self.pretrain_lr, warmup=max(1, steps // 20), schedule="linear",
                           weight_decay=0.01, eval_every=max(1, steps // 8))

    def finetune_config(self, steps: int | None = None, lr: float | None = None, cpu_amp: bool = False):
        """One transfer run (either model, either side): a constant learning rate after a short warm-up, so the
        cap does not shape the schedule; the stopping set scored every `stop_every` steps, and at the cap the
        weights of its best score restored (`keep_best`). The notebook stops earlier after `patience` steps
        without a new best. `cpu_amp`: bf16 autocast where the CPU has it (MiniLM's size; see minilm_config)."""
        steps = steps or self.finetune_max_steps
        return TrainConfig(steps=steps, lr=lr or self.finetune_lr, warmup=min(10, max(1, steps // 10)),
                           schedule="constant", weight_decay=0.01, eval_every=self.stop_every,
                           keep_best="stop_error", cpu_amp=cpu_amp)

    def minilm_config(self, lr: float | None = None, steps: int | None = None):
        steps = steps or self.minilm_steps
        return TrainConfig(steps=steps, lr=lr or self.minilm_lr, warmup=max(1, steps // 10),
                           schedule="linear", min_lr=0.0, weight_decay=0.01, eval_every=self.eval_every,
                           cpu_amp=True)
