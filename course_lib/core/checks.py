"""Argument checks for the public boundaries: a wrong argument fails where it enters, with an error that names it
and says what was expected, instead of broadcasting silently or failing deep inside torch.

    integer("n_head", n_head, minimum=1)          # TypeError for 2.5 or True, ValueError for 0
    real("temperature", t, minimum=0)             # TypeError for "hot", ValueError for -1, nan or inf
    same_shape(logp=logp, old_logp=old_logp)      # ValueError naming the tensor whose shape differs
"""
from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Iterable, Sequence

import torch


def integer(name: str, value, minimum: int | None = None) -> int:
    """`value` as an int; a float, a bool or anything else is a TypeError, below `minimum` a ValueError."""
    expected = "an integer" if minimum is None else f"an integer >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}={value!r}: expected {expected}, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value!r}: expected {expected}")
    return int(value)


def real(name: str, value, minimum: float | None = None, *, above: bool = False, finite: bool = True) -> float:
    """`value` as a float, finite unless told otherwise and >= `minimum` (> with `above=True`)."""
    bound = "" if minimum is None else f" {'>' if above else '>='} {minimum}"
    expected = f"a {'finite ' if finite else ''}number{bound}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={value!r}: expected {expected}, got {type(value).__name__}")
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f"{name}={value!r}: expected {expected}")
    if minimum is not None and (value <= minimum if above else value < minimum):
        raise ValueError(f"{name}={value!r}: expected {expected}")
    return value


def same_shape(**tensors: torch.Tensor) -> tuple[int, ...]:
    """All tensors (by keyword, the first is the reference) have one shape; returns it. The error names the
    tensor that differs, e.g. "ref_chosen has shape (4, 1) but policy_chosen has (4,)"."""
    (first, ref), *rest = tensors.items()
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    for name, t in rest:
        if t.shape != ref.shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)} but {first} has {tuple(ref.shape)}: "
                             "expected equal shapes (no broadcasting)")
    return tuple(ref.shape)


def non_empty(name: str, t: torch.Tensor) -> torch.Tensor:
    if t.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)}): expected at least one element")
    return t


def token_ids(name: str, ids: Iterable, size: int) -> list[int]:
    """Integer ids in 0..size-1 (ints, numpy integers or integer tensors); floats are a TypeError (no
    truncation), negative or too large ids a ValueError (no wrap-around)."""
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise TypeError(f"{name}: expected a sequence of integer token ids, got {type(ids).__name__}")
    if isinstance(ids, torch.Tensor):
        if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
            raise TypeError(f"{name}: expected integer token ids, got a tensor of {ids.dtype}")
        ids = ids.reshape(-1).tolist()
    out = []
    for i in ids:
        if isinstance(i, bool):
            raise TypeError(f"{name}: expected integer token ids, got {i!r}")
        try:
            i = operator.index(i)
        except TypeError:
            raise TypeError(f"{name}: expected integer token ids, got {i!r} ({type(i).__name__})") from None
        if not 0 <= i < size:
            raise ValueError(f"{name}: id {i} is outside the vocabulary (0..{size - 1})")
        out.append(i)
    return out


def names(name: str, value, allow_empty: bool = True) -> tuple[str, ...]:
    """A sequence of strings (a tuple or list of names); a bare string is refused: iterated, it would give
    its characters."""
    if isinstance(value, str) or not isinstance(value, (Sequence, set, frozenset)):
        raise TypeError(f"{name}={value!r}: expected a sequence of names, e.g. ({value!r},)" if isinstance(value, str)
                        else f"{name}={value!r}: expected a sequence of names, got {type(value).__name__}")
    out = tuple(value)
    if not all(isinstance(v, str) and v for v in out):
        raise TypeError(f"{name}={value!r}: expected non-empty strings")
    if not allow_empty and not out:
        raise ValueError(f"{name}: expected at least one name")
    return out
