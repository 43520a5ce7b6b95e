"""Metrics, each registered once with its direction and the track it applies to.

Three kinds:

* ``part``: per-output scores in [0, 1] (NaN where the part does not apply to an output), higher is
  better; a task's primary score is the harmonic mean of the parts it lists;
* ``derived``: a number computed from other parts' means and reported beside them (RAVEL's
  disentangle, the mean of cause and isolate);
* ``measure``: one number per scored slice, reported and gated but not part of the primary (e.g. the
  Frechet distance to the world's answer, lower is better).

A metric is defined once, here (:func:`register`, with its direction and meaning), and implemented by each
track in its own folder (``tracks/<name>/metrics.py``: the track's :meth:`~editbench.tracks.Track.metrics`,
registered with :func:`implement` for every registered track): ``efficacy`` is one concept read from meter
readings on images and from parsed facts on text. A track may define metrics of its own
(:attr:`~editbench.tracks.Track.metric_definitions`). Tasks name parts, the scorer computes
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


# ---- every metric, defined once (the order is the tables' and the result files') ---------------------------
for _name, _description in (
        ("efficacy", "share of the targeted lit lamps that are off after the edit"),
        ("retention", "the lamps stay, unlit (images: IoU of the lamp shades before and after)"),
        ("locality", "nothing else changes (images: no change outside the lamps' light and shades)"),
        ("no_darkening", "the room is not simply darker (images: the ambient level did not fall)"),
        ("second_order_removed", "share of the second-order light (walls, floor, bed, window) that is gone"),
        ("cause", "RAVEL's cause: the target lamp is off"),
        ("isolate", "RAVEL's isolate: the other lit lamps are unchanged")):
    register(Metric(_name, "part", +1, _description))
register(Metric("disentangle", "derived", +1, "RAVEL's disentangle: the mean of cause and isolate",
                needs=("cause", "isolate"), combine=lambda m: (m["cause"] + m["isolate"]) / 2))
register(Metric("fidelity", "measure", -1, "distance of the edited outputs to the world's answer (images: Frechet "
                "distance in meter features to renders of the requested scenes); lower is better"))
register(Metric("locality_l1", "measure", -1, "mean absolute change outside the lamps' first-order light"))
register(Metric("feature_shift", "measure", -1, "relative change of the meter features"))
register(Metric("fluency", "part", +1, "the edited output is well-formed (text: the description parses)"))


def _implement_tracks() -> None:
    """Every registered track's definitions and implementations (image first, as the registry lists them)."""
    from editbench.tracks import get_track

    for name in TRACKS.names():
        track = get_track(name)
        for metric, (kind, sign, description) in track.metric_definitions.items():
            register(Metric(metric, kind, sign, description))
        for metric, fn in track.metrics().items():
            implement(metric, name, fn)


from editbench.tracks import TRACKS  # noqa: E402 - tracks sit below metrics; imported after the definitions

_implement_tracks()
