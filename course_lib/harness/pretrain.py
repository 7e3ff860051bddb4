"""Pretrain a GPT on tinyshakespeare: in one process, or in several with DistributedDataParallel.

    python -m course_lib.harness.pretrain --preset baby --out build/checkpoints/gpt_baby.safetensors
    torchrun --nproc_per_node 2 -m course_lib.harness.pretrain --preset baby --out build/checkpoints/gpt_baby.safetensors
    python -m course_lib.harness.pretrain --preset baby --out ... --resume        # continue an interrupted run

DDP in one paragraph: every process holds a full copy of the model and takes its own slice of the batch;
after backward, the gradients are averaged across processes (gloo on CPU, nccl on CUDA), so every copy takes
the same optimizer step and the copies stay identical. `--batch` is per process: N processes with batch b
train exactly like one process with batch N*b (each step's global batch is drawn from (seed, step) and
process r takes rows r*b..(r+1)*b).

Files: `--out` gets the weights, config and tokenizer (read them with `course_lib.gpt.checkpoint.load`); next to it,
`<out>.state.safetensors` holds the optimizer, step and history for `--resume`. Only rank 0 writes.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
import torch.distributed as dist

from ..core import data, paths
from ..text import lm_data
from ..text.bpe import ByteBPE
from ..gpt.checkpoint import save
from ..gpt.model import GPT
from ..recipes.gpt import BabyGPTRecipe, GPTRecipe, LessonGPTRecipe
from ..core.progress import progress_enabled
from ..core.runtime import pick_device, seed_everything, set_threads
from ..text.tokenizers import CharTokenizer
from ..core.train import Trainer


def state_path(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".safetensors") + ".state.safetensors")


def sharded_batches(train: torch.Tensor, block: int, batch: int, rank: int, world: int, seed: int):
    """`get_batch(step)` for process `rank` of `world`: its slice of one global batch of `batch * world` rows."""
    full = lm_data.batches_by_step(train, block, batch * world, seed)

    def get_batch(step: int):
        x, y = full(step)
        return x[rank * batch:(rank + 1) * batch], y[rank * batch:(rank + 1) * batch]
    return get_batch


def replica_max_diff(model: torch.nn.Module) -> float:
    """Largest difference between this process's weights and rank 0's (0.0 when DDP kept them in sync)."""
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    ref = flat.clone()
    dist.broadcast(ref, src=0)
    diff = (flat - ref).abs().max()
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    return float(diff)


# The runs this script knows: nanoGPT's CPU baby, and lesson 06's model at each profile.
RUNS: dict[str, GPTRecipe] = {"baby": BabyGPTRecipe.preset("lesson"),
                              **{p: LessonGPTRecipe.preset(p) for p in ("smoke", "lesson", "gpu")}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="baby", choices=sorted(RUNS), help="the run: model size + training recipe")
    p.add_argument("--tokenizer", default="char", choices=["char", "bpe"])
    p.add_argument("--vocab-size", type=int, default=512, help="BPE vocabulary size")
    p.add_argument("--steps", type=int, help="total optimisation steps (default: the recipe's)")
    p.add_argument("--until", type=int, help="stop after this step (the schedule still spans --steps)")
    p.add_argument("--batch", type=int, help="sequences per step per process (default: the recipe's)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: the recipe's)")
    p.add_argument("--eval-batches", type=int, default=10, help="validation batches of 32 windows per evaluation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--out", type=Path, default=None,
                   help="weights file (default build/checkpoints/gpt_<preset>.safetensors)")
    p.add_argument("--resume", action="store_true", help="continue from <out>.state.safetensors")
    args = p.parse_args(argv)
    for name in ("steps", "until", "batch", "eval_batches"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    # share the cores between the processes on this machine instead of oversubscribing them
    set_threads(int(os.environ.get("COURSE_THREADS", "0"))
                or max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
    device = pick_device(args.device)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")

    text = data.load_shakespeare()
    train_text, val_text = data.train_val_split(text)
    tok = CharTokenizer.fit(text) if args.tokenizer == "char" else ByteBPE.train(train_text, args.vocab_size)
    train_ids = torch.tensor(tok.encode(train_text))
    val_ids = torch.tensor(tok.encode(val_text))

    run = RUNS[args.preset]
    cfg = run.model_config(vocab_size=len(tok))
    train_cfg = run.train_config(**{k: v for k, v in dict(steps=args.steps, lr=args.lr).items() if v is not None})
    batch = args.batch or run.batch
    seed_everything(args.seed)   # the same initial weights everywhere (DDP also broadcasts rank 0's)
    model = GPT(cfg).to(device)
    wrapped = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        wrapped = DDP(model, device_ids=[local_rank] if device.type == "cuda" else None)

    out = args.out or paths.checkpoints_dir() / f"gpt_{args.preset}.safetensors"
    evaluate = lambda m: {"val_loss": lm_data.evaluate_lm(m, val_ids, cfg.block_size, batch=32,
                                                          batches=args.eval_batches, device=device)}
    get_batch = sharded_batches(train_ids, cfg.block_size, batch, rank, world, args.seed)
    trainer = Trainer(wrapped, lm_data.lm_loss, get_batch, train_cfg, device=device, eval_fn=evaluate,
                      name=f"gpt-{args.preset}",
                      checkpoint_path=state_path(out) if rank == 0 else None,
                      progress=rank == 0 and progress_enabled())
    if args.resume:
        trainer.load(state_path(out))   # every process resumes from rank 0's file
    history = trainer.fit(until=args.until)
    if not history.evals or history.evals[-1]["step"] != trainer.step:
        trainer.evaluate()   # stopped between evaluations (--until)

    drift = replica_max_diff(model) if world > 1 else 0.0
    if drift != 0.0:
        raise RuntimeError(f"DDP replicas differ by up to {drift:g} after training; refusing to save")
    summary = {"step": trainer.step, "world_size": world, "val_loss": history.last_eval("val_loss"),
               "tokens_per_step": batch * world * cfg.block_size, "seconds": history.seconds,
               "replica_max_diff": drift}
    if rank == 0:
        save(model, out, tokenizer=tok, **summary)
        print(f"step {trainer.step}/{train_cfg.steps} | val loss {summary['val_loss']:.4f} | "
              f"{world} process(es) | {history.seconds:.1f} s | wrote {out}")
    if world > 1:
        dist.destroy_process_group()
    return summary


if __name__ == "__main__":
    main()
