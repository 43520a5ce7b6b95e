"""Module names that moved, still importable for one minor version: ``import editbench.tasks`` gives the
module now at ``editbench.benchmarks`` (the same object) with a DeprecationWarning that names it. Packages that
moved their own modules add to :data:`MOVED` (the method registry adds ``editbench.methods.<name>``, so edits
saved by 0.3 load by the class path they recorded)."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from typing import Any

MOVED: dict[str, str] = {
    "editbench.tasks": "editbench.benchmarks",
    "editbench.tasks.scoring": "editbench.benchmarks.scoring",
    "editbench.harness.suites": "editbench.benchmarks.suites",
    "editbench.methods._train": "editbench.core.schedule",
    "editbench.metrics.image": "editbench.tracks.image.metrics",
    "editbench.metrics.text": "editbench.tracks.text.metrics",
    # 0.2's modules of the method contract (editbench.api itself is the public surface again: docs/api.md)
    "editbench.models": "editbench.tracks.image",
    "editbench.models.hooks": "editbench.core.hooks",
    "editbench.models.meter": "editbench.tracks.image.meter",
    "editbench.models.generator": "editbench.tracks.image.generator",
}


class _Moved(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports a moved name as the module it moved to."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED else None

    def create_module(self, spec: Any) -> Any:
        warnings.warn(f"{spec.name} moved to {MOVED[spec.name]}; import that instead", DeprecationWarning, stacklevel=2)
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module: Any) -> None:
        pass


def install() -> None:
    """Put the finder first, so a moved name never loads a second copy of the module it moved to."""
    if not any(isinstance(f, _Moved) for f in sys.meta_path):
        sys.meta_path.insert(0, _Moved())
