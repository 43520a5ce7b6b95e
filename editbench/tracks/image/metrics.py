"""The image track's metrics: pure functions over meter readings and images, paired before/after on the same
latent and caption, and the track's implementation of each score part and measure (``IMPLEMENTATIONS``,
registered by :mod:`editbench.metrics`, which defines each metric once). Every part score lies in
[0, 1], higher is better; a task's primary score is the harmonic mean of its parts
(:func:`editbench.core.stats.harmonic_mean`), so no part can be traded away for free.

Notation: ``before``/``after`` are :class:`~editbench.models.meter.MeterReading` of B images;
``target`` (B, 3) bool marks the lamp slots of ``before`` that the request switches off. A lamp's light
is its share of the first-order light map (:meth:`MeterReading.per_lamp_light`), summed over pixels.
"""

from __future__ import annotations

import torch
from torch import Tensor

from editbench.core.stats import nanmean

from .meter import LIGHT_PIXEL, MeterReading, frechet_distance

OFF_THRESHOLD = 5.0  # first-order light energy (luminance summed over pixels) under which a lamp is off
LOCALITY_SCALE = 0.1  # mean absolute change outside lamp light at which locality reaches 0
DARKENING_SCALE = 0.2  # fall of the ambient level at which "no darkening" reaches 0
ISOLATE_TOLERANCE = 0.2  # relative change of another lamp's light still counted as "unchanged"
NOISE_FLOOR = 0.02  # per-pixel light luminance the meter reads in rooms without lamp light

__all__ = [
    "LIGHT_PIXEL", "OFF_THRESHOLD", "darkening", "disentangle", "efficacy", "feature_shift", "fidelity",
    "frechet_distance", "lamp_energy", "locality", "retention", "second_order_residual",
]


def lamp_energy(reading: MeterReading, slots_from: MeterReading | None = None, order: int = 1) -> Tensor:
    """(B, 3) light energy per lamp slot. With ``slots_from``, light is split among *its* lamps (so an
    edited image is measured in the lamp slots found before the edit, even if the lamp vanished)."""
    ref = slots_from or reading
    light = {1: reading.light1, 2: reading.light2}[order]
    split = MeterReading(
        shade=ref.shade, light1=light, light2=light, ambient=ref.ambient, present=ref.present, on=ref.on,
        intensity=ref.intensity, x=ref.x, features=ref.features,
    ).per_lamp_light(1)
    return split.sum((-2, -1))


def efficacy(before: MeterReading, after: MeterReading, target: Tensor) -> dict[str, Tensor]:
    """Per image: ``off`` = share of target lamps (lit before) whose light after is below
    ``OFF_THRESHOLD``; ``reduction`` = 1 - sum(light after) / sum(light before) over those lamps,
    clipped to [0, 1]. Images without a lit target lamp get NaN (left out of means)."""
    e0 = lamp_energy(before)
    e1 = lamp_energy(after, slots_from=before)
    lit_target = target & (e0 > OFF_THRESHOLD)
    n = lit_target.sum(1).float()
    off = ((e1 < OFF_THRESHOLD) & lit_target).sum(1).float() / n
    red = 1 - (e1 * lit_target).sum(1) / (e0 * lit_target).sum(1).clamp_min(1e-9)
    nan = torch.full_like(n, float("nan"))
    return {"off": torch.where(n > 0, off, nan), "reduction": torch.where(n > 0, red.clamp(0, 1), nan)}


def retention(before: MeterReading, after: MeterReading) -> Tensor:
    """Per image: IoU of the shade masks (p > 0.5) before and after; the lamps must stay, unlit, not
    removed. Images without a shade before get NaN."""
    s0, s1 = before.shade > 0.5, after.shade > 0.5
    inter = (s0 & s1).sum((1, 2)).float()
    union = (s0 | s1).sum((1, 2)).float()
    has = s0.sum((1, 2)) > 0
    return torch.where(has, inter / union.clamp_min(1), torch.full_like(inter, float("nan")))


def locality(before_images: Tensor, after_images: Tensor, before: MeterReading, second_order: bool = True
             ) -> dict[str, Tensor]:
    """Change outside the lamps' light, per image: ``l1`` = mean |after - before| over pixels with no
    lamp light (first and, if ``second_order``, second order) and no shade before; ``score`` =
    max(0, 1 - l1 / LOCALITY_SCALE); ``feature`` = relative distance of the meter features (reported,
    not scored)."""
    light = before.light1 + (before.light2 if second_order else 0)
    keep = ((light < LIGHT_PIXEL) & (before.shade < 0.5)).to(before_images.dtype)  # (B, H, W)
    diff = (after_images - before_images).abs().mean(1)  # (B, H, W)
    l1 = (diff * keep).sum((1, 2)) / keep.sum((1, 2)).clamp_min(1)
    return {"l1": l1, "score": (1 - l1 / LOCALITY_SCALE).clamp(0, 1)}


def feature_shift(before: MeterReading, after: MeterReading) -> Tensor:
    """Per image: ||f(after) - f(before)|| / ||f(before)|| in meter features."""
    return (after.features - before.features).norm(dim=1) / before.features.norm(dim=1).clamp_min(1e-9)


def darkening(before: MeterReading, after: MeterReading) -> dict[str, Tensor]:
    """Per image: ``delta`` = ambient after - ambient before; ``score`` (no darkening) =
    max(0, 1 - max(0, -delta) / DARKENING_SCALE)."""
    delta = after.ambient - before.ambient
    return {"delta": delta, "score": (1 - (-delta).clamp_min(0) / DARKENING_SCALE).clamp(0, 1)}


def second_order_residual(before: MeterReading, after: MeterReading) -> Tensor:
    """Per image: share of second-order light energy left, sum(light2 after) / sum(light2 before),
    clipped to [0, 1]; NaN where there was none (less than one unit). Each pixel's light counts above
    the meter's noise floor ``NOISE_FLOOR`` only."""
    e0 = (before.light2 - NOISE_FLOOR).clamp_min(0).sum((1, 2))
    e1 = (after.light2 - NOISE_FLOOR).clamp_min(0).sum((1, 2))
    return torch.where(e0 >= 1.0, (e1 / e0.clamp_min(1e-9)).clamp(0, 1), torch.full_like(e0, float("nan")))


def disentangle(before: MeterReading, after: MeterReading, target: Tensor) -> dict[str, Tensor]:
    """RAVEL-style, per image: ``cause`` = the target lamp(s) off (as in :func:`efficacy`); ``isolate``
    = share of the other lit lamps whose light changed by less than ``ISOLATE_TOLERANCE`` (relative);
    ``disentangle`` = their mean. NaN where an image has no lit target lamp or no other lit lamp."""
    e0 = lamp_energy(before)
    e1 = lamp_energy(after, slots_from=before)
    cause = efficacy(before, after, target)["off"]
    others = ~target & before.lamps & (e0 > OFF_THRESHOLD)
    kept = ((e1 - e0).abs() <= ISOLATE_TOLERANCE * e0) & others
    n = others.sum(1).float()
    isolate = torch.where(n > 0, kept.sum(1).float() / n.clamp_min(1), torch.full_like(n, float("nan")))
    return {"cause": cause, "isolate": isolate, "disentangle": (cause + isolate) / 2}


def fidelity(after: MeterReading, reference: MeterReading) -> float:
    """Frechet distance in meter features between edited samples and renders of the requested scenes
    (lower is better; reported beside the scores, not a part of them)."""
    return frechet_distance(after.features, reference.features)


# ---- the image track's implementation of each metric (pair -> per-image scores; measures: one number) ------
IMPLEMENTATIONS = {
    "efficacy": lambda p: efficacy(p.before_reading, p.after_reading, p.target)["off"],
    "retention": lambda p: retention(p.before_reading, p.after_reading),
    "locality": lambda p: locality(p.before, p.after, p.before_reading, second_order=True)["score"],
    "no_darkening": lambda p: darkening(p.before_reading, p.after_reading)["score"],
    "second_order_removed": lambda p: 1 - second_order_residual(p.before_reading, p.after_reading),
    "cause": lambda p: disentangle(p.before_reading, p.after_reading, p.target)["cause"],
    "isolate": lambda p: disentangle(p.before_reading, p.after_reading, p.target)["isolate"],
    "fidelity": lambda p: fidelity(p.after_reading, p.reference_reading),
    "locality_l1": lambda p: nanmean(locality(p.before, p.after, p.before_reading)["l1"]),
    "feature_shift": lambda p: nanmean(feature_shift(p.before_reading, p.after_reading)),
}
