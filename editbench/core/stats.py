"""The statistics every score goes through: the harmonic mean of parts and the bootstrap.

* :func:`harmonic_mean`: a task's primary score from its part scores (as in CounterFact and AxBench),
  so that no part can be traded away for free: 0 where any part is 0, NaN where any part is NaN.
* :func:`bootstrap`: draws of the primary under resampling. One resampling scheme serves a single
  cell (images) and the leaderboard (seeds, then images within each seed); the caller passes the
  resampled indices, so each keeps its own random stream.
* :func:`paired_better`: is one method significantly better than another, from paired draws;
  :func:`output_gap`: the difference of one cell's primary read two ways (proxy minus judge), paired.

Everything is float64; parts are summed in a fixed order, so the same inputs give the same bits.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def harmonic_mean(parts: Tensor, dim: int = 0) -> Tensor:
    """Harmonic mean of part scores in [0, 1] along ``dim`` (the parts axis): 0 where any part is
    <= 0, NaN where any part is NaN."""
    parts = torch.as_tensor(parts, dtype=torch.float64).movedim(dim, 0)
    inv = 1 / parts[0]
    for p in parts[1:]:  # a fixed summation order
        inv = inv + 1 / p
    h = parts.shape[0] / inv
    h = torch.where((parts <= 0).any(0), torch.zeros_like(h), h)
    return torch.where(parts.isnan().any(0), torch.full_like(h, float("nan")), h)


def nanmean(x: Tensor) -> float:
    """Mean over the entries that are not NaN (NaN marks "does not apply"); NaN if none."""
    v = x[~torch.isnan(x)]
    return float(v.mean()) if v.numel() else float("nan")


def bootstrap(parts: dict[str, Tensor], seeds: Tensor, images: Tensor) -> tuple[float, Tensor]:
    """Point estimate and bootstrap draws of the primary (harmonic mean of part means).

    ``parts``: per part, per-image scores (S, n) of S seeds (NaN where a part does not apply).
    ``seeds``: (B, S) resampled seed rows; ``images``: (B, S, n) resampled images within each seed.
    A draw pools its resampled seeds and images; it is NaN where a part applies to none of them.
    """
    names = list(parts)
    point = harmonic_mean(torch.tensor([nanmean(parts[k]) for k in names], dtype=torch.float64))
    X = torch.stack([parts[k].double() for k in names])  # (P, S, n)
    drawn = X[:, seeds[..., None], images]  # (P, B, S, n)
    means = torch.nanmean(drawn.flatten(2), dim=2)  # (P, B)
    return float(point), harmonic_mean(means)


def interval(draws: Tensor, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile (1 - alpha) interval of the finite draws (NaN, NaN when there are none)."""
    d = draws[torch.isfinite(draws)]
    if not d.numel():
        return float("nan"), float("nan")
    return float(d.quantile(alpha / 2)), float(d.quantile(1 - alpha / 2))


def mean_interval(x: Tensor, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float, float]:
    """Point and (1 - alpha) percentile bootstrap interval of the mean of ``x`` (N,) over its rows."""
    x = x.double()
    g = torch.Generator().manual_seed(seed)
    draws = x[torch.randint(len(x), (n_boot, len(x)), generator=g)].mean(1)
    return (float(x.mean()), *interval(draws, alpha))


def output_bootstrap(parts: dict[str, Tensor], n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
                    ) -> tuple[float, float, float]:
    """Point and (1 - alpha) interval of one cell's primary, resampling its images (rows shared by
    every part, so parts stay paired)."""
    n = next(iter(parts.values())).shape[0]
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(n, (n_boot, n), generator=g)[:, None, :]
    point, draws = bootstrap({k: v[None] for k, v in parts.items()}, torch.zeros(n_boot, 1, dtype=torch.long), images)
    return (point, *interval(draws, alpha))


def output_gap(parts_a: dict[str, Tensor], parts_b: dict[str, Tensor], n_boot: int = 1000, seed: int = 0,
               alpha: float = 0.05) -> tuple[float, float, float]:
    """Point and (1 - alpha) interval of primary(a) - primary(b) over the same outputs read two ways (the
    proxy-judge gap of a cell): both resampled with the same images, so the interval is of the paired
    difference."""
    n = next(iter(parts_a.values())).shape[0]
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(n, (n_boot, n), generator=g)[:, None, :]
    seeds = torch.zeros(n_boot, 1, dtype=torch.long)
    pa, da = bootstrap({k: v[None] for k, v in parts_a.items()}, seeds, images)
    pb, db = bootstrap({k: v[None] for k, v in parts_b.items()}, seeds, images)
    return (pa - pb, *interval(da - db, alpha))


def widen(point: float, lo: float, hi: float, floor: float | None) -> tuple[float, float]:
    """An interval no tighter than the reader allows: at least ``floor`` either side of ``point`` (clipped to
    [0, 1]). ``floor`` is the reader's own uncertainty on the outputs scored (for images: half the share of
    lamps whose state the judge and the proxy disagree on in the generator's samples); None or 0 keeps the
    bootstrap interval."""
    if not floor or point != point:
        return lo, hi
    return min(lo, max(0.0, point - floor)), max(hi, min(1.0, point + floor))


def paired_better(a: np.ndarray | Tensor, b: np.ndarray | Tensor, alpha: float = 0.05) -> bool:
    """Is ``a`` significantly better than ``b``: the (1 - alpha) interval of the paired differences
    of their bootstrap draws (the same resamples for both) lies above zero?"""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    diff = diff[np.isfinite(diff)]
    return bool(diff.size and np.quantile(diff, alpha / 2) > 0)


def detectable_difference(a: np.ndarray | Tensor, b: np.ndarray | Tensor, alpha: float = 0.05, power: float = 0.8
                          ) -> float:
    """The smallest true difference between two methods that a two-sided paired test at level ``alpha`` finds
    with probability ``power``, given the paired bootstrap draws of their scores: ``(z_(1-alpha/2) + z_power)``
    times the standard deviation of the paired differences (normal approximation; 2.80 sd at 0.05 and 0.8)."""
    from statistics import NormalDist

    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    diff = diff[np.isfinite(diff)]
    if diff.size < 2:
        return float("nan")
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    return float(z * diff.std(ddof=1))
