"""The one scoring path: an edit on a split of a task, read through the task's track.

:func:`score` returns, per slice, the part means, the primary (harmonic mean of the parts) with a
bootstrap 95% interval over outputs and the track's measures; overall, the primary over the scored
slices (the shifted ones for transfer tasks), its interval, the parts, the per-output part scores (for
bootstraps over outputs and seeds, and paired comparisons of methods) and the transfer ratio. Every one
of these is the **judge**'s reading. Intervals are no tighter than the reader allows: at least the track's
``reader_floor`` either side of the point (:func:`editbench.core.stats.widen`; ``ci_sampling`` keeps the
bootstrap's own). The same outputs read by the **proxy** (what methods optimise)
give ``proxy`` (its primary, interval, parts and per-output scores) and ``gap``: proxy minus judge with
a paired 95% interval, how much of the score the judge does not confirm.
"""

from __future__ import annotations

from typing import Any

import torch

from editbench.core import Edit
from editbench.core.stats import nanmean, output_bootstrap, output_gap, widen
from editbench.metrics import METRICS, of_track

from . import SPLIT_SEEDS, TaskSpec


@torch.no_grad()
def score(task: TaskSpec, edit: Edit, session: Any, split: str = "test", n: int | None = None, n_boot: int = 1000,
          keep: int = 0, primary_only: bool = False) -> dict[str, Any]:
    """Score ``edit`` on ``split`` of ``task`` with the session's models (the session caches the
    unedited outputs and readings, which every method of a task shares). ``keep`` > 0 adds
    ``pictures``: the first unedited and edited outputs of the first scored slice, as images.
    ``primary_only`` skips the slices the primary does not pool (a transfer task's evidence slice, read only
    for the transfer ratio): the primary, its interval and its parts are the same, the ratio is absent (the
    dev scoring of every tuning trial), and the proxy's reading (``proxy`` and ``gap``) is left out: a track
    returning :class:`~editbench.tracks.Readings` then never runs the proxy reader."""
    track = session.track
    request = track.request(task.request)
    n = n or (task.n_test if split == "test" else task.n_dev)
    seed = SPLIT_SEEDS[split]
    measures = of_track(task.track, "measure")
    derived = of_track(task.track, "derived")
    slices_out: dict[str, Any] = {}
    pooled: dict[str, list[torch.Tensor]] = {p: [] for p in task.parts}
    pooled_proxy: dict[str, list[torch.Tensor]] = {p: [] for p in task.parts}
    judge, proxy = track.readers[0], "proxy"
    floor = track.reader_floor(session.checkpoints)
    pictures = None
    for k, sl in enumerate(task.slices):
        if primary_only and not task.scored(sl):
            continue  # its inputs are seeded by its index, so the other slices read the same outputs
        inputs = track.inputs(session.models, sl.make_world(), n, seed + k, sl.noise_scale,
                              key=(task.name, task.version, sl.name, split, n))
        pairs = edit.pair(track, session, request, inputs)
        pair = pairs[judge]
        parts = {p: METRICS.get(p)(task.track, pair) for p in task.parts}
        proxy_parts = {} if primary_only else {p: METRICS.get(p)(task.track, pairs[proxy]) for p in task.parts}
        point, lo, hi = output_bootstrap(parts, n_boot=n_boot, seed=k)
        lo, hi = widen(point, lo, hi, floor)
        means = {p: nanmean(v) for p, v in parts.items()}
        means.update({d.name: d.combine(means) for d in derived.values() if set(d.needs) <= set(means)})
        slices_out[sl.name] = {"primary": point, "ci": [lo, hi], "parts": means, "n": n,
                               **{name: m(task.track, pair) for name, m in measures.items()}}
        if task.scored(sl):
            for p, v in parts.items():
                pooled[p].append(v)
            for p, v in proxy_parts.items():
                pooled_proxy[p].append(v)
            if keep and pictures is None:
                pictures = track.pictures(pair, keep)
    per_output = {p: torch.cat(v) for p, v in pooled.items()}
    point, lo_s, hi_s = output_bootstrap(per_output, n_boot=n_boot, seed=99)
    lo, hi = widen(point, lo_s, hi_s, floor)
    result: dict[str, Any] = {
        "task": task.name, "task_version": task.version, "task_spec": task.to_dict(), "split": split,
        "primary": point, "ci": [lo, hi], "ci_sampling": [lo_s, hi_s], "reader_floor": floor,
        "parts": {p: nanmean(v) for p, v in per_output.items()},
        "slices": slices_out,
        "per_image": _rounded(per_output),
    }
    if not primary_only:
        per_output_proxy = {p: torch.cat(v) for p, v in pooled_proxy.items()}
        p_point, p_lo, p_hi = output_bootstrap(per_output_proxy, n_boot=n_boot, seed=99)
        gap, gap_lo, gap_hi = output_gap(per_output_proxy, per_output, n_boot=n_boot, seed=98)
        result["proxy"] = {"primary": p_point, "ci": [p_lo, p_hi],
                           "parts": {p: nanmean(v) for p, v in per_output_proxy.items()},
                           "per_image": _rounded(per_output_proxy)}
        result["gap"] = {"point": gap, "ci": [gap_lo, gap_hi]}
    if pictures is not None:
        result["pictures"] = pictures
    if task.shifted and not primary_only:
        base = slices_out[task.slices[0].name]["primary"]
        result["transfer_ratio"] = point / base if base > 0 else float("nan")
    return result


def _rounded(per_output: dict[str, torch.Tensor]) -> dict[str, list[float | None]]:
    """Per-output part scores for a result file (None: the part does not apply to that output)."""
    return {p: [round(float(x), 6) if x == x else None for x in v.tolist()] for p, v in per_output.items()}
