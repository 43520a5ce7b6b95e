"""Named layers, activation capture and reversible interventions for any ``torch.nn.Module``.

One small API serves every editor, for images and text alike::

    from editbench.models.hooks import capture, intervene, layer_shapes

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
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

EditFn = Callable[[Tensor], Tensor | None]


class LayerError(KeyError):
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
