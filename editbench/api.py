"""The method contract: one interface for editing, finetuning and prompting.

A :class:`Method` gets the model, an :class:`EditRequest` (what must change), :class:`Evidence` (what it
may look at) bounded by a :class:`Budget`, and returns an :class:`Edit`: an artifact that changes the
model reversibly (``with edit.applied(model): ...``), rewrites captions if it is a prompt, saves and
loads (safetensors + JSON), and reports its :class:`Cost`.

Methods never assume the generator is a GAN: they reach the model through its interface
(``generate``, ``encode_captions``, ``make_latents``, ``editable_layers()``,
``training_objective(discriminator)``) and through :mod:`editbench.models.hooks`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from editbench.models.hooks import intervene
from editbench.models.meter import MeterReading
from editbench.world.scene import Scene

Family = Literal["edit", "finetune", "prompt", "reference"]
EvidenceKind = Literal["samples", "targets", "captions", "none"]
FAMILIES: tuple[str, ...] = ("edit", "finetune", "prompt", "reference")


class MethodError(RuntimeError):
    """A method that cannot run as asked (bad config, budget exceeded, ...)."""


# ---- what must change -----------------------------------------------------------------------------
@dataclass(frozen=True)
class EditRequest:
    """What must change.

    ``target``: ``"all"`` lamps, or one lamp by position: ``"leftmost"``, ``"rightmost"``, or
    ``"region"`` (the lamps whose centre lies in ``region`` = (x0, x1), fractions of the width).
    ``second_order``: whether the light the lamps throw on the room must go too (it always does in
    the world; the flag says whether the task scores it).
    """

    target: Literal["all", "leftmost", "rightmost", "region"] = "all"
    region: tuple[float, float] | None = None
    second_order: bool = False

    NAMES: ClassVar[dict[str, dict[str, Any]]] = {
        "lamps_off": {"target": "all"},
        "leftmost_off": {"target": "leftmost"},
        "rightmost_off": {"target": "rightmost"},
        "lamps_off_second_order": {"target": "all", "second_order": True},
    }

    @classmethod
    def named(cls, name: str) -> EditRequest:
        if name not in cls.NAMES:
            raise ValueError(f"unknown edit request {name!r}; choose from {sorted(cls.NAMES)}")
        return cls(**cls.NAMES[name])

    @property
    def name(self) -> str:
        for k, v in self.NAMES.items():
            if EditRequest(**v) == self:
                return k
        return f"region_off_{self.region}"

    def target_lamps(self, scene: Scene) -> Tensor:
        """(B, 3) bool: the lamps this request switches off."""
        pres = scene.lamp_present
        if self.target == "all":
            return pres.clone()
        if self.target in ("leftmost", "rightmost"):
            n = scene.n_lamps
            idx = torch.zeros_like(n) if self.target == "leftmost" else (n - 1).clamp_min(0)
            mask = torch.nn.functional.one_hot(idx.long(), pres.shape[1]).bool()
            return mask & pres
        x0, x1 = self.region or (0.0, 1.0)
        return pres & (scene.lamp_x >= x0) & (scene.lamp_x <= x1)

    def apply(self, scene: Scene) -> Scene:
        """The requested scene: the target lamps switched off, nothing else changed."""
        return scene.replace(lamp_on=scene.lamp_on & ~self.target_lamps(scene))

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "region": list(self.region) if self.region else None,
                "second_order": self.second_order}


# ---- what a method may use --------------------------------------------------------------------------
@dataclass(frozen=True)
class Budget:
    """``n`` examples of the method's evidence kind; ``evaluator_calls`` meter calls (images read)."""

    n: int
    evaluator_calls: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 0 or self.evaluator_calls < 0:
            raise ValueError(f"budget must be non-negative, got n={self.n}, evaluator_calls={self.evaluator_calls}")


class Evaluator:
    """The meter behind a counter: every image read costs one call; reading past the budget raises."""

    def __init__(self, meter: nn.Module, limit: int):
        self.meter, self.limit, self.calls = meter, limit, 0

    def _spend(self, n: int) -> None:
        if self.calls + n > self.limit:
            raise MethodError(f"evaluator budget exceeded: {self.calls} + {n} > {self.limit} calls")
        self.calls += n

    @property
    def remaining(self) -> int:
        return self.limit - self.calls

    def __call__(self, images: Tensor) -> MeterReading:
        self._spend(images.shape[0])
        return self.meter.read(images)

    def differentiable(self, images: Tensor) -> dict[str, Tensor]:
        """The meter's raw outputs with gradients (for reward finetuning); costs one call per image."""
        self._spend(images.shape[0])
        return self.meter(images)


@dataclass
class Evidence:
    """What the harness hands a method, exactly its declared kind and budget.

    * ``samples``: ``z`` (n, z_dim), ``captions``, ``images`` generated by the model and ``readings``
      of them by the meter (lamp masks, light maps): unlabeled model outputs, labelled by the meter.
    * ``targets``: ``captions``, ``images`` rendered from n world scenes, and ``targets``: the same
      scenes rendered with the request applied (what the model should draw for such captions).
    * ``captions``: ``captions`` only.
    ``evaluator`` is a counted meter (None when the budget allows no calls).
    """

    kind: EvidenceKind
    captions: list[str] = field(default_factory=list)
    z: Tensor | None = None
    images: Tensor | None = None
    readings: MeterReading | None = None
    targets: Tensor | None = None
    scenes: Scene | None = None
    evaluator: Evaluator | None = None

    @property
    def n(self) -> int:
        return len(self.captions)


# ---- what a method returns ----------------------------------------------------------------------------
@dataclass
class Cost:
    """What an edit cost: fit time, parameters changed, examples used, evaluator calls, and the
    inference overhead (seconds per 100 samples with the edit minus without; filled by the harness)."""

    fit_seconds: float = 0.0
    params_changed: int = 0
    examples_used: int = 0
    evaluator_calls: int = 0
    inference_overhead: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Edit:
    """An applicable, saveable change to a model.

    The base class covers the three mechanisms every built-in method uses, any of which may be empty:

    * ``hooks``: per layer, an operation on the layer's output ``out`` (B, C, H, W) built from saved
      tensors: ``out * (1 - mask) + value * mask`` with ``mask`` (C,) or (C, H, W) ("clamp"), or
      ``out + strength * direction`` ("add");
    * ``deltas``: parameter name -> tensor added to the weights while applied (originals restored
      bit for bit afterwards);
    * ``caption``: a caption rewrite (for prompts), see :meth:`rewrite`.
    """

    def __init__(self, method: str, config: dict[str, Any] | None = None, tensors: dict[str, Tensor] | None = None,
                 hooks: dict[str, dict[str, Any]] | None = None, deltas: list[str] | None = None,
                 caption: dict[str, Any] | None = None, cost: Cost | None = None, meta: dict[str, Any] | None = None):
        self.method = method
        self.config = dict(config or {})
        self.tensors = dict(tensors or {})
        self.hooks = dict(hooks or {})
        self.deltas = list(deltas or [])
        self.caption = caption
        self._cost = cost or Cost()
        self.meta = dict(meta or {})

    @classmethod
    def from_weights(cls, method: str, config: dict[str, Any], original: nn.Module, trained: nn.Module,
                     cost: Cost, meta: dict[str, Any] | None = None) -> Edit:
        """The edit that turns ``original`` into ``trained`` (same architecture): one delta per changed
        parameter; ``cost.params_changed`` counts their elements."""
        before = dict(original.named_parameters())
        tensors, deltas = {}, []
        for name, p in trained.named_parameters():
            d = (p.detach() - before[name].detach()).contiguous()
            if torch.count_nonzero(d):
                tensors[f"delta.{name}"] = d
                deltas.append(name)
        cost.params_changed = sum(t.numel() for t in tensors.values())
        return cls(method, config, tensors=tensors, deltas=deltas, cost=cost, meta=meta)

    # -- cost ------------------------------------------------------------------------------------------
    def cost(self) -> Cost:
        return self._cost

    # -- captions --------------------------------------------------------------------------------------
    def rewrite(self, captions: list[str]) -> list[str]:
        """Captions as the edited model is prompted with them (identity unless a prompt edit)."""
        if not self.caption:
            return list(captions)
        from editbench.world.captions import rewrite_lamp_clause

        return [rewrite_lamp_clause(c, self.caption["clause"]) for c in captions]

    # -- applying --------------------------------------------------------------------------------------
    def _hook_fns(self, model: nn.Module) -> dict[str, Callable[[Tensor], Tensor]]:
        fns = {}
        for layer, spec in self.hooks.items():
            op = spec["op"]
            if op == "clamp":
                mask = self.tensors[spec["mask"]]
                value = self.tensors[spec["value"]]

                def fn(out: Tensor, mask: Tensor = mask, value: Tensor = value) -> Tensor:
                    m = mask.to(out.device, out.dtype)
                    v = value.to(out.device, out.dtype)
                    if m.dim() == 1:
                        m = m[:, None, None]
                    if m.shape[-2:] != out.shape[-2:] and m.shape[-1] != 1:
                        m = torch.nn.functional.interpolate(m[None], size=out.shape[-2:], mode="bilinear",
                                                            align_corners=False)[0]
                    v = v[:, None, None] if v.dim() == 1 else v
                    return out * (1 - m) + v * m
            elif op == "add":
                direction = self.tensors[spec["direction"]]
                strength = float(spec.get("strength", 1.0))

                def fn(out: Tensor, direction: Tensor = direction, strength: float = strength) -> Tensor:
                    d = direction.to(out.device, out.dtype)
                    d = d[:, None, None] if d.dim() == 1 else d
                    return out + strength * d
            else:
                raise MethodError(f"edit {self.method!r}: unknown hook op {op!r} on {layer!r}")
            fns[layer] = fn
        return fns

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """Apply the edit inside the context; the model is exactly as before afterwards."""
        params = dict(model.named_parameters())
        originals = {}
        try:
            with torch.no_grad():
                for name in self.deltas:
                    if name not in params:
                        raise MethodError(f"edit {self.method!r} changes {name!r}, which the model does not have")
                    originals[name] = params[name].detach().clone()
                    params[name].add_(self.tensors[f"delta.{name}"].to(params[name].device, params[name].dtype))
            with intervene(model, self._hook_fns(model)):
                yield model
        finally:
            with torch.no_grad():
                for name, orig in originals.items():
                    params[name].copy_(orig)

    # -- persistence -----------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        tmp = folder.with_name(folder.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.tensors.items()}, str(tmp / "edit.safetensors"))
        (tmp / "edit.json").write_text(json.dumps({
            "format_version": 1, "edit_class": f"{type(self).__module__}:{type(self).__qualname__}",
            "method": self.method, "config": self.config, "hooks": self.hooks,
            "deltas": self.deltas, "caption": self.caption, "cost": self._cost.as_dict(), "meta": self.meta,
        }, indent=2, sort_keys=True, default=str))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Edit:
        """Load an edit; a method's own Edit subclass is restored (only from editbench or an importable
        method module named in ``edit.json``)."""
        folder = Path(folder)
        meta = json.loads((folder / "edit.json").read_text())
        tensors = load_file(str(folder / "edit.safetensors"))
        target = meta.get("edit_class", "editbench.api:Edit")
        if target != "editbench.api:Edit":
            import importlib

            module, name = target.split(":")
            cls = getattr(importlib.import_module(module), name)
            if not (isinstance(cls, type) and issubclass(cls, Edit)):
                raise MethodError(f"{folder}: edit class {target!r} is not an editbench Edit")
        return cls(meta["method"], meta["config"], tensors, meta["hooks"], meta["deltas"], meta["caption"],
                   Cost(**meta["cost"]), meta.get("meta"))

    def check_finite(self) -> None:
        for k, v in self.tensors.items():
            if v.is_floating_point() and not torch.isfinite(v).all():
                raise MethodError(f"edit {self.method!r} holds non-finite values in {k!r}")


# ---- the method base class -------------------------------------------------------------------------------
@dataclass
class MethodConfig:
    """Base of every method's typed config; subclasses add fields with defaults."""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Method:
    """Base class of every method. Subclasses set the class attributes and implement :meth:`fit`.

    ``consumes``: the evidence kind it needs; ``uses_evaluator``: whether it spends evaluator calls;
    ``search_space``: config field -> candidate values, for the tuning budget shared by all methods.
    """

    name: ClassVar[str] = ""
    family: ClassVar[Family] = "edit"
    consumes: ClassVar[EvidenceKind] = "samples"
    uses_evaluator: ClassVar[bool] = False
    renders_world: ClassVar[bool] = False  # the oracle: its "edited outputs" are renders of requested scenes
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    search_space: ClassVar[dict[str, list[Any]]] = {}

    def __init__(self, config: MethodConfig | dict[str, Any] | None = None):
        if isinstance(config, dict) or config is None:
            known = {f.name for f in dataclasses.fields(self.Config)}
            unknown = sorted(set(config or {}) - known)
            if unknown:
                raise ValueError(f"method {self.name!r}: unknown config field(s) {unknown}; known: {sorted(known)}")
            config = self.Config(**(config or {}))
        self.config = config

    def fit(self, model: nn.Module, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        raise NotImplementedError

    def run(self, model: nn.Module, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        """``fit`` with the harness's checks: timing, cost bookkeeping, finite tensors, budget kept."""
        t0 = time.perf_counter()
        edit = self.fit(model, request, evidence, budget)
        if not isinstance(edit, Edit):
            raise MethodError(f"method {self.name!r} returned {type(edit).__name__}, not an Edit")
        edit.check_finite()
        cost = edit.cost()
        cost.fit_seconds = time.perf_counter() - t0
        cost.evaluator_calls = evidence.evaluator.calls if evidence.evaluator else 0
        if cost.examples_used > budget.n:
            raise MethodError(f"method {self.name!r} used {cost.examples_used} examples, budget {budget.n}")
        return edit


# ---- the harness side: evidence and edited outputs ----------------------------------------------------------
def build_evidence(kind: EvidenceKind, generator: nn.Module, meter: nn.Module, world: Any, request: EditRequest,
                   budget: Budget, uses_evaluator: bool = False) -> Evidence:
    """Exactly ``budget.n`` examples of ``kind`` from ``world`` (seeded by ``budget.seed``), plus a
    counted evaluator when the method uses one and the budget allows calls."""
    n, seed = budget.n, budget.seed
    evaluator = Evaluator(meter, budget.evaluator_calls) if uses_evaluator and budget.evaluator_calls > 0 else None
    if kind == "none":
        return Evidence("none", evaluator=evaluator)
    batch = world.sample(n, seed)
    if kind == "captions":
        return Evidence("captions", captions=batch.captions, evaluator=evaluator)
    if kind == "samples":
        z = generator.make_latents(n, seed)
        images = generator.generate(batch.captions, z=z)
        return Evidence("samples", captions=batch.captions, z=z, images=images, readings=meter.read(images),
                        evaluator=evaluator)
    if kind == "targets":
        targets, _ = world.render(request.apply(batch.scene))
        return Evidence("targets", captions=batch.captions, images=batch.images, targets=targets, scenes=batch.scene,
                        evaluator=evaluator)
    raise MethodError(f"unknown evidence kind {kind!r}")


def fit_method(method: Method, generator: nn.Module, meter: nn.Module, world: Any, request: EditRequest,
               budget: Budget) -> Edit:
    """Build the method's evidence and fit it (the path every harness takes)."""
    evidence = build_evidence(method.consumes, generator, meter, world, request, budget, method.uses_evaluator)
    edit = method.run(generator, request, evidence, budget)
    edit.cost().examples_used = min(edit.cost().examples_used or evidence.n, budget.n)
    return edit


@torch.no_grad()
def edited_generate(edit: Edit, generator: nn.Module, captions: list[str], z: Tensor) -> Tensor:
    """What the edited model draws for ``captions`` and latents ``z``."""
    with edit.applied(generator):
        return generator.generate(edit.rewrite(captions), z=z)
