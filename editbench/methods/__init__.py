"""Methods, one file each: ``editbench/methods/<name>.py`` defines one class and exports it as
``METHOD``. Every file here is registered under its name without being imported (listing methods
imports none of them); files starting with ``_`` hold the few helpers methods share.

Out-of-tree methods arrive through the ``editbench.methods`` entry-point group
(``name = "package.module:Class"``) or are named directly as ``pkg.module:Class`` or
``path/to/file.py:Class``. When a method is first loaded the registry checks it: a
:class:`~editbench.core.Method` subclass with a known family, evidence kind and tracks, registered under
its own ``name``.
"""

from __future__ import annotations

import pkgutil
from typing import Any

from editbench.core import Method, Registry
from editbench.core.method import check_method_class
from editbench.core.registry import RegistryError

ENTRY_POINT_GROUP = "editbench.methods"


def _check(name: str, cls: Any) -> None:
    from editbench.tracks import TRACKS

    check_method_class(name, cls)
    unknown = [t for t in cls.tracks if t not in TRACKS]
    if unknown:
        raise RegistryError(f"method {name!r} declares unknown track(s) {unknown}; known: {TRACKS.names()}")


METHODS: Registry[type[Method]] = Registry("method", check=_check, entry_point_group=ENTRY_POINT_GROUP,
                                           allow_references=True, hint="see 'editbench methods list'")
for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        METHODS.add(_info.name, f"{__name__}.{_info.name}:METHOD")


def resolve(name: str) -> type[Method]:
    """A method class by registered name, ``module:Class`` or ``file.py:Class``."""
    return METHODS.get(name)



def is_builtin(name: str) -> bool:
    """Whether ``name`` is one of editbench's own methods (its failures are bugs, not bad input)."""
    entry = METHODS.entries().get(name)
    return entry is not None and entry.source == "built-in"
