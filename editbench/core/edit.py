"""What a method returns: an :class:`Edit` that applies reversibly, saves, loads and reports its
:class:`Cost`. The edit knows models only through their parameters and declared hook points; how edited
outputs are produced for a batch (and what an oracle produces instead) is the track's business.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from . import io
from .errors import MethodError, UserError
from .hooks import HookPoint, hook_points, intervene
from .registry import class_reference, import_target

EDIT_FORMAT = 2


@dataclass
class Cost:
    """What an edit cost.

    Set by the method: ``params_changed``; ``examples_used`` (distinct evidence examples); the compute it
    spent on the model it edits, in units that mean the same at every budget: ``steps`` (optimiser steps),
    ``examples_seen`` (examples through those steps, repeats counted: ``examples_seen / examples_used`` is
    the number of epochs), ``forward`` and ``backward`` (passes of one example through the model: a
    generated sample counts one forward pass, a teacher-forced sequence one). Set by the harness:
    ``fit_seconds``, ``evaluator_calls``, ``flops`` (forward + 2 x backward passes times the model's
    FLOPs per pass, as :mod:`torch.utils.flop_counter` counts them; a method whose objective runs
    another model, such as a discriminator or a differentiable evaluator, counts its own and sets
    ``flops``) and the inference overhead (seconds
    per 100 samples with the edit minus without)."""

    fit_seconds: float = 0.0
    params_changed: int = 0
    examples_used: int = 0
    evaluator_calls: int = 0
    inference_overhead: float | None = None
    steps: int = 0
    examples_seen: int = 0
    forward: int = 0
    backward: int = 0
    flops: float | None = None

    def spend(self, forward: int = 0, backward: int = 0, steps: int = 0, seen: int = 0) -> None:
        """Add compute: ``forward``/``backward`` example passes, ``steps`` optimiser steps over ``seen`` examples."""
        self.forward += int(forward)
        self.backward += int(backward)
        self.steps += int(steps)
        self.examples_seen += int(seen)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Edit:
    """An applicable, saveable change to a model.

    Three mechanisms, any of which may be empty:

    * ``hooks``: per hook point, an operation on its output built from saved tensors, broadcast along
      the hook point's unit axis: ``"clamp"``: ``out * (1 - mask) + value * mask`` with ``mask`` and
      ``value`` per unit (units,) or per unit and position; ``"add"``: ``out + strength * direction``
      (with ``"positions": "last"``, on a sequence's (B, T, units) output only at its last position: the
      newest token of each generation step, as Inference-Time Intervention applies its shift);
    * ``deltas``: parameter name -> tensor added to the weights while applied (originals restored
      bit for bit afterwards);
    * ``prompt``: a rewrite of the model's input text, applied by the track (for prompting methods).

    A method with a mechanism of its own subclasses ``Edit`` and overrides :meth:`hook_fn` (or
    :meth:`pair`, which asks the track for the outputs before and after the edit).
    """

    def __init__(self, method: str, config: dict[str, Any] | None = None, tensors: dict[str, Tensor] | None = None,
                 hooks: dict[str, dict[str, Any]] | None = None, deltas: list[str] | None = None,
                 prompt: dict[str, Any] | None = None, cost: Cost | None = None, meta: dict[str, Any] | None = None):
        self.method = method
        self.config = dict(config or {})
        self.tensors = dict(tensors or {})
        self.hooks = dict(hooks or {})
        self.deltas = list(deltas or [])
        self.prompt = prompt
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

    def cost(self) -> Cost:
        return self._cost

    @property
    def uses_model(self) -> bool:
        """Whether the outputs after this edit are the model's (False for an edit whose :meth:`pair` answers
        with something else, like the oracle's world outputs)."""
        return type(self).pair is Edit.pair

    # -- outputs ---------------------------------------------------------------------------------------
    def pair(self, track: Any, session: Any, request: Any, inputs: Any) -> Any:
        """The track's outputs on ``inputs`` before and after this edit, as each reader reads them
        (``{reader: pair}``)."""
        return track.pair(session, self, request, inputs)

    # -- applying --------------------------------------------------------------------------------------
    def merge_into(self, model: nn.Module) -> nn.Module:
        """Add this edit's weight deltas to ``model`` for good (in the spirit of peft's ``merge_and_unload``) and
        return it: the model then computes what :meth:`applied` computes, with no hook. Only a pure weight edit
        merges; a MethodError (one line) for hooks, a prompt rewrite, an edit of its own kind or a weight the
        model does not have, before anything changes."""
        if self.hooks or self.prompt or not self.uses_model or type(self).applied is not Edit.applied:
            what = ("hooks" if self.hooks else "a prompt rewrite" if self.prompt else
                    f"its own mechanism ({type(self).__name__})")
            raise MethodError(f"edit {self.method!r} is not a weight change (it uses {what}); only weight edits merge "
                              "into a model")
        params = dict(model.named_parameters())
        missing = [n for n in self.deltas if n not in params]
        if missing:
            raise MethodError(f"edit {self.method!r} changes {missing}, which the model does not have")
        with torch.no_grad():
            for name in self.deltas:
                params[name].add_(self.tensors[f"delta.{name}"].to(params[name].device, params[name].dtype))
        return model

    def hook_fn(self, point: HookPoint, spec: dict[str, Any]) -> Callable[[Tensor], Tensor]:
        """The function that replaces ``point``'s output for one entry of ``hooks``."""
        op = spec["op"]
        if op == "clamp":
            mask, value = self.tensors[spec["mask"]], self.tensors[spec["value"]]

            def clamp(out: Tensor) -> Tensor:
                m, v = point.broadcast(mask, out), point.broadcast(value, out)
                return out * (1 - m) + v * m
            return clamp
        if op == "add":
            direction, strength = self.tensors[spec["direction"]], float(spec.get("strength", 1.0))
            if spec.get("positions", "all") == "last":
                if point.unit_axis not in (-1, 2):
                    raise MethodError(f"edit {self.method!r}: 'positions: last' needs a (B, T, units) hook point, "
                                      f"not {point.name!r}")

                def add_last(out: Tensor) -> Tensor:
                    shift = torch.zeros_like(out)
                    shift[:, -1] = strength * direction.to(out.device, out.dtype)
                    return out + shift
                return add_last

            def add(out: Tensor) -> Tensor:
                return out + strength * point.broadcast(direction, out)
            return add
        raise MethodError(f"edit {self.method!r}: unknown hook op {op!r} on {point.name!r}")

    def hook_fns(self, model: nn.Module) -> dict[str, Callable[[Tensor], Tensor]]:
        points = hook_points(model)
        fns = {}
        for layer, spec in self.hooks.items():
            if layer in points:
                point = points[layer]
            elif "unit_axis" in spec:
                point = HookPoint(layer, units=0, unit_axis=int(spec["unit_axis"]))
            else:
                raise MethodError(f"edit {self.method!r} hooks {layer!r}, which is not a hook point of "
                                  f"{type(model).__name__} (hook points: {sorted(points)}); name one, or give the "
                                  "hook a 'unit_axis'")
            fns[layer] = self.hook_fn(point, spec)
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
            with intervene(model, self.hook_fns(model)):
                yield model
        finally:
            with torch.no_grad():
                for name, orig in originals.items():
                    params[name].copy_(orig)

    def check_finite(self) -> None:
        for k, v in self.tensors.items():
            if v.is_floating_point() and not torch.isfinite(v).all():
                raise MethodError(f"edit {self.method!r} holds non-finite values in {k!r}")

    # -- persistence -----------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """``edit.safetensors`` (the tensors) and ``edit.json`` (everything else), written atomically."""
        record = {"format_version": EDIT_FORMAT, "edit_class": class_reference(type(self)),
                  "method": self.method, "config": self.config, "hooks": self.hooks, "deltas": self.deltas,
                  "prompt": self.prompt, "cost": self._cost.as_dict(), "meta": self.meta}

        def fill(tmp: Path) -> None:
            save_file({k: v.detach().cpu().contiguous() for k, v in self.tensors.items()}, str(tmp / "edit.safetensors"))
            (tmp / "edit.json").write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
        return io.write_dir(folder, fill)

    @classmethod
    def load(cls, folder: str | Path) -> Edit:
        """Load an edit; a method's own Edit subclass is restored from the module or the file named in
        ``edit.json`` (a method loaded as ``file.py:Class`` saves the file's path), or a one-line UserError
        says it cannot be."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / "edit.json").read_text())
            tensors = load_file(str(folder / "edit.safetensors"))
        except (OSError, ValueError) as e:
            raise UserError(f"{str(folder)!r} is not a saved edit: {type(e).__name__}: {e}") from None
        target = meta.get("edit_class", "editbench.core.edit:Edit")
        edit_cls: type[Edit] = cls
        if target != f"{cls.__module__}:{cls.__qualname__}":
            try:
                edit_cls = import_target(target)
            except UserError as e:
                raise UserError(f"{folder}: the edit's class cannot be loaded here (the method that saved it must be "
                                f"importable): {e}") from None
            if not (isinstance(edit_cls, type) and issubclass(edit_cls, Edit)):
                raise UserError(f"{folder}: edit class {target!r} is not an editbench Edit")
        prompt = meta.get("prompt", meta.get("caption"))  # format 1 called the prompt rewrite "caption"
        return edit_cls(meta["method"], meta["config"], tensors, meta["hooks"], meta["deltas"], prompt,
                        Cost(**meta["cost"]), meta.get("meta"))
