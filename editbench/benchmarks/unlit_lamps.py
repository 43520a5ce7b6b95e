"""unlit_lamps: every lamp off, the lamps still there, the rest unchanged and not darker."""

from __future__ import annotations

from . import Slice, task
from .slices import WITH_LAMPS

task(
    "unlit_lamps", request="lamps_off", evidence=Slice("default"), slices=(Slice("rooms_with_lamps", WITH_LAMPS),),
    image={"version": 1, "parts": ("efficacy", "retention", "locality", "no_darkening"),
           "description": "Every lamp off, the lamps still there, the rest of the room unchanged and not darker."},
    text={"version": 1, "parts": ("efficacy", "retention", "locality", "no_darkening", "fluency"),
          "description": "Every lamp described unlit, every lamp still described, every other fact and the time of day "
                         "unchanged."},
)
