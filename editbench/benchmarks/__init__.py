"""The benchmarks: the tasks as data (one file per task, holding its spec on every track), the one scoring
path (:mod:`.scoring`) and the suites (:mod:`.suites`).

A :class:`TaskSpec` names its track, the edit request, the world slice its evidence comes from, the
slices it is scored on, the parts of its primary score and its split sizes. Its ``version`` is part of
every result it produces. A task file calls :func:`task` once with what its tracks share and each track's
own fields (``image={...}``, ``text={...}``); each track's spec is registered in :data:`TASKS` under the
track's name for it (the image track's plain name, ``text/<name>`` on the text track), which checks that
every part it names is a part of its track.

Splits: the evidence of budget seed ``s`` uses world seed ``EVIDENCE_SEED + s``; ``dev`` (for tuning)
and ``test`` (for reporting) use their own fixed seeds, never seen in training or evidence.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from editbench.core import Registry, seeds
from editbench.core.registry import RegistryError
from editbench.world import World, WorldConfig

EVIDENCE_SEED = seeds.EVIDENCE
SPLIT_SEEDS = seeds.SPLITS


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


TRACK_PREFIX = {"image": ""}  # the image track's tasks keep the plain names they were published under


def task_name(name: str, track: str) -> str:
    """A task's registered name on ``track`` (``unlit_lamps``, ``text/unlit_lamps``)."""
    return TRACK_PREFIX.get(track, f"{track}/") + name


def task(name: str, **shared: Any) -> None:
    """Declare task ``name`` on every track given as a keyword (``image={...}``): a :class:`TaskSpec` of the
    ``shared`` fields updated with the track's own, registered once every task file has been read (track by
    track, the tasks in the order of ``TASK_FILES``). A track folder may pose the task too, from its own
    ``Track.tasks`` (task -> its fields), without editing this file."""
    fields = {k: v for k, v in shared.items() if not isinstance(v, dict)}
    _SHARED[name] = fields
    for track in [k for k, v in shared.items() if isinstance(v, dict)]:
        _PENDING.append(_spec(name, track, fields, shared[track]))


def _spec(name: str, track: str, shared: dict[str, Any], own: dict[str, Any]) -> TaskSpec:
    """The spec of task ``name`` on ``track``: ``shared`` updated with the track's ``own`` fields (slices may be
    given as :class:`Slice` or as its dict)."""
    fields = {**shared, **own}
    as_slice = lambda s: s if isinstance(s, Slice) else Slice(**s)  # noqa: E731
    if "evidence" in fields:
        fields["evidence"] = as_slice(fields["evidence"])
    if "slices" in fields:
        fields["slices"] = tuple(as_slice(s) for s in fields["slices"])
    try:
        return TaskSpec(task_name(name, track), track=track, **fields)
    except TypeError as e:
        raise RegistryError(f"task {name!r} on track {track!r}: {e}") from None


def _tracks_own() -> None:
    """The task specs each track folder poses (``Track.tasks``), beyond those of the task files."""
    from editbench.tracks import TRACKS

    declared = {(t.name, t.track) for t in _PENDING}
    for track in TRACKS.names():
        for name, own in getattr(TRACKS.get(track), "tasks", {}).items():
            if (task_name(name, track), track) not in declared:
                _PENDING.append(_spec(name, track, _SHARED.get(name, {}), own))


_PENDING: list[TaskSpec] = []
_SHARED: dict[str, dict[str, Any]] = {}
TASK_FILES = ("unlit_lamps", "single_lamp", "second_order", "ood_transfer")
for _file in TASK_FILES:
    importlib.import_module(f"{__name__}.{_file}")
_tracks_own()
for _track in dict.fromkeys(t.track for t in _PENDING):
    for _spec_ in _PENDING:
        if _spec_.track == _track:
            register(_spec_)
_PENDING.clear()
