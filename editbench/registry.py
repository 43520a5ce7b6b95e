"""The method registry: lazy, extensible, and strict about bad input.

Built-in methods are listed as ``"module:Class"`` strings with their family and evidence kind, so
listing imports nothing. Out-of-tree methods arrive through the ``editbench.methods`` entry-point
group (``name = "package.module:Class"``) or are named directly: ``pkg.module:Class`` or
``path/to/file.py:Class``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from editbench.api import FAMILIES, Method

ENTRY_POINT_GROUP = "editbench.methods"


@dataclass(frozen=True)
class MethodSpec:
    name: str
    target: str  # "module:Class" or "path.py:Class"
    family: str | None = None
    consumes: str | None = None
    source: str = "built-in"


BUILTIN: dict[str, MethodSpec] = {
    s.name: s
    for s in [
        MethodSpec("none", "editbench.baselines.none:NoEdit", "reference", "none"),
        MethodSpec("oracle", "editbench.baselines.oracle:Oracle", "reference", "none"),
        MethodSpec("unit_clamp", "editbench.editors.unit_clamp:UnitClamp", "edit", "samples"),
        MethodSpec("spatial_clamp", "editbench.editors.spatial_clamp:SpatialClamp", "edit", "samples"),
        MethodSpec("steer", "editbench.editors.steer:Steer", "edit", "samples"),
        MethodSpec("rank_one", "editbench.editors.rank_one:RankOne", "edit", "samples"),
        MethodSpec("finetune_full", "editbench.baselines.finetune_full:FinetuneFull", "finetune", "targets"),
        MethodSpec("finetune_lora", "editbench.baselines.finetune_lora:FinetuneLora", "finetune", "targets"),
        MethodSpec("finetune_reward", "editbench.baselines.finetune_reward:FinetuneReward", "finetune", "captions"),
        MethodSpec("prompt", "editbench.baselines.prompt:PromptSearch", "prompt", "captions"),
    ]
}


class RegistryError(LookupError):
    """Unknown or broken method; the message is one line and says what to do."""


def _entry_point_specs() -> dict[str, MethodSpec]:
    specs = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        source = f"entry point ({dist.name} {dist.version})" if dist is not None else "entry point"
        specs[ep.name] = MethodSpec(ep.name, ep.value, source=source)
    return specs


def available() -> dict[str, MethodSpec]:
    """Every known method (built-ins first, then entry points), without importing any of them."""
    specs = dict(BUILTIN)
    for name, spec in _entry_point_specs().items():
        specs.setdefault(name, spec)
    return specs


def _import_target(target: str) -> type[Method]:
    if ":" not in target:
        raise RegistryError(f"method reference {target!r} must look like 'pkg.module:Class' or 'file.py:Class'")
    where, cls_name = target.rsplit(":", 1)
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_file():
                raise RegistryError(f"method file {where!r} does not exist")
            mod_name = f"editbench_user_method_{abs(hash(str(path.resolve())))}"
            spec = importlib.util.spec_from_file_location(mod_name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except RegistryError:
        raise
    except Exception as e:  # noqa: BLE001 - any import-time failure of user code is reported the same way
        raise RegistryError(f"method {target!r} failed to import: {type(e).__name__}: {e}") from None
    cls = getattr(module, cls_name, None)
    if cls is None:
        raise RegistryError(f"method {target!r}: module has no class {cls_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise RegistryError(f"method {target!r} is not a subclass of editbench.api.Method")
    if cls.family not in FAMILIES:
        raise RegistryError(f"method {target!r} declares family {cls.family!r}; choose from {list(FAMILIES)}")
    return cls


def resolve(name: str) -> type[Method]:
    """A method class by registered name, ``module:Class`` or ``file.py:Class``."""
    specs = available()
    if name in specs:
        return _import_target(specs[name].target)
    if ":" in name:
        return _import_target(name)
    import difflib

    close = difflib.get_close_matches(name, list(specs), n=2)
    hint = f"; did you mean {close}?" if close else ""
    raise RegistryError(f"unknown method {name!r}{hint} (see 'editbench methods list')")


def describe(spec: MethodSpec) -> MethodSpec:
    """Fill family/consumes of a spec by importing it (entry points only carry a target)."""
    if spec.family is not None:
        return spec
    cls = _import_target(spec.target)
    return MethodSpec(spec.name, spec.target, cls.family, cls.consumes, spec.source)
