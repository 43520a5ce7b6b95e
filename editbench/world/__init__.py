"""The procedural lamp world: scenes, renderer with exact ground truth, captions, datasets.

    >>> from editbench.world import World
    >>> batch = World().sample(16, seed=0)
    >>> batch.images.shape, batch.truth.light1.shape
    (torch.Size([16, 3, 64, 64]), torch.Size([16, 3, 3, 64, 64]))

``world`` knows no model: everything above it (models, methods, tasks, metrics) reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .captions import VOCAB, CaptionTokenizer, make_captions
from .config import ConfigError, WorldConfig
from .render import GroundTruth, inverse_tonemap, luminance, render, tonemap
from .scene import Scene, sample_scenes, time_of_day

__all__ = [
    "Batch", "CaptionTokenizer", "ConfigError", "GroundTruth", "Scene", "VOCAB", "World",
    "WorldConfig", "inverse_tonemap", "luminance", "render", "time_of_day", "tonemap",
]


@dataclass(frozen=True)
class Batch:
    """A sampled batch: ``images`` (B, 3, H, W) in [0, 1], ``truth``, ``scene``, ``captions`` and
    ``mentioned`` (B, 3) bool, which lamps each caption mentions."""

    images: Tensor
    truth: GroundTruth
    scene: Scene
    captions: list[str]
    mentioned: np.ndarray

    def __len__(self) -> int:
        return len(self.captions)


class World:
    """The lamp world under one :class:`WorldConfig`.

    ``sample(n, seed)`` draws scenes, renders them and captions them; the same seed gives the same
    batch bit for bit. ``render(scene)`` renders any (possibly edited) scenes, e.g. with a lamp
    switched off: ``world.render(batch.scene.switch_off(0))``.
    """

    def __init__(self, config: WorldConfig | None = None):
        self.config = config or WorldConfig()

    def scenes(self, n: int, seed: int) -> Scene:
        return sample_scenes(self.config, n, seed)

    def render(self, scene: Scene, chunk: int = 128) -> tuple[Tensor, GroundTruth]:
        if len(scene) <= chunk:
            return render(scene, self.config.size)
        parts = [render(scene[i : i + chunk], self.config.size) for i in range(0, len(scene), chunk)]
        images = torch.cat([p[0] for p in parts])
        fields = GroundTruth.__dataclass_fields__
        truth = GroundTruth(**{f: torch.cat([getattr(p[1], f) for p in parts]) for f in fields})
        return images, truth

    def captions(self, scene: Scene, seed: int) -> tuple[list[str], np.ndarray]:
        return make_captions(scene, self.config, seed)

    def sample(self, n: int, seed: int) -> Batch:
        scene = self.scenes(n, seed)
        images, truth = self.render(scene)
        captions, mentioned = self.captions(scene, seed)
        return Batch(images=images, truth=truth, scene=scene, captions=captions, mentioned=mentioned)
