"""Tasks as data: declarative, versioned specs per track, and the one scoring path (:mod:`.scoring`).

A :class:`TaskSpec` names its track, the edit request, the world slice its evidence comes from, the
slices it is scored on, the parts of its primary score and its split sizes. Its ``version`` is part of
every result it produces. Specs register themselves in :data:`TASKS` (``tasks/<track>.py``), which
checks that every part they name is a part of their track.

Splits: the evidence of budget seed ``s`` uses world seed ``EVIDENCE_SEED + s``; ``dev`` (for tuning)
and ``test`` (for reporting) use their own fixed seeds, never seen in training or evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from editbench.core import Registry
from editbench.core.registry import RegistryError
from editbench.world import World, WorldConfig

EVIDENCE_SEED = 10_000
SPLIT_SEEDS = {"dev": 2**43, "test": 2**44}


@dataclass(frozen=True)
class Slice:
    """A world slice to score on: WorldConfig overrides and a scale of the sampling noise (far-out
    latents for images)."""

    name: str
    world: dict[str, Any] = field(default_factory=dict)
    noise_scale: float = 1.0

    def make_world(self) -> World:
        return World(WorldConfig.from_dict(dict(self.world)))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "world": self.world, "noise_scale": self.noise_scale}


@dataclass(frozen=True)
class TaskSpec:
    name: str
    version: int
    track: str
    request: str
    parts: tuple[str, ...]
    evidence: Slice
    slices: tuple[Slice, ...]
    description: str
    shifted: tuple[str, ...] = ()  # slices whose scores form the primary (transfer tasks); else all
    n_dev: int = 64
    n_test: int = 128

    def scored(self, sl: Slice) -> bool:
        """Whether a slice's scores form the primary."""
        return not self.shifted or sl.name in self.shifted

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "track": self.track, "request": self.request,
                "parts": list(self.parts), "evidence": self.evidence.to_dict(),
                "slices": [s.to_dict() for s in self.slices], "shifted": list(self.shifted), "n_dev": self.n_dev,
                "n_test": self.n_test}


def _check(name: str, task: Any) -> None:
    from editbench.metrics import of_track

    if not isinstance(task, TaskSpec) or task.name != name:
        raise RegistryError(f"task {name!r} must be a TaskSpec named {name!r}")
    parts = of_track(task.track, "part")
    unknown = [p for p in task.parts if p not in parts]
    if unknown:
        raise RegistryError(f"task {name!r} names parts {unknown} that are not parts of track {task.track!r} "
                            f"({sorted(parts)})")
    names = [s.name for s in task.slices]
    if len(set(names)) != len(names) or not set(task.shifted) <= set(names):
        raise RegistryError(f"task {name!r}: slice names must be unique and shifted slices among them")


TASKS: Registry[TaskSpec] = Registry("task", check=_check)


def register(task: TaskSpec) -> TaskSpec:
    TASKS.add(task.name, task)
    return task


def get_task(name: str) -> TaskSpec:
    return TASKS.get(name)


def evidence_world(task: TaskSpec) -> World:
    return task.evidence.make_world()


from . import image, text  # noqa: E402,F401 - the image and text tracks' tasks
