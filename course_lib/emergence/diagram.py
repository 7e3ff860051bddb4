"""The induction circuit drawn as a picture (lesson 08, after Olsson et al. 2022's figure): the same row of
tokens at two layers; the previous-token head's arrows in layer 0, the induction head's arrow in layer 1."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch


def draw_induction_circuit(tokens: Sequence[str] = ("Mr", "D", "urs", "ley", "was", "…", "Mr", "D"),
                           ax=None, show: bool = True):
    """Two rows of the same tokens. Bottom (layer 0): every token's previous-token head looks one step back and
    notes "my predecessor was ...". Top (layer 1): the last token's induction head finds the position whose
    note matches it (the token after its earlier occurrence) and copies that token into the prediction."""
    toks = list(tokens)
    last = len(toks) - 1
    earlier = max((i for i in range(last) if toks[i] == toks[last]), default=None)
    if earlier is None or earlier + 1 >= last:
        raise ValueError(f"tokens must end with a token that occurred earlier (not just before): got {toks}")
    target = earlier + 1
    own = ax is None
    if own:
        _, ax = plt.subplots(figsize=(1.1 * len(toks) + 2.5, 3.4))
    for y, name in ((0.0, "layer 0\nprevious-token head"), (1.6, "layer 1\ninduction head")):
        ax.text(-0.8, y, name, ha="right", va="center", fontsize=9)
        for i, t in enumerate(toks):
            hi = (y > 0 and i in (target, last)) or (y == 0 and i == target)
            ax.text(i, y, t, ha="center", va="center", fontsize=11,
                    bbox=dict(boxstyle="round,pad=0.3", fc="#fde2c8" if hi else "#e8eef7", ec="gray"))
    for i in range(1, len(toks)):                     # layer 0: each token looks one step back
        ax.add_patch(FancyArrowPatch((i - 0.15, -0.25), (i - 0.85, -0.25), connectionstyle="arc3,rad=-0.5",
                                     arrowstyle="-|>", mutation_scale=10, color="C0", lw=1))
    ax.annotate(f'"my predecessor\nwas {toks[earlier]}"', (target, 0.3), (target, 0.85), ha="center",
                fontsize=8, color="C0", arrowprops=dict(arrowstyle="-|>", color="C0"))
    ax.add_patch(FancyArrowPatch((last, 1.9), (target, 1.9), connectionstyle="arc3,rad=0.35",
                                 arrowstyle="-|>", mutation_scale=14, color="C3", lw=2))
    ax.text((last + target) / 2, 2.75, f'looks for "after {toks[last]}", finds it, copies it', ha="center",
            fontsize=9, color="C3")
    ax.text(last + 0.7, 1.6, f"→ predicts\n   {toks[target]!r}", va="center", fontsize=10, color="C3")
    ax.set(xlim=(-3.2, len(toks) + 1.2), ylim=(-0.9, 3.1))
    ax.axis("off")
    if own and show:
        plt.show()
    return ax
