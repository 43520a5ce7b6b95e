"""Named layers, activation capture and reversible interventions for any ``torch.nn.Module``.

One small API serves every editor, for images and text alike::

    from editbench.core.hooks import capture, intervene, layer_shapes

    layer_shapes(model, example_input)                # {"blocks.1": (1, 256, 16, 16), ...}
    with capture(model, ["blocks.1"]) as acts:        # records outputs
        model(x)
    acts["blocks.1"]                                  # (B, 256, 16, 16)

    with intervene(model, {"blocks.1": lambda out: out * mask}):
        y = model(x)                                  # edited
    model(x)                                          # as before, bit for bit

Hooks are always removed when the context ends, also when the body raises. A layer is named by its
module path (``model.named_modules()``); an edit function gets the layer's output and returns the
replacement (or ``None`` to leave it).

A model declares the layers that editors work on as hook points (:class:`HookPoint`, ``model.hook_points()``):
each names the axis of its output that holds the units, so a clamp or a steering vector works on a
convolution's (B, C, H, W) map (units on axis 1) and on a transformer's (B, T, D) residual stream
(units on axis -1) alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .errors import UserError

EditFn = Callable[[Tensor], Tensor | None]


@dataclass(frozen=True)
class HookPoint:
    """A layer editors may hook: ``units`` along ``unit_axis`` of its output, whose other non-batch
    axes are ``positions`` (e.g. (16, 16) for a conv map, () for a pooled vector)."""

    name: str
    units: int
    unit_axis: int = 1
    positions: tuple[int, ...] = ()
    description: str = ""

    def broadcast(self, t: Tensor, out: Tensor) -> Tensor:
        """A per-unit tensor (units,) or a per-unit-and-position tensor (units, *positions) shaped to
        broadcast against this layer's output ``out`` (same device and dtype)."""
        t = t.to(out.device, out.dtype)
        axis = self.unit_axis % out.dim()
        if t.dim() == 1:
            return t.reshape(t.shape[0], *([1] * (out.dim() - axis - 1)))
        if t.dim() == out.dim() - axis:
            return t
        raise ValueError(f"hook point {self.name!r}: a tensor of shape {tuple(t.shape)} does not broadcast to "
                         f"units on axis {self.unit_axis} of an output of shape {tuple(out.shape)}")


def hook_points(model: nn.Module) -> dict[str, HookPoint]:
    """The hook points a model declares (``model.hook_points()``), or none."""
    declare = getattr(model, "hook_points", None)
    return dict(declare()) if callable(declare) else {}


class LayerError(UserError, KeyError):
    """An unknown layer name; the message lists close matches."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


def get_layer(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        import difflib

        close = difflib.get_close_matches(name, list(modules), n=3)
        hint = f"; did you mean {close}?" if close else f"; {len(modules)} layers, see list_layers()"
        raise LayerError(f"model {type(model).__name__} has no layer {name!r}{hint}")
    return modules[name]


def list_layers(model: nn.Module) -> list[str]:
    """Names of all sub-modules (leaves and containers), in definition order."""
    return [name for name, _ in model.named_modules() if name]


def _first_tensor(out: Any) -> Tensor | None:
    if isinstance(out, Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], Tensor):
        return out[0]
    return None


@torch.no_grad()
def layer_shapes(model: nn.Module, *inputs: Any, layers: Sequence[str] | None = None, **kwargs: Any
                 ) -> dict[str, tuple[int, ...]]:
    """Output shape of each named layer for one forward pass on ``inputs``."""
    names = list(layers) if layers is not None else list_layers(model)
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    for name in names:
        def hook(_m: nn.Module, _i: Any, out: Any, name: str = name) -> None:
            t = _first_tensor(out)
            if t is not None:
                shapes[name] = tuple(t.shape)
        handles.append(get_layer(model, name).register_forward_hook(hook))
    try:
        model(*inputs, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return {n: shapes[n] for n in names if n in shapes}


@contextmanager
def capture(model: nn.Module, layers: Sequence[str], detach: bool = True) -> Iterator[dict[str, Tensor]]:
    """Record the outputs of ``layers`` (the last call of each) into the yielded dict."""
    store: dict[str, Tensor] = {}
    handles = []
    try:
        for name in layers:
            def hook(_m: nn.Module, _i: Any, out: Any, name: str = name) -> None:
                t = _first_tensor(out)
                if t is not None:
                    store[name] = t.detach() if detach else t
            handles.append(get_layer(model, name).register_forward_hook(hook))
        yield store
    finally:
        for h in handles:
            h.remove()


@contextmanager
def intervene(model: nn.Module, edits: Mapping[str, EditFn]) -> Iterator[nn.Module]:
    """Replace the outputs of named layers by ``fn(output)`` inside the context; always undone."""
    handles = []
    try:
        for name, fn in edits.items():
            def hook(_m: nn.Module, _i: Any, out: Any, fn: EditFn = fn) -> Any:
                if isinstance(out, Tensor):
                    return fn(out)
                t = _first_tensor(out)
                if t is None:
                    return None
                new = fn(t)
                return None if new is None else (new, *out[1:])
            handles.append(get_layer(model, name).register_forward_hook(hook))
        yield model
    finally:
        for h in handles:
            h.remove()
