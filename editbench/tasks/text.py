"""The text track's four tasks: the image track's names and intents, read from parsed descriptions, with
``fluency`` (the text parses) a part of every primary. Their names carry the track (``text/unlit_lamps``);
the image track's tasks keep the plain names they were published under."""

from __future__ import annotations

from . import Slice, TaskSpec, register
from .image import MULTI_LAMP, NARROW, WITH_LAMPS, WORLD_SHIFTS

register(TaskSpec(
    "text/unlit_lamps", 1, "text", "lamps_off", ("efficacy", "retention", "locality", "no_darkening", "fluency"),
    Slice("default"), (Slice("rooms_with_lamps", WITH_LAMPS),),
    "Every lamp described unlit, every lamp still described, every other fact and the time of day unchanged.",
))
register(TaskSpec(
    "text/single_lamp", 1, "text", "leftmost_off", ("cause", "isolate", "retention", "locality", "fluency"),
    Slice("multi_lamp", MULTI_LAMP), (Slice("multi_lamp", MULTI_LAMP),),
    "In rooms with 2-3 lamps, the leftmost lamp described unlit and the others as they were (RAVEL's cause and\n"
    "isolate; their mean, disentangle, is reported beside them).",
))
register(TaskSpec(
    "text/second_order", 1, "text", "lamps_off_second_order", ("efficacy", "second_order_removed", "locality", "fluency"),
    Slice("default"), (Slice("rooms_with_lamps", WITH_LAMPS),),
    "Lamps described unlit and the light they threw on wall, floor and bed, and the window's reflections, gone too.",
))
register(TaskSpec(
    "text/ood_transfer", 1, "text", "lamps_off", ("efficacy", "retention", "locality", "no_darkening", "fluency"),
    Slice("narrow", NARROW),
    (*WORLD_SHIFTS, Slice("hot_sampling", NARROW, noise_scale=2.0)),
    "Evidence from one-lamp daytime rooms with three wall colours; scored on shifted slices (the last samples\n"
    "with twice the sampling noise).",
    shifted=("more_lamps", "night", "unseen_walls", "hot_sampling"),
))
