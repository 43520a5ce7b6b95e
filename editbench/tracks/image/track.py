"""The image track: the generator G(z, caption) is the model methods edit, the renderer answers for the
oracle, and two readers read the images: the **proxy** (the shipped lamp meter), which labels methods'
evidence and answers their evaluator calls, and the **judge** (a meter trained apart from it, with its
own architecture, seed, degradations and five slots), which every score comes from. Paired outputs share
their latent ``z``.

Evaluators of graded quality (``EVALUATORS``; a cell's ``evaluator``): ``proxy`` the shipped meter,
``weak`` the meter's architecture trained for 250 steps, ``noisy`` the proxy with label noise (see
:class:`NoisyMeter`). The chosen one labels a method's evidence and answers its evaluator calls."""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from torch import Tensor

from editbench.core import Budget, Edit, Evaluator, Evidence, HookPoint, MethodError
from editbench.tracks import Readings, Track
from editbench.world import Batch, World
from editbench.world.captions import rewrite_captions
from editbench.world.requests import EditRequest

from .checkpoints import ASSETS, checkpoint_hash, load_generator, load_meter, shipped_report
from .meter import LampMeter, MeterReading, read_batches

# A finetuning step that also trains the discriminator, against one that does not: 2.5x, measured on 2 CPU cores
# (tuning trials of 10 steps at n = 1: 35 s against 14 s; of 128 steps at n = 256: 129-134 s against 53 s)
DISCRIMINATOR_STEP_COST = 2.5

EVALUATORS = ("proxy", "weak", "noisy")
NOISE_FLIP = 0.2  # the noisy evaluator: probability a lamp's state is misread
NOISE_LIGHT = 0.2  # and the standard deviation of the noise field added to its light maps


class NoisyMeter:
    """The proxy with label noise: each lamp slot's on/off state is misread with probability
    :data:`NOISE_FLIP` and a noise field (standard deviation :data:`NOISE_LIGHT`, per pixel) is added to both
    light maps, in the readings and in the differentiable outputs reward finetuning descends. The draws are
    seeded by the image's bytes (rounded to 1/1024), so an image always reads the same way: a fixed imperfect
    reader, not fresh noise on every call."""

    def __init__(self, meter: LampMeter, seed: int = 0x5EED):
        self.meter, self.seed = meter, seed

    def _noise(self, images: Tensor) -> tuple[Tensor, Tensor]:
        import hashlib

        flips, fields = [], []
        H, W = images.shape[-2:]
        slots = self.meter.config.slots
        for img in (images.detach().float().cpu() * 1024).round().to(torch.int32):
            digest = hashlib.blake2b(img.numpy().tobytes(), digest_size=8, key=self.seed.to_bytes(4, "little")).digest()
            g = torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))
            flips.append(torch.rand(slots, generator=g) < NOISE_FLIP)
            fields.append(torch.randn(2, H, W, generator=g) * NOISE_LIGHT)
        return torch.stack(flips).to(images.device), torch.stack(fields).to(images.device)

    @torch.no_grad()
    def read(self, images: Tensor, batch_size: int = 256) -> MeterReading:
        return read_batches(self, images, self.meter.device, self.meter.dtype, batch_size)

    def __call__(self, images: Tensor) -> dict[str, Tensor]:
        out = dict(self.meter(images))
        flip, field = self._noise(images)
        out["on_logit"] = torch.where(flip, -out["on_logit"], out["on_logit"])
        out["light1"], out["light2"] = out["light1"] + field[:, 0], out["light2"] + field[:, 1]
        return out


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
    outputs = "images"
    label = "images"
    checkpoint_kinds = ("generator", "meter", "judge", "weak")
    edited = "generator"

    evaluators = EVALUATORS

    def load(self, checkpoints: dict[str, str | None], device: str = "cpu") -> dict[str, Any]:
        def meter(kind: str) -> LampMeter:
            return load_meter(checkpoints.get(kind) or ASSETS / kind, device=device).requires_grad_(False)

        return {"generator": load_generator(checkpoints.get("generator"), device=device), "meter": meter("meter"),
                "judge": meter("judge"), "weak": meter("weak")}

    def evaluator(self, models: dict[str, Any], name: str) -> Any:
        """The reader behind evaluator ``name`` (``read(images)``; called: differentiable outputs)."""
        if name not in EVALUATORS:
            raise MethodError(f"unknown evaluator {name!r} on the image track; choose from {list(EVALUATORS)}")
        return NoisyMeter(models["meter"]) if name == "noisy" else models["meter" if name == "proxy" else "weak"]

    def step_cost(self, config: dict[str, Any]) -> float:
        return DISCRIMINATOR_STEP_COST if config.get("train_discriminator") else 1.0

    def _reader(self, models: dict[str, Any], reader: str) -> Any:
        return models["judge"] if reader == "judge" else self.evaluator(models, "proxy")

    def checkpoint_hashes(self, checkpoints: dict[str, str | None]) -> dict[str, str]:
        return {kind: checkpoint_hash(checkpoints.get(kind), kind) for kind in self.checkpoint_kinds}

    def provenance(self, checkpoints: dict[str, str | None]) -> dict[str, Any]:
        """The shipped meter's and judge's card figures (None where a run names other checkpoints)."""
        report = shipped_report()
        return {"meter_accuracy": report.get("meter") if checkpoints.get("meter") is None else None,
                "judge_accuracy": report.get("judge") if checkpoints.get("judge") is None else None}

    def reader_floor(self, checkpoints: dict[str, str | None]) -> float | None:
        """The judge card's reader floor: half the share of lamps whose state judge and proxy disagree on in the
        unedited generator's samples (None where a run names checkpoints the card did not measure)."""
        if any(checkpoints.get(k) is not None for k in ("generator", "meter", "judge")):
            return None
        return shipped_report().get("judge", {}).get("reader_floor")

    def request(self, name: str) -> EditRequest:
        return EditRequest.named(name)

    def hook_points(self, models: dict[str, Any]) -> dict[str, HookPoint]:
        return models["generator"].hook_points()

    # -- evidence ---------------------------------------------------------------------------------------
    def example_pass(self, models: dict[str, Any], world: World):
        G, batch = models["generator"], world.sample(1, 0)
        ids, mask = G.encode_captions(batch.captions)
        z = G.make_latents(1, 0)
        return lambda: G(z, ids, mask)

    def build_evidence(self, kind: str, models: dict[str, Any], request: EditRequest, budget: Budget, world: World,
                       uses_evaluator: bool, evaluator_name: str = "proxy") -> Evidence:
        G, M = models["generator"], self.evaluator(models, evaluator_name)
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
    def pair(self, session: Any, edit: Edit, request: EditRequest, inputs: ImageInputs) -> Readings:
        G = session.models["generator"]
        before = session.memo((inputs.key, "unedited"), lambda: G.generate(inputs.captions, z=inputs.z))
        with edit.applied(G):
            after = G.generate(rewrite_captions(inputs.captions, edit.prompt), z=inputs.z)
        if not torch.isfinite(after).all():
            raise MethodError(f"method {edit.method!r} produced non-finite images")
        reference = session.memo((inputs.key, "reference"), lambda: inputs.world.render(request.apply(inputs.batch.scene))[0])

        @torch.no_grad()
        def read(reader: str) -> ImagePair:
            M = self._reader(session.models, reader)
            before_reading = session.memo((inputs.key, "unedited", reader), lambda: M.read(before))
            reference_reading = session.memo((inputs.key, "reference", reader), lambda: M.read(reference))
            return ImagePair(before, after, before_reading, M.read(after), reference_reading, request, inputs.captions)

        return Readings(self.readers, read)  # a meter reads 64x64 images as slowly as the generator draws them

    @torch.no_grad()
    def oracle_pair(self, session: Any, request: EditRequest, inputs: ImageInputs) -> dict[str, ImagePair]:
        before = inputs.batch.images
        after, _ = inputs.world.render(request.apply(inputs.batch.scene))
        out = {}
        for reader in self.readers:
            M = self._reader(session.models, reader)
            after_reading = M.read(after)
            out[reader] = ImagePair(before, after, M.read(before), after_reading, after_reading, request, inputs.captions)
        return out

    def metrics(self) -> dict[str, Any]:
        from .metrics import IMPLEMENTATIONS

        return IMPLEMENTATIONS

    def effect(self, pair: ImagePair) -> float:
        """Share of first-order lamp light the meter no longer reads (mean over images)."""
        before = float(pair.before_reading.light1.sum((1, 2)).mean())
        after = float(pair.after_reading.light1.sum((1, 2)).mean())
        return 1 - after / max(before, 1e-9)

    def pictures(self, pair: ImagePair, k: int) -> dict[str, Tensor]:
        return {"before": pair.before[:k].cpu(), "after": pair.after[:k].cpu(), "captions": pair.captions[:k]}

    def finetune(self, model: Any, params: list[Any], evidence: Evidence, config: Any, seed: int, cost: Any
                 ) -> dict[str, Any]:
        """The generator's own GAN objective on the target images (:mod:`.finetune`)."""
        from .finetune import finetune_generator

        return finetune_generator(model, params, evidence, config, seed, cost)

    def evaluator_quality(self, name: str) -> float:
        """The shipped card's per-lamp on/off accuracy of evaluator ``name`` on renders."""
        from .checkpoints import shipped_report

        figures = shipped_report().get("evaluators", {})
        return float((figures.get(name) or {}).get("on_off_accuracy", math.nan))


TRACK = ImageTrack
