from dataclasses import dataclass

import pytest

from course_lib.bert import BertConfig
from course_lib.core.presets import Presets
from course_lib.core.runtime import PROFILES
from course_lib.gpt import GPTConfig
from course_lib.recipes.bert import BertRecipe
from course_lib.recipes.gpt import BabyGPTRecipe, LessonGPTRecipe, ScalingRecipe
from course_lib.recipes.reasoning import FormatRecipe, GlimpseRecipe, RLVRRecipe
from course_lib.recipes.recurrent import CharLMRecipe, DelayRecipe, NamesRecipe
from course_lib.recipes.translation import ReversalRecipe, Seq2SeqRecipe, TransformerRecipe
from course_lib.recurrent import RecurrentConfig
from course_lib.rlhf import DPOConfig, JudgeConfig, PPOConfig, RewardConfig, RLHFConfig
from course_lib.transformer import TransformerConfig
from course_lib.translation import Seq2SeqConfig, TranslationConfig

RECIPES = [CharLMRecipe, NamesRecipe, DelayRecipe, Seq2SeqRecipe, ReversalRecipe, TransformerRecipe,
           LessonGPTRecipe, BabyGPTRecipe, ScalingRecipe, BertRecipe, FormatRecipe]
CONFIGS = [RecurrentConfig, Seq2SeqConfig, TranslationConfig, TransformerConfig, GPTConfig, BertConfig,
           RLHFConfig, PPOConfig, DPOConfig, RewardConfig, JudgeConfig, RLVRRecipe, GlimpseRecipe]


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


@pytest.mark.parametrize("cls", RECIPES + CONFIGS, ids=lambda c: c.__name__)
def test_presets_are_keyed_by_profile_only(cls):
    """Preset keys mean one thing: profiles. A named model size (nanoGPT's "baby") is not a profile."""
    assert set(cls.PRESETS) == set(PROFILES), f"{cls.__name__}: {sorted(cls.PRESETS)}"
    for profile in PROFILES:
        cls.preset(profile)


@pytest.mark.parametrize("cls", RECIPES, ids=lambda c: c.__name__)
def test_every_recipe_budgets_in_steps_and_builds_its_train_config(cls):
    """One shape for a recipe: a Presets dataclass whose train_config() hands the Trainer a step budget."""
    for profile in PROFILES:
        recipe = cls.preset(profile)
        configs = [recipe.train_config()] if cls is not BertRecipe else [
            recipe.pretrain_config(), recipe.finetune_config(5), recipe.minilm_config()]
        for cfg in configs:
            assert cfg.steps >= 1 and cfg.max_seconds is None, (cls.__name__, profile)
