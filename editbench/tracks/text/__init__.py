"""The text track: the lamp world in words. A small GPT-2 (the lamp LM) describes a room for a caption,
the exact parser (:mod:`editbench.world.descriptions`) reads its descriptions, and
:class:`~editbench.tracks.text.track.TextTrack` puts them behind the track interface.

    from editbench.tracks.text import load_lm
"""

from .checkpoints import ASSETS, CheckpointError, lm_hash, load_lm, ship_lm

__all__ = ["ASSETS", "CheckpointError", "lm_hash", "load_lm", "ship_lm"]
