"""second_order: lamps off and the light they threw on walls, floor and window gone too."""

from __future__ import annotations

from . import Slice, task
from .slices import WITH_LAMPS

task(
    "second_order", request="lamps_off_second_order", evidence=Slice("default"),
    slices=(Slice("rooms_with_lamps", WITH_LAMPS),),
    image={"version": 1, "parts": ("efficacy", "second_order_removed", "locality"),
           "description": "Lamps off and the light they threw on walls, floor and window gone too."},
    text={"version": 1, "parts": ("efficacy", "second_order_removed", "locality", "fluency"),
          "description": "Lamps described unlit and the light they threw on wall, floor and bed, and the window's "
                         "reflections, gone too."},
)
