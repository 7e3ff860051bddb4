"""Named presets for config dataclasses: the one place where a profile's sizes live.

    @dataclass
    class CharRNNConfig(Presets):
        hidden: int = 128
        PRESETS = {"smoke": dict(hidden=32), "lesson": dict(hidden=256)}

    CharRNNConfig.preset("smoke")  # -> CharRNNConfig(hidden=32)
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar


class Presets:
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def preset(cls, name: str, **overrides: Any):
        if name not in cls.PRESETS:
            known = ", ".join(sorted(cls.PRESETS)) or "none"
            raise ValueError(f"{cls.__name__} has no preset {name!r}: expected one of {known}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(overrides) - fields
        if unknown:
            raise TypeError(f"{cls.__name__} has no field(s) {sorted(unknown)}: expected some of {sorted(fields)}")
        return cls(**{**cls.PRESETS[name], **overrides})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
