"""Task definitions: declarative, versioned specs plus the code that scores an edit on them.

A :class:`TaskSpec` names the edit request, the world slice the evidence comes from, the slices it is
scored on, the parts of its primary score and its split sizes and seeds. Its ``version`` is part of
every result it produces. :func:`score` runs one edit (or the oracle) on a split of a task and returns
per-part means, the primary score (harmonic mean of the parts) and a bootstrap 95% interval over images.

Splits: the evidence of budget seed ``s`` uses world seed ``EVIDENCE_SEED + s``; ``dev`` (for tuning)
and ``test`` (for reporting) use their own fixed seeds, never seen in training or evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from editbench import api
from editbench import metrics as m
from editbench.world import World, WorldConfig

EVIDENCE_SEED = 10_000
SPLIT_SEEDS = {"dev": 2**43, "test": 2**44}


@dataclass(frozen=True)
class Slice:
    """A world slice to score on: WorldConfig overrides and a latent scale (far-out latents)."""

    name: str
    world: dict[str, Any] = field(default_factory=dict)
    z_scale: float = 1.0

    def make_world(self, base: dict[str, Any] | None = None) -> World:
        return World(WorldConfig.from_dict({**(base or {}), **self.world}))


@dataclass(frozen=True)
class TaskSpec:
    name: str
    version: int
    request: str
    parts: tuple[str, ...]
    evidence: Slice
    slices: tuple[Slice, ...]
    description: str
    shifted: tuple[str, ...] = ()  # slices whose scores form the primary (ood_transfer); else all
    n_dev: int = 64
    n_test: int = 128

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "request": self.request, "parts": list(self.parts),
                "evidence": self.evidence.__dict__, "slices": [s.__dict__ for s in self.slices],
                "shifted": list(self.shifted), "n_dev": self.n_dev, "n_test": self.n_test}


MULTI_LAMP = {"lamp_count_probs": [0.0, 0.0, 0.5, 0.5]}
WITH_LAMPS = {"lamp_count_probs": [0.0, 0.4, 0.35, 0.25]}
NARROW = {"lamp_count_probs": [0.0, 1.0, 0.0, 0.0], "ambient_range": [0.7, 1.0],
          "wall_colors": ["white", "beige", "blue"]}

TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in [
        TaskSpec(
            "unlit_lamps", 1, "lamps_off", ("efficacy", "retention", "locality", "no_darkening"),
            Slice("default"), (Slice("rooms_with_lamps", WITH_LAMPS),),
            "Every lamp off, the lamps still there, the rest of the room unchanged and not darker.",
        ),
        TaskSpec(
            "single_lamp", 1, "leftmost_off", ("cause", "isolate", "retention", "locality"),
            Slice("multi_lamp", MULTI_LAMP), (Slice("multi_lamp", MULTI_LAMP),),
            "In rooms with 2-3 lamps, the leftmost lamp off and the others untouched. RAVEL's cause and isolate\n"
            "are separate parts so that the unedited model (isolate 1, cause 0) scores 0; their mean, disentangle,\n"
            "is reported beside them.",
        ),
        TaskSpec(
            "second_order", 1, "lamps_off_second_order", ("efficacy", "second_order_removed", "locality"),
            Slice("default"), (Slice("rooms_with_lamps", WITH_LAMPS),),
            "Lamps off and the light they threw on walls, floor and window gone too.",
        ),
        TaskSpec(
            "ood_transfer", 1, "lamps_off", ("efficacy", "retention", "locality", "no_darkening"),
            Slice("narrow", NARROW),
            (
                Slice("evidence_slice", NARROW),
                Slice("more_lamps", {**NARROW, **MULTI_LAMP}),
                Slice("night", {**NARROW, "ambient_range": [0.2, 0.45]}),
                Slice("unseen_walls", {**NARROW, "wall_colors": ["green", "pink", "yellow", "grey"]}),
                Slice("far_latents", NARROW, z_scale=2.0),
            ),
            "Evidence from one-lamp daytime rooms with three wall colours; scored on shifted slices.",
            shifted=("more_lamps", "night", "unseen_walls", "far_latents"),
        ),
    ]
}


def get_task(name: str) -> TaskSpec:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {sorted(TASKS)}")
    return TASKS[name]


def evidence_world(task: TaskSpec) -> World:
    return task.evidence.make_world()


def _target(request: api.EditRequest, before) -> Tensor:
    """(B, 3) target lamp slots as the meter finds them in the unedited image."""
    lamps = before.lamps
    if request.target == "all":
        return lamps
    n = before.count
    idx = torch.zeros_like(n) if request.target == "leftmost" else (n - 1).clamp_min(0)
    return torch.nn.functional.one_hot(idx.long(), lamps.shape[1]).bool() & lamps


def part_scores(task: TaskSpec, request: api.EditRequest, before_images: Tensor, after_images: Tensor,
                before, after) -> dict[str, Tensor]:
    """Per-image part scores (NaN where a part does not apply to an image)."""
    target = _target(request, before)
    out: dict[str, Tensor] = {}
    for part in task.parts:
        if part == "efficacy":
            out[part] = m.efficacy(before, after, target)["off"]
        elif part == "retention":
            out[part] = m.retention(before, after)
        elif part == "locality":
            out[part] = m.locality(before_images, after_images, before, second_order=True)["score"]
        elif part == "no_darkening":
            out[part] = m.darkening(before, after)["score"]
        elif part == "second_order_removed":
            out[part] = 1 - m.second_order_residual(before, after)
        elif part in ("cause", "isolate"):
            out[part] = m.disentangle(before, after, target)[part]
        else:
            raise ValueError(f"task {task.name!r}: unknown part {part!r}")
    return out


@torch.no_grad()
def score(task: TaskSpec, method: api.Method, edit: api.Edit, generator, meter, split: str = "test",
          n: int | None = None, n_boot: int = 1000, cache: dict | None = None, keep_images: int = 0
          ) -> dict[str, Any]:
    """Score an edit on a task split: per slice the part means, primary and 95% interval; overall the
    primary over the scored slices (``shifted`` ones for transfer tasks) and the transfer ratio.

    ``cache`` (a dict kept by the caller for one generator and meter) holds the unedited samples and
    their meter readings per (task, slice, split, n), which every method of a task shares.
    ``keep_images`` > 0 adds ``images`` (the first unedited and edited images of the first scored
    slice, tensors) for before/after pictures. ``per_image`` holds each part per image (pooled slices),
    for bootstraps over images and seeds and paired comparisons of methods."""
    request = api.EditRequest.named(task.request)
    n = n or (task.n_test if split == "test" else task.n_dev)
    seed = SPLIT_SEEDS[split]
    slices_out = {}
    images = None
    pooled: dict[str, list[Tensor]] = {p: [] for p in task.parts}
    for k, sl in enumerate(task.slices):
        world = sl.make_world()
        batch = world.sample(n, seed + k)
        if method.renders_world:
            before_images = batch.images
            after_images, _ = world.render(request.apply(batch.scene))
            reference = after_images
            before = None
        else:
            z = generator.make_latents(n, seed + k, scale=sl.z_scale)
            ckey = (task.name, task.version, sl.name, split, n)
            if cache is not None and ckey in cache:
                before_images, before = cache[ckey]
            else:
                before_images = generator.generate(batch.captions, z=z)
                before = meter.read(before_images)
                if cache is not None:
                    cache[ckey] = (before_images, before)
            after_images = api.edited_generate(edit, generator, batch.captions, z)
            reference, _ = world.render(request.apply(batch.scene))
        if not torch.isfinite(after_images).all():
            raise api.MethodError(f"method {method.name!r} produced non-finite images")
        before = meter.read(before_images) if before is None else before
        after = meter.read(after_images)
        parts = part_scores(task, request, before_images, after_images, before, after)
        point, lo, hi = m.bootstrap_ci(parts, m.harmonic_mean, n_boot=n_boot, seed=k)
        means = {p: m.nanmean(v) for p, v in parts.items()}
        if "cause" in means:
            means["disentangle"] = (means["cause"] + means["isolate"]) / 2
        rkey = (task.name, task.version, sl.name, split, n, "reference")
        if method.renders_world:
            ref_reading = after  # the oracle's images are the reference
        elif cache is not None and rkey in cache:
            ref_reading = cache[rkey]
        else:
            ref_reading = meter.read(reference)
            if cache is not None:
                cache[rkey] = ref_reading
        slices_out[sl.name] = {
            "primary": point, "ci": [lo, hi], "parts": means, "n": n,
            "fidelity": m.fidelity(after, ref_reading),
            "locality_l1": m.nanmean(m.locality(before_images, after_images, before)["l1"]),
            "feature_shift": m.nanmean(m.feature_shift(before, after)),
        }
        if not task.shifted or sl.name in task.shifted:
            for p, v in parts.items():
                pooled[p].append(v)
            if keep_images and images is None:
                images = {"before": before_images[:keep_images].cpu(), "after": after_images[:keep_images].cpu()}
    per_image = {p: torch.cat(v) for p, v in pooled.items()}
    point, lo, hi = m.bootstrap_ci(per_image, m.harmonic_mean, n_boot=n_boot, seed=99)
    result = {"task": task.name, "task_version": task.version, "task_spec": task.to_dict(), "split": split,
              "primary": point, "ci": [lo, hi],
              "parts": {p: m.nanmean(v) for p, v in per_image.items()}, "slices": slices_out,
              "per_image": {p: [round(float(x), 6) if x == x else None for x in v.tolist()]  # None: not applicable
                            for p, v in per_image.items()}}
    if images is not None:
        result["images"] = images
    if task.shifted:
        base = slices_out[task.slices[0].name]["primary"]
        result["transfer_ratio"] = point / base if base > 0 else float("nan")
    return result
