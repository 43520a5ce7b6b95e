"""ood_transfer: evidence from a narrow slice of the world (one-lamp daytime rooms, three wall colours), scored
on shifts of it (more lamps, night, unseen walls) and on a shift of the track's sampling noise."""

from __future__ import annotations

from . import Slice, task
from .slices import NARROW, WORLD_SHIFTS

task(
    "ood_transfer", request="lamps_off", evidence=Slice("narrow", NARROW),
    image={"version": 1, "parts": ("efficacy", "retention", "locality", "no_darkening"),
           "slices": (*WORLD_SHIFTS, Slice("far_latents", NARROW, noise_scale=2.0)),
           "shifted": ("more_lamps", "night", "unseen_walls", "far_latents"),
           "description": "Evidence from one-lamp daytime rooms with three wall colours; scored on shifted slices."},
    text={"version": 1, "parts": ("efficacy", "retention", "locality", "no_darkening", "fluency"),
          "slices": (*WORLD_SHIFTS, Slice("hot_sampling", NARROW, noise_scale=2.0)),
          "shifted": ("more_lamps", "night", "unseen_walls", "hot_sampling"),
          "description": "Evidence from one-lamp daytime rooms with three wall colours; scored on shifted slices (the "
                         "last samples\nwith twice the sampling noise)."},
)
