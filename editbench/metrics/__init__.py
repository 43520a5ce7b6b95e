"""Metrics, each registered once with its direction and the track it applies to.

Three kinds:

* ``part``: per-output scores in [0, 1] (NaN where the part does not apply to an output), higher is
  better; a task's primary score is the harmonic mean of the parts it lists;
* ``derived``: a number computed from other parts' means and reported beside them (RAVEL's
  disentangle, the mean of cause and isolate);
* ``measure``: one number per scored slice, reported and gated but not part of the primary (e.g. the
  Frechet distance to the world's answer, lower is better).

Adding a part is one :func:`register` call beside its function (``metrics/<track>.py``); tasks name
parts, the scorer computes what the task names, the gate reads directions from here and the leaderboard
shows whatever parts the results hold. ``metrics`` knows no method and no task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from torch import Tensor

from editbench.core import Registry
from editbench.core.registry import RegistryError

Kind = Literal["part", "derived", "measure"]


@dataclass(frozen=True)
class Metric:
    name: str
    kind: Kind
    track: str
    direction: int  # +1: higher is better; -1: lower is better
    description: str
    per_output: Callable[[Any], Tensor] | None = None  # part: pair -> (B,) scores
    per_slice: Callable[[Any], float] | None = None  # measure: pair -> one number
    needs: tuple[str, ...] = ()  # derived: the parts it is computed from
    combine: Callable[[dict[str, float]], float] | None = None  # derived: part means -> one number


def _check(name: str, m: Any) -> None:
    if not isinstance(m, Metric) or m.name != name:
        raise RegistryError(f"metric {name!r} must be a Metric named {name!r}")
    if m.direction not in (1, -1):
        raise RegistryError(f"metric {name!r}: direction must be +1 or -1, got {m.direction!r}")
    needed = {"part": m.per_output, "measure": m.per_slice, "derived": m.combine}
    if m.kind not in needed or needed[m.kind] is None:
        raise RegistryError(f"metric {name!r} of kind {m.kind!r} lacks its function")


METRICS: Registry[Metric] = Registry("metric", check=_check)


def register(metric: Metric) -> Metric:
    METRICS.add(metric.name, metric)
    return metric


def of_track(track: str, kind: Kind) -> dict[str, Metric]:
    """The metrics of one kind that apply to ``track``, by name."""
    return {n: m for n, m in METRICS.items() if m.track == track and m.kind == kind}


def direction(name: str) -> int:
    """+1 if higher is better for this metric (or ``primary``), -1 if lower is."""
    return 1 if name == "primary" else METRICS.get(name).direction


from . import image  # noqa: E402,F401 - registers the image track's metrics
