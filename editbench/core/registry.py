"""One registry type for everything looked up by name: methods, tracks, tasks, score parts, executors,
suites.

An entry is registered beside the thing it names, either as the object itself or lazily as a
``"package.module:Attr"`` string that is imported on first use, so that listing names imports nothing.
Out-of-tree entries arrive through an entry-point group (``[project.entry-points."editbench.methods"]``)
or, where a registry allows it, are named directly as ``pkg.module:Attr`` or ``path/to/file.py:Attr``.
A registry checks each entry when it is first loaded (``check``) and refuses a name registered twice.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Generic, TypeVar

from .errors import UnknownNameError, UserError

T = TypeVar("T")


class RegistryError(UserError, LookupError):
    """An entry that cannot be loaded (import failure, wrong type, failed check); one line."""


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "module:Attr", "file.py:Attr", or "<object>" for an entry registered as an object
    source: str = "built-in"


FILE_MODULE_PREFIX = "editbench_user_"  # the module a file reference is imported as: prefix + a hash of its path


def file_module_name(path: str | Path) -> str:
    """The module name ``path.py:Attr`` imports as: the same in every process (a hash of the resolved path)."""
    return FILE_MODULE_PREFIX + hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:16]


def class_reference(cls: type) -> str:
    """``module:Qualname`` for ``cls``, or ``/path/to/file.py:Qualname`` where ``cls`` came from a file
    reference (its module name means nothing to another process that never imported that file)."""
    module = sys.modules.get(cls.__module__)
    where = cls.__module__
    if where.startswith(FILE_MODULE_PREFIX) and getattr(module, "__file__", None):
        where = str(Path(module.__file__).resolve())
    return f"{where}:{cls.__qualname__}"


def import_target(target: str) -> Any:
    """The attribute named by ``pkg.module:Attr`` or ``path/to/file.py:Attr``."""
    if ":" not in target:
        raise RegistryError(f"reference {target!r} must look like 'pkg.module:Attr' or 'file.py:Attr'")
    where, attr = target.rsplit(":", 1)
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_file():
                raise RegistryError(f"file {where!r} does not exist")
            mod_name = file_module_name(path)
            module = sys.modules.get(mod_name)
            if module is None:
                spec = importlib.util.spec_from_file_location(mod_name, path)
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                sys.modules[mod_name] = module
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[mod_name]
                    raise
        else:
            module = importlib.import_module(where)
    except RegistryError:
        raise
    except Exception as e:  # noqa: BLE001 - any import-time failure of user code is reported the same way
        raise RegistryError(f"{target!r} failed to import: {type(e).__name__}: {e}") from None
    obj = getattr(module, attr, None)
    if obj is None:
        raise RegistryError(f"{target!r}: module has no attribute {attr!r}")
    return obj


class Registry(Generic[T]):
    """Named entries of one kind. ``kind`` names them in messages ("method", "task", ...);
    ``check(name, obj)`` validates an entry when loaded and raises :class:`RegistryError`;
    ``entry_point_group`` adds installed plugins; ``allow_references`` lets :meth:`get` take
    ``module:Attr`` and ``file.py:Attr`` directly."""

    def __init__(self, kind: str, check: Callable[[str, T], None] | None = None, entry_point_group: str | None = None,
                 allow_references: bool = False, hint: str = ""):
        self.kind, self.check, self.group, self.allow_references = kind, check, entry_point_group, allow_references
        self.hint = hint
        self._entries: dict[str, Entry] = {}
        self._objects: dict[str, T] = {}

    # -- registering ------------------------------------------------------------------------------------
    def add(self, name: str, obj: T | str, source: str = "built-in") -> None:
        """Register ``obj`` (or a lazy ``"module:Attr"`` string) under ``name``; a name is registered once."""
        if not name or not isinstance(name, str):
            raise ValueError(f"{self.kind} names must be non-empty strings, got {name!r}")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice ({self._entries[name].target} and "
                             f"{obj if isinstance(obj, str) else '<object>'})")
        if isinstance(obj, str):
            self._entries[name] = Entry(name, obj, source)
        else:
            if self.check is not None:
                self.check(name, obj)
            self._entries[name] = Entry(name, "<object>", source)
            self._objects[name] = obj

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""
        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj
        return deco

    # -- looking up -------------------------------------------------------------------------------------
    def _plugins(self) -> dict[str, Entry]:
        if self.group is None:
            return {}
        found = {}
        for ep in entry_points(group=self.group):
            dist = getattr(ep, "dist", None)
            source = f"entry point ({dist.name} {dist.version})" if dist is not None else "entry point"
            found[ep.name] = Entry(ep.name, ep.value, source)
        return found

    def entries(self) -> dict[str, Entry]:
        """Every entry (built-ins first, then entry points), without importing any of them."""
        out = dict(self._entries)
        for name, e in self._plugins().items():
            out.setdefault(name, e)
        return out

    def names(self) -> list[str]:
        return list(self.entries())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.entries()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.entries())

    def _load(self, name: str, target: str) -> T:
        obj = import_target(target)
        if self.check is not None:
            self.check(name, obj)
        return obj

    def get(self, name: str) -> T:
        """The entry ``name`` (imported and checked on first use); with ``allow_references`` also
        ``pkg.module:Attr`` and ``file.py:Attr``."""
        if name in self._objects:
            return self._objects[name]
        entries = self.entries()
        if name in entries:
            obj = self._load(name, entries[name].target)
            self._objects[name] = obj
            return obj
        if self.allow_references and isinstance(name, str) and ":" in name:
            return self._load(name, name)
        close = difflib.get_close_matches(str(name), list(entries), n=2)
        hint = f"; did you mean {close}?" if close else f"; choose from {sorted(entries)}"
        raise UnknownNameError(f"unknown {self.kind} {name!r}{hint}" + (f" ({self.hint})" if self.hint else ""))

    def items(self) -> Iterator[tuple[str, T]]:
        for name in self.names():
            yield name, self.get(name)
