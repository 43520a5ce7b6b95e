"""Metrics, each registered once with its direction and the track it applies to.

Three kinds:

* ``part``: per-output scores in [0, 1] (NaN where the part does not apply to an output), higher is
  better; a task's primary score is the harmonic mean of the parts it lists;
* ``derived``: a number computed from other parts' means and reported beside them (RAVEL's
  disentangle, the mean of cause and isolate);
* ``measure``: one number per scored slice, reported and gated but not part of the primary (e.g. the
  Frechet distance to the world's answer, lower is better).

A metric is registered once (:func:`register`, with its direction and meaning) and implemented per track
(:func:`implement`, beside the track's functions in ``metrics/<track>.py``): ``efficacy`` is one concept
read from meter readings on images and from parsed facts on text. Tasks name parts, the scorer computes
what the task names, the gate reads directions from here and the leaderboard shows whatever parts the
results hold. ``metrics`` knows no method and no task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import Tensor

from editbench.core import Registry
from editbench.core.registry import RegistryError

Kind = Literal["part", "derived", "measure"]


@dataclass(frozen=True)
class Metric:
    name: str
    kind: Kind
    direction: int  # +1: higher is better; -1: lower is better
    description: str
    needs: tuple[str, ...] = ()  # derived: the parts it is computed from
    combine: Callable[[dict[str, float]], float] | None = None  # derived: part means -> one number
    # per track: part: pair -> (B,) scores; measure: pair -> one number (filled by implement())
    tracks: dict[str, Callable[[Any], Tensor | float]] = field(default_factory=dict)

    def __call__(self, track: str, pair: Any) -> Tensor | float:
        return self.tracks[track](pair)


def _check(name: str, m: Any) -> None:
    if not isinstance(m, Metric) or m.name != name:
        raise RegistryError(f"metric {name!r} must be a Metric named {name!r}")
    if m.direction not in (1, -1):
        raise RegistryError(f"metric {name!r}: direction must be +1 or -1, got {m.direction!r}")
    if m.kind not in ("part", "derived", "measure"):
        raise RegistryError(f"metric {name!r}: unknown kind {m.kind!r}")
    if m.kind == "derived" and (m.combine is None or not m.needs):
        raise RegistryError(f"metric {name!r} of kind 'derived' lacks its function")


METRICS: Registry[Metric] = Registry("metric", check=_check)


def register(metric: Metric, **tracks: Callable[[Any], Tensor | float]) -> Metric:
    """Register a metric once, with its implementations for the given tracks (``image=fn``)."""
    METRICS.add(metric.name, metric)
    for track, fn in tracks.items():
        implement(metric.name, track, fn)
    return metric


def implement(name: str, track: str, fn: Callable[[Any], Tensor | float]) -> None:
    """The implementation of metric ``name`` on ``track`` (once per track)."""
    m = METRICS.get(name)
    if m.kind == "derived":
        raise RegistryError(f"metric {name!r} is derived from other parts; it has no per-track implementation")
    if track in m.tracks:
        raise ValueError(f"metric {name!r} is implemented twice for track {track!r}")
    m.tracks[track] = fn


def of_track(track: str, kind: Kind) -> dict[str, Metric]:
    """The metrics of one kind that apply to ``track``, by name (derived ones apply to every track)."""
    return {n: m for n, m in METRICS.items() if m.kind == kind and (kind == "derived" or track in m.tracks)}


def direction(name: str) -> int:
    """+1 if higher is better for this metric (or ``primary``), -1 if lower is."""
    return 1 if name == "primary" else METRICS.get(name).direction


from . import image, text  # noqa: E402,F401 - the image and text tracks' metrics
