"""The one method registry, over the two folders that hold editbench's own methods:

* ``editbench/editors/``: the ``edit`` family (unit_clamp, spatial_clamp, neuron_clamp, steer, iti,
  rank_one, rome, memit);
* ``editbench/baselines/``: what editing is measured against: finetuning (``finetune``), prompting
  (``prompt``) and the references ``none`` and ``oracle`` (``reference``).

One file per method, defining one class and exporting it as ``METHOD``. Every such file is registered under
its name without being imported (listing methods imports none of them); files starting with ``_`` hold the
helpers methods of that folder share. A built-in method whose ``family`` contradicts its folder is refused
when it is first loaded.

Out-of-tree methods arrive through the ``editbench.methods`` entry-point group
(``name = "package.module:Class"``) or are named directly as ``pkg.module:Class`` or
``path/to/file.py:Class``. When a method is first loaded the registry checks it: a
:class:`~editbench.core.Method` subclass with a known family, evidence kind and tracks, registered under
its own ``name``.

Edits saved before the methods moved name their classes ``editbench.methods.<name>:...``; those module
names still import (:mod:`editbench._moved`), with a DeprecationWarning that gives the new one.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import pkgutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from editbench import baselines, editors
from editbench._moved import MOVED
from editbench.core import Method, MethodError, Registry, UserError
from editbench.core.method import EveryTrack, check_fits, check_method_class
from editbench.core.registry import RegistryError

ENTRY_POINT_GROUP = "editbench.methods"
FOLDERS = {editors: ("edit",), baselines: ("finetune", "prompt", "reference")}  # folder -> the families it holds


def _check(name: str, cls: Any) -> None:
    from editbench.tracks import TRACKS

    check_method_class(name, cls)
    unknown = [] if isinstance(cls.tracks, EveryTrack) else [t for t in cls.tracks if t not in TRACKS]
    if unknown:
        raise RegistryError(f"method {name!r} declares unknown track(s) {unknown}; known: {TRACKS.names()}")
    check_fits(name, cls)
    for folder, families in FOLDERS.items():
        if cls.__module__.startswith(folder.__name__ + ".") and cls.family not in families:
            raise RegistryError(f"method {name!r} in {folder.__name__} is of family {cls.family!r}; that folder holds "
                                f"{list(families)}")


METHODS: Registry[type[Method]] = Registry("method", check=_check, entry_point_group=ENTRY_POINT_GROUP,
                                           allow_references=True, hint="see 'editbench methods list'")
for _folder in FOLDERS:
    for _info in pkgutil.iter_modules(_folder.__path__):
        if not _info.name.startswith("_") and not _info.ispkg:
            METHODS.add(_info.name, f"{_folder.__name__}.{_info.name}:METHOD")
            MOVED[f"{__name__}.{_info.name}"] = f"{_folder.__name__}.{_info.name}"


def resolve(name: str) -> type[Method]:
    """A method class by registered name, ``module:Class`` or ``file.py:Class``."""
    return METHODS.get(name)


@contextmanager
def failures_reported(method: str, during: str = "", shown: str | None = None) -> Iterator[None]:
    """Inside, a failure of method ``method`` (a name or reference) that is not one of editbench's own is bad
    input: a one-line MethodError (``method '<shown>' failed<during>: ValueError: ...``). A built-in's failure
    is a bug inside editbench and keeps its traceback; a UserError passes as it is."""
    try:
        yield
    except UserError:
        raise
    except Exception as err:
        if is_builtin(method):
            raise
        raise MethodError(f"method {(shown or method)!r} failed{during}: {type(err).__name__}: {err}") from None


def method_code(name: str) -> str | None:
    """What identifies the code of a method that is not one of editbench's own, for its cells' keys (so an
    author who changes the method never gets the old results back as "already done"): a file reference's
    content hash, an installed method's distribution and version (a module outside any distribution: its
    file's hash). None for a built-in (the package version keys it) and for what cannot be found."""
    entry = METHODS.entries().get(name)
    if entry is not None and entry.source == "built-in":
        return None
    where = (entry.target if entry is not None else name).rsplit(":", 1)[0]
    path: Path | None = Path(where) if where.endswith(".py") else None
    if path is None:
        dists = importlib.metadata.packages_distributions().get(where.split(".")[0])
        if dists:
            return f"{dists[0]}=={importlib.metadata.version(dists[0])}"
        try:
            spec = importlib.util.find_spec(where)
        except (ImportError, ValueError):
            return None
        path = Path(spec.origin) if spec is not None and spec.origin and spec.origin.endswith(".py") else None
    try:
        return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path is not None else None
    except OSError:
        return None


def is_builtin(name: str) -> bool:
    """Whether ``name`` is one of editbench's own methods (its failures are bugs, not bad input)."""
    entry = METHODS.entries().get(name)
    return entry is not None and entry.source == "built-in"
