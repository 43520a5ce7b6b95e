"""single_lamp (multi-lamp independence): in rooms with 2-3 lamps, the leftmost lamp off and the others
untouched."""

from __future__ import annotations

from . import Slice, task
from .slices import MULTI_LAMP

task(
    "single_lamp", request="leftmost_off", evidence=Slice("multi_lamp", MULTI_LAMP),
    slices=(Slice("multi_lamp", MULTI_LAMP),),
    image={"version": 1, "parts": ("cause", "isolate", "retention", "locality"),
           "description": "In rooms with 2-3 lamps, the leftmost lamp off and the others untouched. RAVEL's cause and "
                          "isolate\nare separate parts so that the unedited model (isolate 1, cause 0) scores 0; their "
                          "mean, disentangle,\nis reported beside them."},
    text={"version": 1, "parts": ("cause", "isolate", "retention", "locality", "fluency"),
          "description": "In rooms with 2-3 lamps, the leftmost lamp described unlit and the others as they were "
                         "(RAVEL's cause and\nisolate; their mean, disentangle, is reported beside them)."},
)
