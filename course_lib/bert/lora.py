"""LoRA (Hu et al., 2021): fine-tune a big frozen matrix W by learning only a low-rank change to it.

    y = x W^T + b + (alpha / r) * x A^T B^T        A: (r, in), B: (out, r), r << min(in, out)

W stays frozen; only A and B train: r * (in + out) numbers instead of in * out. B starts at zero, so at step 0
the model is exactly the pretrained one. After training, W + (alpha / r) B A is one ordinary matrix again
(`merge_lora`): no extra cost at inference.

    add_lora(model, targets=("q_proj", "v_proj"), rank=8, alpha=16, train=("classifier",))
    trainable = count_parameters(model, trainable_only=True)     # course_lib.core.parameters
    merge_lora(model)   # same outputs, plain nn.Linear layers
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.checks import integer, names, real


class LoRALinear(nn.Module):
    """A frozen `nn.Linear` plus a trainable low-rank update."""

    def __init__(self, base: nn.Linear, rank: int = 8, alpha: float = 16.0, dropout: float = 0.0):
        super().__init__()
        if isinstance(base, LoRALinear):
            raise ValueError("this layer already has a LoRA adapter: merge_lora first, or adapt a fresh model")
        if not isinstance(base, nn.Linear):
            raise ValueError(f"LoRA wraps nn.Linear layers, got {type(base).__name__}")
        integer("rank", rank, 1)
        if real("alpha", alpha) == 0:
            raise ValueError("alpha=0: expected a non-zero scale (alpha / rank multiplies the update; with 0 the "
                             "adapter can never change the model)")
        if not 0.0 <= real("dropout", dropout) < 1.0:
            raise ValueError(f"dropout={dropout}: expected a probability in [0, 1)")
        if not 1 <= rank <= min(base.in_features, base.out_features):
            raise ValueError(f"rank={rank}: expected 1 <= rank <= {min(base.in_features, base.out_features)}")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.rank, self.scale = rank, alpha / rank
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, device=w.device, dtype=w.dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=w.device, dtype=w.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear; B = 0 makes the update start at 0
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + F.linear(F.linear(self.drop(x), self.lora_A), self.lora_B) * self.scale

    def merged(self) -> nn.Linear:
        """An ordinary nn.Linear computing the same function (W + scale * B A)."""
        b = self.base
        out = nn.Linear(b.in_features, b.out_features, bias=b.bias is not None, device=b.weight.device,
                        dtype=b.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(b.weight + self.scale * self.lora_B @ self.lora_A)
            if b.bias is not None:
                out.bias.copy_(b.bias)
        return out


def add_lora(model: nn.Module, targets: Sequence[str] = ("q_proj", "v_proj"), rank: int = 8, alpha: float = 16.0,
             dropout: float = 0.0, train: Sequence[str] = ()) -> list[str]:
    """Freeze `model`, then wrap every nn.Linear whose own name (the last component) is one of `targets` in a
    LoRALinear.

    `targets` and `train` are sequences of names (a bare string is refused: it would be read letter by letter).
    Parameters under a module named in `train` (a whole dotted prefix, e.g. "classifier" or "layers.3", never
    a partial name: "wte" does not select "wpe") stay trainable.
    Returns the names of the wrapped layers; raises if none matched, or if the model already has adapters.
    """
    targets = names("targets", targets, allow_empty=False)
    train = names("train", train)
    integer("rank", rank, 1)
    if real("alpha", alpha) == 0:
        raise ValueError("alpha=0: expected a non-zero scale (alpha / rank multiplies the update; with 0 the "
                         "adapter can never change the model)")
    adapted = [name for name, m in model.named_modules() if isinstance(m, LoRALinear)]
    if adapted:
        raise ValueError(f"the model is already adapted: it has LoRA layers ({', '.join(adapted[:4])}"
                         f"{', ...' if len(adapted) > 4 else ''}); merge_lora(model) first, or start from a fresh model")
    param_names = [name for name, _ in model.named_parameters()]
    unknown = [t for t in train if not any(_under(name, t) for name in param_names)]
    if unknown:
        raise ValueError(f"train={list(train)}: no parameters under {unknown} (expected module names such as "
                         f"{sorted({n.split('.')[0] for n in param_names})[:8]})")
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = []
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Linear) and name.split(".")[-1] in targets:
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, LoRALinear(module, rank, alpha, dropout))
            wrapped.append(name)
    if not wrapped:
        raise ValueError(f"targets={list(targets)}: no nn.Linear with such a name in the model: nothing to adapt")
    for name, p in model.named_parameters():
        if any(_under(name, t) for t in train):
            p.requires_grad_(True)
    return wrapped


def _under(name: str, prefix: str) -> bool:
    """Whether the parameter `name` is `prefix` itself or lies inside the module `prefix` (whole components)."""
    return name == prefix or name.startswith(prefix + ".")


def merge_lora(model: nn.Module) -> int:
    """Replace every LoRALinear by its merged nn.Linear, in place. Returns how many were merged."""
    targets = [(name, m) for name, m in model.named_modules() if isinstance(m, LoRALinear)]
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, module.merged())
    return len(targets)

