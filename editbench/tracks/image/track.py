"""The image track: the generator G(z, caption) is the model methods edit, the lamp meter reads its
images, and the renderer answers for the oracle. Paired outputs share their latent ``z``."""

from __future__ import annotations

import json
from collections.abc import Hashable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from torch import Tensor

from editbench.core import Budget, Edit, Evaluator, Evidence, HookPoint, MethodError
from editbench.tracks import Track
from editbench.world import Batch, World
from editbench.world.captions import rewrite_captions
from editbench.world.requests import EditRequest

from .checkpoints import ASSETS, checkpoint_hash, load_generator, load_meter
from .meter import MeterReading


@dataclass(frozen=True)
class ImageInputs:
    """n paired inputs: the world's scenes and captions (``batch``) and the latents ``z``."""

    world: World
    batch: Batch
    z: Tensor
    key: Hashable

    @property
    def captions(self) -> list[str]:
        return self.batch.captions


@dataclass(frozen=True)
class ImagePair:
    """Outputs before and after an edit on the same inputs, their meter readings, and the reading of the
    world's answer (renders of the requested scenes)."""

    before: Tensor  # (B, 3, H, W)
    after: Tensor
    before_reading: MeterReading
    after_reading: MeterReading
    reference_reading: MeterReading
    request: EditRequest
    captions: list[str]

    @cached_property
    def target(self) -> Tensor:
        """(B, 3) bool: the lamp slots of the unedited images that the request switches off."""
        return self.request.slots(self.before_reading.lamps, self.before_reading.x)


class ImageTrack(Track):
    name = "image"
    checkpoint_kinds = ("generator", "meter")
    edited = "generator"

    def load(self, checkpoints: dict[str, str | None], device: str = "cpu") -> dict[str, Any]:
        meter = load_meter(checkpoints.get("meter"), device=device).requires_grad_(False)
        return {"generator": load_generator(checkpoints.get("generator"), device=device), "meter": meter}

    def checkpoint_hashes(self, checkpoints: dict[str, str | None]) -> dict[str, str]:
        return {kind: checkpoint_hash(checkpoints.get(kind), kind) for kind in self.checkpoint_kinds}

    def provenance(self, checkpoints: dict[str, str | None]) -> dict[str, Any]:
        accuracy = None
        if checkpoints.get("meter") is None and (ASSETS / "report.json").exists():
            accuracy = json.loads((ASSETS / "report.json").read_text())["meter"]
        return {"meter_accuracy": accuracy}

    def request(self, name: str) -> EditRequest:
        return EditRequest.named(name)

    def hook_points(self, models: dict[str, Any]) -> dict[str, HookPoint]:
        return models["generator"].hook_points()

    # -- evidence ---------------------------------------------------------------------------------------
    def build_evidence(self, kind: str, models: dict[str, Any], request: EditRequest, budget: Budget, world: World,
                       uses_evaluator: bool) -> Evidence:
        G, M = models["generator"], models["meter"]
        n, seed = budget.n, budget.seed
        evaluator = None
        if uses_evaluator and budget.evaluator_calls > 0:
            evaluator = Evaluator(M.read, budget.evaluator_calls, differentiable=M)
        if kind == "none":
            return Evidence("none", evaluator=evaluator)
        batch = world.sample(n, seed)
        if kind == "captions":
            return Evidence("captions", captions=batch.captions, evaluator=evaluator)
        if kind == "samples":
            z = G.make_latents(n, seed)
            images = G.generate(batch.captions, z=z)
            return Evidence("samples", captions=batch.captions, noise=z, outputs=images, readings=M.read(images),
                            evaluator=evaluator)
        if kind == "targets":
            targets, _ = world.render(request.apply(batch.scene))
            return Evidence("targets", captions=batch.captions, outputs=batch.images, targets=targets, scenes=batch.scene,
                            evaluator=evaluator)
        raise MethodError(f"unknown evidence kind {kind!r}")

    # -- paired outputs ---------------------------------------------------------------------------------
    def inputs(self, models: dict[str, Any], world: World, n: int, seed: int, noise_scale: float, key: Hashable
               ) -> ImageInputs:
        return ImageInputs(world, world.sample(n, seed), models["generator"].make_latents(n, seed, scale=noise_scale), key)

    @torch.no_grad()
    def pair(self, session: Any, edit: Edit, request: EditRequest, inputs: ImageInputs) -> ImagePair:
        G, M = session.models["generator"], session.models["meter"]

        def unedited() -> tuple[Tensor, MeterReading]:
            images = G.generate(inputs.captions, z=inputs.z)
            return images, M.read(images)

        before, before_reading = session.memo((inputs.key, "unedited"), unedited)
        with edit.applied(G):
            after = G.generate(rewrite_captions(inputs.captions, edit.prompt), z=inputs.z)
        if not torch.isfinite(after).all():
            raise MethodError(f"method {edit.method!r} produced non-finite images")
        reference = session.memo((inputs.key, "reference"),
                                 lambda: M.read(inputs.world.render(request.apply(inputs.batch.scene))[0]))
        return ImagePair(before, after, before_reading, M.read(after), reference, request, inputs.captions)

    @torch.no_grad()
    def oracle_pair(self, session: Any, request: EditRequest, inputs: ImageInputs) -> ImagePair:
        M = session.models["meter"]
        before = inputs.batch.images
        after, _ = inputs.world.render(request.apply(inputs.batch.scene))
        after_reading = M.read(after)
        return ImagePair(before, after, M.read(before), after_reading, after_reading, request, inputs.captions)

    def effect(self, pair: ImagePair) -> float:
        """Share of first-order lamp light the meter no longer reads (mean over images)."""
        before = float(pair.before_reading.light1.sum((1, 2)).mean())
        after = float(pair.after_reading.light1.sum((1, 2)).mean())
        return 1 - after / max(before, 1e-9)

    def pictures(self, pair: ImagePair, k: int) -> dict[str, Tensor]:
        return {"before": pair.before[:k].cpu(), "after": pair.after[:k].cpu(), "captions": pair.captions[:k]}
