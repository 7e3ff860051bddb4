from dataclasses import dataclass

import pytest

from course_lib.lstm import DelayRecipe
from course_lib.presets import Presets
from course_lib.rnn import CharLMRecipe, NamesRecipe, RecurrentConfig
from course_lib.runtime import PROFILES


@dataclass
class Toy(Presets):
    width: int = 8
    PRESETS = {"smoke": dict(width=2)}


def test_preset_with_overrides_and_clear_errors():
    assert Toy.preset("smoke").width == 2
    assert Toy.preset("smoke", width=5).width == 5
    with pytest.raises(ValueError, match="no preset 'lesson'.*smoke"):
        Toy.preset("lesson")
    with pytest.raises(TypeError, match="no field"):
        Toy.preset("smoke", depth=3)


@pytest.mark.parametrize("cls", [RecurrentConfig, CharLMRecipe, NamesRecipe, DelayRecipe])
def test_every_course_config_has_every_profile(cls):
    for profile in PROFILES:
        cls.preset(profile)
