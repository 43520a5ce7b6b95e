"""The image track: a conditional generator trained on the lamp world, the lamp meter that reads
images, their training and report, and :class:`~editbench.tracks.image.track.ImageTrack`.

    from editbench.tracks.image import load_generator, load_meter
"""

from .checkpoints import ASSETS, CheckpointError, checkpoint_hash, load_discriminator, load_generator, load_meter, save_half

__all__ = ["ASSETS", "CheckpointError", "checkpoint_hash", "load_discriminator", "load_generator", "load_meter",
           "save_half"]
