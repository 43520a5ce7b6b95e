"""The text track's metrics: the same parts as the image track, read exactly from parsed descriptions, paired
on caption and sampling noise, plus ``fluency`` (the text parses); ``IMPLEMENTATIONS`` is what
:mod:`editbench.metrics` registers for the track.

Per output, with ``b`` the facts of the unedited description, ``a`` those of the edited one and the
target lamps the request names among ``b``'s lamps (by place):

* efficacy / cause: share of the targeted lamps that were lit and are not described lit any more;
* retention: share of ``b``'s lamps still described at their place with their kind;
* locality: share of the other facts unchanged: walls, window, bed, time of day and every lamp that is
  not targeted (its kind and state);
* no_darkening: the time of day unchanged;
* second_order_removed: share of the targeted lamps' second-order facts (light on wall, floor and bed,
  reflections) that are gone;
* isolate: share of the other lit lamps still described lit;
* fluency: the edited description parses.

An edited description that does not parse scores 0 on every part (nothing it says can be read); where
the unedited one does not parse, the parts have no reference and are NaN (left out of means), except
fluency. Measure: ``fidelity``, the mean total-variation distance between the fact distributions of the
edited descriptions and of the world's descriptions of the requested scenes (lower is better).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import torch
from torch import Tensor

from editbench.world.descriptions import Facts

NAN = float("nan")


def _per_output(fn: Callable[[Facts, Facts | None, set[str]], float]) -> Callable[[object], Tensor]:
    """Lift ``fn(before, after, target places)`` to a pair: NaN without a reference, 0 when the edited text
    does not parse."""
    def part(pair) -> Tensor:
        out = []
        for b, a, targets in zip(pair.before_facts, pair.after_facts, pair.targets, strict=True):
            out.append(NAN if b is None else (0.0 if a is None else fn(b, a, targets)))
        return torch.tensor(out, dtype=torch.float32)
    return part


def _share(hits: list[bool]) -> float:
    return sum(hits) / len(hits) if hits else NAN


def efficacy(b: Facts, a: Facts, targets: set[str]) -> float:
    lit = [lamp.place for lamp in b.lamps if lamp.lit and lamp.place in targets]
    return _share([not ((la := a.lamp_at(p)) is not None and la.lit) for p in lit])


def retention(b: Facts, a: Facts, targets: set[str]) -> float:
    return _share([(la := a.lamp_at(lamp.place)) is not None and la.kind == lamp.kind for lamp in b.lamps])


def locality(b: Facts, a: Facts, targets: set[str]) -> float:
    same = [a.wall == b.wall, a.window == b.window, a.bed == b.bed, a.time == b.time]
    same += [a.lamp_at(lamp.place) == lamp for lamp in b.lamps if lamp.place not in targets]
    return _share(same)


def no_darkening(b: Facts, a: Facts, targets: set[str]) -> float:
    return float(a.time == b.time)


def second_order_removed(b: Facts, a: Facts, targets: set[str]) -> float:
    facts = [("light", p, s) for p, s in b.lights if p in targets] + [("window", p, "") for p in b.reflections if p in targets]
    gone = [((p, s) not in a.lights) if kind == "light" else (p not in a.reflections) for kind, p, s in facts]
    return _share(gone)


def isolate(b: Facts, a: Facts, targets: set[str]) -> float:
    others = [lamp.place for lamp in b.lamps if lamp.lit and lamp.place not in targets]
    return _share([(la := a.lamp_at(p)) is not None and la.lit for p in others])


def fluency(pair) -> Tensor:
    return torch.tensor([0.0 if a is None else 1.0 for a in pair.after_facts], dtype=torch.float32)


FACT_KEYS: dict[str, Callable[[Facts], object]] = {
    "wall": lambda f: f.wall, "window": lambda f: f.window, "bed": lambda f: f.bed, "time": lambda f: f.time,
    "n_lamps": lambda f: f.n_lamps, "n_lit": lambda f: f.n_lit, "n_lights": lambda f: len(f.lights),
    "n_reflections": lambda f: len(f.reflections),
}


def fidelity(after: list[Facts | None], reference: list[Facts | None]) -> float:
    """Mean over fact kinds of the total-variation distance between the two sets' fact distributions
    (parsed descriptions only; 1 where the edited descriptions all fail to parse). Summed in a fixed order
    of the facts' values, so the floats do not depend on the process's string hashing."""
    a, r = [f for f in after if f is not None], [f for f in reference if f is not None]
    if not a or not r:
        return 1.0 if r else NAN
    tvds = []
    for key in FACT_KEYS.values():
        ca, cr = Counter(map(key, a)), Counter(map(key, r))
        tvds.append(0.5 * sum(abs(ca[v] / len(a) - cr[v] / len(r)) for v in sorted(set(ca) | set(cr), key=repr)))
    return float(sum(tvds) / len(tvds))


IMPLEMENTATIONS = {
    **{name: _per_output(fn) for name, fn in (
        ("efficacy", efficacy), ("retention", retention), ("locality", locality), ("no_darkening", no_darkening),
        ("second_order_removed", second_order_removed), ("cause", efficacy), ("isolate", isolate))},
    "fluency": fluency,
    "fidelity": lambda p: fidelity(p.after_facts, p.reference_facts),
}
