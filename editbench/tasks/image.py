"""The image track's four tasks, as data."""

from __future__ import annotations

from . import Slice, TaskSpec, register

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

register(TaskSpec(
    "unlit_lamps", 1, "image", "lamps_off", ("efficacy", "retention", "locality", "no_darkening"),
    Slice("default"), (Slice("rooms_with_lamps", WITH_LAMPS),),
    "Every lamp off, the lamps still there, the rest of the room unchanged and not darker.",
))
register(TaskSpec(
    "single_lamp", 1, "image", "leftmost_off", ("cause", "isolate", "retention", "locality"),
    Slice("multi_lamp", MULTI_LAMP), (Slice("multi_lamp", MULTI_LAMP),),
    "In rooms with 2-3 lamps, the leftmost lamp off and the others untouched. RAVEL's cause and isolate\n"
    "are separate parts so that the unedited model (isolate 1, cause 0) scores 0; their mean, disentangle,\n"
    "is reported beside them.",
))
register(TaskSpec(
    "second_order", 1, "image", "lamps_off_second_order", ("efficacy", "second_order_removed", "locality"),
    Slice("default"), (Slice("rooms_with_lamps", WITH_LAMPS),),
    "Lamps off and the light they threw on walls, floor and window gone too.",
))
register(TaskSpec(
    "ood_transfer", 1, "image", "lamps_off", ("efficacy", "retention", "locality", "no_darkening"),
    Slice("narrow", NARROW),
    (*WORLD_SHIFTS, Slice("far_latents", NARROW, noise_scale=2.0)),
    "Evidence from one-lamp daytime rooms with three wall colours; scored on shifted slices.",
    shifted=("more_lamps", "night", "unseen_walls", "far_latents"),
))
