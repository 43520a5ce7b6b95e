"""Search spaces and the one hyperparameter search every method gets (Optuna, seeded).

A method's ``search_space`` maps a config field to a dimension:

* :class:`LogFloat` / :class:`LogInt`: a rate or a count, sampled on a log scale between ``lo`` and ``hi``;
* :class:`Float`: a fraction or a weight sampled uniformly;
* :class:`Choice` (or a plain list, read as one): named options; a list of three or more numbers is
  ordered, so its first and last values are its edges (``order=False`` for a location such as a layer).

An end that is a limit of the model or the method rather than of the search (``hard``: "lo", "hi" or "both":
all 16 heads, a quantile of 1) is not an edge: no wider space lies beyond it.

:func:`search` runs ``trials`` trials of Optuna's TPE sampler from ``seed`` (``STARTUP`` random ones, then
TPE) and returns every trial. The method's default configuration is *not* among the trials: the default is
what the search picks most often (at n = 16), so a search that started from it would depend on its own
past results; a tuning cell is a function of the space, the seed and the trial count alone. A trial whose
configuration was already tried is answered from the record (no refit): every method gets the same number
of trials, a small space is simply exhausted sooner. :func:`at_edge` says which tuned values lie at the edge of their space (the
outer ``EDGE`` of a range, in log units where the range is logarithmic; the first or last of ordered
options; for ``epochs``, judged on the optimiser steps they buy within the schedule's floor and cap): a best
found there may lie beyond the space. :func:`late_gain` says whether a search had stopped climbing: what its last
third of trials added to the best of the first two thirds; where that exceeds ``CLIMBING_SE`` standard errors of
the best's dev score, more trials would likely find more (a suite may then grow the search: ``Suite.grow``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import MethodError

STARTUP = 4  # trials drawn at random before TPE models the others
VERSION = 2  # of the search procedure, in every tuning cell's key (2: no default enqueued)
EDGE = 0.05  # share of a range (log units for log ranges) at either end that counts as its edge
CLIMBING_SE = 2.0  # a late gain above this many standard errors of the best's dev score: the search still climbs


@dataclass(frozen=True)
class LogFloat:
    lo: float
    hi: float
    hard: str = ""  # "lo", "hi" or "both": ends that are limits of the model or method, not of the search

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.lo, self.hi, log=True)

    def position(self, v: float) -> float:
        return (math.log(v) - math.log(self.lo)) / (math.log(self.hi) - math.log(self.lo))

    def describe(self) -> str:
        return f"{self.lo:g}..{self.hi:g} (log)"


@dataclass(frozen=True)
class LogInt(LogFloat):
    lo: int  # type: ignore[assignment]
    hi: int  # type: ignore[assignment]

    def suggest(self, trial: Any, name: str) -> int:
        return trial.suggest_int(name, self.lo, self.hi, log=True)


@dataclass(frozen=True)
class Float(LogFloat):
    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.lo, self.hi)

    def position(self, v: float) -> float:
        return (v - self.lo) / (self.hi - self.lo)

    def describe(self) -> str:
        return f"{self.lo:g}..{self.hi:g}"


@dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]
    order: bool | None = None  # None: ordered when three or more numbers
    hard: str = ""  # as LogFloat's: an end that is a limit (a rank of 1, a batch of one example)

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.values))

    @property
    def ordered(self) -> bool:
        if self.order is not None:
            return self.order
        return len(self.values) > 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.values)

    def position(self, v: Any) -> float:
        return self.values.index(v) / (len(self.values) - 1) if self.ordered else 0.5

    def describe(self) -> str:
        return "{" + ", ".join(map(str, self.values)) + "}"


Dimension = LogFloat | Choice


def dimension(spec: Any) -> Dimension:
    """A space entry as a dimension (a plain list or tuple is a :class:`Choice`)."""
    if isinstance(spec, (LogFloat, Choice)):
        return spec
    if isinstance(spec, (list, tuple)) and spec:
        return Choice(tuple(spec))
    raise MethodError(f"bad search dimension {spec!r}: give LogFloat, LogInt, Float, Choice or a list of values")


Effective = tuple[Callable[[Any], float], float, float]  # value -> what it buys, and the floor and cap of that


def at_edge(space: dict[str, Any], config: dict[str, Any], effective: dict[str, Effective] | None = None) -> list[str]:
    """The fields of ``config`` whose value lies at the edge of ``space`` (ranges and ordered options only).

    ``effective``: for a field whose value is held within a floor and a cap (``epochs``, by the schedule's
    ``min_steps`` and ``max_steps``), what each value buys and those limits. The edge is then judged on what the
    value buys, in log units: a field whose whole range buys the same is at no edge, and an end of the range
    that reaches the floor or the cap is a limit of the method (a stated cap), not of the search."""
    out = []
    for name, spec in space.items():
        d = dimension(spec)
        if name not in config or (isinstance(d, Choice) and not d.ordered):
            continue
        v = config[name]
        if isinstance(d, Choice) and v not in d.values:
            continue
        hard_lo, hard_hi = d.hard in ("lo", "both"), d.hard in ("hi", "both")
        if effective and name in effective and isinstance(d, LogFloat):
            buys, floor, cap = effective[name]
            lo, hi, here = buys(d.lo), buys(d.hi), buys(v)
            if hi <= lo:
                continue
            p = (math.log(max(here, 1e-12)) - math.log(max(lo, 1e-12))) / (math.log(max(hi, 1e-12)) - math.log(max(lo, 1e-12)))
            hard_lo, hard_hi = hard_lo or lo <= floor, hard_hi or hi >= cap
        else:
            p = d.position(v)
        if (p <= EDGE + 1e-9 and not hard_lo) or (p >= 1 - EDGE - 1e-9 and not hard_hi):
            out.append(name)
    return sorted(out)


def signature(space: dict[str, Any]) -> dict[str, str]:
    """Each dimension of ``space`` in full (bounds, options, limits), for the key of a tuning cell: a space widened
    or narrowed is a new search, never answered from the old one's results."""
    return {name: repr(dimension(spec)) for name, spec in sorted(space.items())}


def in_space(space: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The part of ``config`` the space searches (values outside a range or not among the options are left
    out)."""
    out = {}
    for name, spec in space.items():
        d = dimension(spec)
        if name not in config:
            continue
        v = config[name]
        if isinstance(d, Choice) and v in d.values:
            out[name] = v
        elif isinstance(d, LogFloat) and d.lo <= v <= d.hi:
            out[name] = v
    return out


def search(space: dict[str, Any], objective: Callable[[dict[str, Any]], float], trials: int,
           seed: int, start: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """``trials`` trials of a seeded TPE search maximising ``objective(config)`` over ``space``. Returns one
    record per trial: ``config`` (the searched fields), ``value`` and ``repeat`` (True where the configuration
    had been tried and its value was reused). ``start``: a configuration tried first (its fields within the space;
    the others sampled), one of the ``trials``: a search warm-started from the best another search found (the
    tuned configuration of a nearby budget); it counts among the random start-up trials."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dims = {k: dimension(v) for k, v in sorted(space.items())}
    if not dims:
        return [{"config": {}, "value": objective({}), "repeat": False}]
    # a fixed number of random trials: the first suggestions must not depend on how many trials follow
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=STARTUP, multivariate=True)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    first = in_space(dims, start or {})
    if first:
        study.enqueue_trial(first)
    seen: dict[str, float] = {}
    out = []
    for _ in range(trials):
        trial = study.ask()
        cfg = {k: d.suggest(trial, k) for k, d in dims.items()}
        key = repr(sorted(cfg.items()))
        repeat = key in seen
        value = seen[key] if repeat else float(objective(cfg))
        if not math.isfinite(value):
            value = -1.0  # a failed configuration scores below anything that works
        seen[key] = value
        study.tell(trial, value)
        out.append({"config": cfg, "value": value, "repeat": repeat})
    return out


def best(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """The trial with the highest value (the first of equals)."""
    return max(trials, key=lambda t: t["value"])


def late_gain(values: list[float | None]) -> float:
    """What the last third of a search's trials (``values`` in the order they ran; None or NaN: a trial that
    failed, nothing found) added to the best of the first two thirds; NaN for fewer than three trials or none that
    worked, infinite where only the last third found anything."""
    xs = [math.nan if v is None else float(v) for v in values]
    if len(xs) < 3:
        return math.nan

    def best(part: list[float]) -> float:
        ok = [x for x in part if math.isfinite(x)]
        return max(ok) if ok else math.nan

    everything, first = best(xs), best(xs[: math.ceil(2 * len(xs) / 3)])
    if math.isnan(everything):
        return math.nan
    return everything - first if math.isfinite(first) else math.inf


def trial_values(trials: list[dict[str, Any]]) -> list[float | None]:
    """A tuning cell's recorded trials' dev scores in the order they ran (None: a trial that failed)."""
    return [t.get("dev_primary") for t in sorted(trials, key=lambda t: t.get("trial", 0))]


def scored_search(searched: dict[str, Any]) -> dict[str, Any]:
    """Of a tuning cell's recorded search, the part whose best the scored cells use: the grown search where it grew,
    else the larger one where the suite ran one, else the matched search itself."""
    return searched.get("grown") or searched.get("larger") or searched


def still_climbing(values: list[float | None], se: float | None) -> bool:
    """Whether a search was still climbing when it stopped: its :func:`late_gain` above ``CLIMBING_SE`` standard
    errors (``se``) of its best's dev score."""
    g = late_gain(values)
    return not math.isnan(g) and g > CLIMBING_SE * (se or 0.0)
