"""World slices the tasks share: the rooms they score on and the transfer task's shifts of the world."""

from __future__ import annotations

from . import Slice

MULTI_LAMP = {"lamp_count_probs": [0.0, 0.0, 0.5, 0.5]}
WITH_LAMPS = {"lamp_count_probs": [0.0, 0.4, 0.35, 0.25]}
NARROW = {"lamp_count_probs": [0.0, 1.0, 0.0, 0.0], "ambient_range": [0.7, 1.0],
          "wall_colors": ["white", "beige", "blue"]}
# The transfer task's slices on every track: the evidence slice, then shifts of the world (each track adds
# a shift of its sampling noise).
WORLD_SHIFTS = (
    Slice("evidence_slice", NARROW),
    Slice("more_lamps", {**NARROW, **MULTI_LAMP}),
    Slice("night", {**NARROW, "ambient_range": [0.2, 0.45]}),
    Slice("unseen_walls", {**NARROW, "wall_colors": ["green", "pink", "yellow", "grey"]}),
)
