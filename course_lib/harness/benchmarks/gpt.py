"""GPT speed: training tokens/s at nanoGPT's baby preset (with model FLOPs utilisation against this machine's
measured matmul ceiling), and generation tokens/s with and without the KV cache."""
from __future__ import annotations

import torch

from ..bench import matmul_flops_per_second, time_call
from ...gpt.generation import generate
from ...gpt.model import GPT, GPTConfig
from ...recipes.gpt import BabyGPTRecipe
from ...text.lm_data import lm_loss
from ...core.runtime import pick_device
from ...core.train import make_optimizer


def train_row(device: torch.device, ceiling: float, quick: bool) -> dict:
    run = BabyGPTRecipe.preset("lesson")
    cfg, train_cfg, batch = run.model_config(), run.train_config(), run.batch
    torch.manual_seed(0)
    model = GPT(cfg).to(device)
    opt = make_optimizer(model, train_cfg)
    x = torch.randint(cfg.vocab_size, (2, batch, cfg.block_size), device=device)

    def step():
        loss = lm_loss(model, (x[0], x[1]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    seconds = time_call(step, repeats=5 if quick else 20, warmup=2, device=device)
    tokens_per_s = batch * cfg.block_size / seconds
    achieved = tokens_per_s * model.flops_per_token(cfg.block_size)
    return {"suite": "gpt", "name": f"train baby {cfg.n_layer}L {cfg.n_embd}d B{batch} T{cfg.block_size}",
            "tokens/s": round(tokens_per_s), "ms/step": round(seconds * 1e3, 1),
            "MFU %": round(100 * achieved / ceiling, 1)}


def generation_rows(device: torch.device, quick: bool) -> list[dict]:
    # the baby architecture with a context long enough for 512 new tokens to stay inside the block
    torch.manual_seed(0)
    model = GPT(GPTConfig.sized("baby", block_size=1024)).to(device).eval()
    prompt = torch.randint(model.cfg.vocab_size, (1, 8), device=device)
    rows = []
    for new in (128,) if quick else (128, 512):
        times = {}
        for cache in (True, False):
            times[cache] = time_call(lambda: generate(model, prompt, new, temperature=0, use_cache=cache),
                                     repeats=1 if quick else 3, warmup=1, device=device)
            rows.append({"suite": "gpt", "name": f"generate {new} new tokens, {'KV cache' if cache else 'no cache'}",
                         "tokens/s": round(new / times[cache])})
        rows[-2]["speedup"] = round(times[False] / times[True], 1)
    return rows


def run(quick: bool = False, device: torch.device | None = None, ceiling: float | None = None) -> list[dict]:
    """Rows for `make bench`. `ceiling` (FLOP/s) defaults to this machine's measured fp32 matmul throughput."""
    device = device or pick_device()
    ceiling = ceiling or matmul_flops_per_second(512 if quick else 1024, device)
    return [train_row(device, ceiling, quick), *generation_rows(device, quick)]
