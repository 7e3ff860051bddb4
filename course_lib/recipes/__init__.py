"""Every run budget (steps, learning rates, batches, widths) per profile, one module per lesson family.
Models never import these; lessons and training loops do.
"""
from .bert import (BertRecipe)
from .emergence import (InductionRecipe, FewShotRecipe, LMFamilyRecipe, AdditionFamilyRecipe, CircuitRecipe)
from .gpt import (GPTRecipe, LessonGPTRecipe, BabyGPTRecipe, ScalingRecipe, checkpoint_path)
from .instruct import (SFTRecipe, ChatRecipe)
from .reasoning import (FormatRecipe, RLVRRecipe, GlimpseRecipe)
from .recurrent import (Recipe, CharLMRecipe, NamesRecipe, DelayRecipe, ExplodingRecipe, train_recall)
from .translation import (Seq2SeqRecipe, ReversalRecipe, TransformerRecipe)
