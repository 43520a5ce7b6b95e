"""Tracks: one modality of the benchmark each (``image``: a generator and a lamp meter; ``text``: a lamp LM
and an exact parser), behind one interface.

A :class:`Track` knows its models and its reader. The harness, the tasks and the leaderboard talk to a
track only through this interface, so adding a track is adding a folder ``tracks/<name>/`` whose
``track.py`` exports its class as ``TRACK`` (registered under the folder's name without being imported; an
out-of-tree track arrives through the ``editbench.tracks`` entry-point group):

* ``load(checkpoints)``: the models (the one methods edit, and its reader), from checkpoint folders or
  the shipped ones; ``checkpoint_hashes`` and ``provenance`` for result files;
* ``readers``: who reads outputs: the ``judge``, whose readings every score comes from, and the
  ``proxy``, which labels methods' evidence and answers their evaluator calls (a method never sees the
  judge); ``evaluators``: evaluators of graded quality, ``proxy`` first (``evaluator(models, name)``);
* ``build_evidence(kind, ...)``: evidence of each kind within a budget (``samples``, ``targets``,
  ``captions``, ``none``), labelled by the chosen evaluator, with a counted evaluator;
* ``inputs(...)`` and ``pair(...)``: paired outputs: the unedited and the edited model sampled with
  the same randomness (the same latent, or for text the same sampling noise), as read by each reader
  (``{reader: pair}``, the outputs shared);
* ``oracle_pair(...)``: the world's own answer (the renderer with the request applied): the oracle is a
  capability of the track;
* ``hook_points(models)``: the layers editors may hook, with the axis holding their units;
* ``collateral(session, edit)``: scores of the edited model outside the task (optional).
"""

from __future__ import annotations

import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from typing import Any, ClassVar

from editbench.core import Budget, Edit, Evidence, HookPoint, Registry
from editbench.core.registry import RegistryError


class Track(ABC):
    """The interface every track implements (see the module docstring)."""

    name: ClassVar[str]
    checkpoint_kinds: ClassVar[tuple[str, ...]]  # checkpoint folders a run may override, e.g. generator, meter
    edited: ClassVar[str]  # which of the loaded models methods edit
    readers: ClassVar[tuple[str, ...]] = ("judge", "proxy")  # the scores' reader first
    evaluators: ClassVar[tuple[str, ...]] = ("proxy",)  # evaluators of graded quality, the default first
    outputs: ClassVar[str] = "outputs"  # what its model produces, in the tables' words ("images", "descriptions")
    label: ClassVar[str] = ""  # how the tables name the track in a sentence ("leads in images"); default: its name

    @abstractmethod
    def load(self, checkpoints: dict[str, str | None], device: str = "cpu") -> dict[str, Any]:
        """The track's models by kind, from ``checkpoints`` (None: the shipped one)."""

    @abstractmethod
    def checkpoint_hashes(self, checkpoints: dict[str, str | None]) -> dict[str, str]:
        """A hash per checkpoint, for cell keys and provenance."""

    def provenance(self, checkpoints: dict[str, str | None]) -> dict[str, Any]:
        """Track facts every result records (e.g. the reader's accuracy)."""
        return {}

    @abstractmethod
    def request(self, name: str) -> Any:
        """The edit request a task names (e.g. ``lamps_off``)."""

    @abstractmethod
    def evaluator(self, models: dict[str, Any], name: str) -> Any:
        """The reader behind evaluator ``name`` (one of ``evaluators``; a MethodError otherwise)."""

    @abstractmethod
    def build_evidence(self, kind: str, models: dict[str, Any], request: Any, budget: Budget, world: Any,
                       uses_evaluator: bool, evaluator_name: str = "proxy") -> Evidence:
        """Exactly ``budget.n`` examples of ``kind`` from ``world`` (seeded by ``budget.seed``), read and
        evaluated by evaluator ``evaluator_name``."""

    @abstractmethod
    def inputs(self, models: dict[str, Any], world: Any, n: int, seed: int, noise_scale: float, key: Hashable) -> Any:
        """n paired inputs from ``world``: prompts, their world truth and the sampling noise drawn up
        front. ``key`` names them for the session's cache of unedited outputs."""

    @abstractmethod
    def pair(self, session: Any, edit: Edit, request: Any, inputs: Any) -> dict[str, Any]:
        """The model's outputs on ``inputs`` unedited and with ``edit``, as read by each of ``readers``."""

    @abstractmethod
    def oracle_pair(self, session: Any, request: Any, inputs: Any) -> dict[str, Any]:
        """The world's outputs for ``inputs`` as they are and with ``request`` applied, as read by each reader."""

    @abstractmethod
    def hook_points(self, models: dict[str, Any]) -> dict[str, HookPoint]:
        """The edited model's hook points."""

    @abstractmethod
    def effect(self, pair: Any) -> float:
        """How much of what the request removes is gone, as the reader measures it (0: nothing, 1:
        all); the direction check every method gets."""

    @abstractmethod
    def pictures(self, pair: Any, k: int) -> dict[str, Any]:
        """The first ``k`` inputs and outputs before and after: ``captions``, ``before``, ``after``; images
        (B, 3, H, W) become a before/after strip, texts are kept in the result."""

    def reader_floor(self, checkpoints: dict[str, str | None]) -> float | None:
        """How much a score read by the judge may be off for the reader's own sake (a half-width every interval
        keeps at least); None where it is not known (e.g. checkpoints without a card)."""
        return None

    def example_pass(self, models: dict[str, Any], world: Any) -> Callable[[], Any] | None:
        """A callable passing one typical example of ``world`` through the edited model (forward only), from
        which the harness counts the FLOPs of one pass; None where the track does not say."""
        return None

    def evaluator_quality(self, name: str) -> float:
        """Evaluator ``name``'s quality: its per-lamp on/off accuracy against the world's truth (NaN where the
        track does not know it); the trust study's x axis."""
        return float("nan")

    def collateral(self, session: Any, edit: Edit) -> dict[str, Any] | None:
        """What ``edit`` does to what it should leave alone, measured outside the task (for text: lm-eval's
        ``lamp_facts`` and ``lamp_perplexity``, edited and unedited); None where the track has no such measure."""
        return None


def _check_track(name: str, obj: Any) -> None:
    if not (isinstance(obj, type) and issubclass(obj, Track)):
        raise RegistryError(f"track {name!r} is not a subclass of editbench.tracks.Track")
    if obj.name != name:
        raise RegistryError(f"track registered as {name!r} is named {obj.name!r}")


TRACKS: Registry[type[Track]] = Registry("track", check=_check_track, entry_point_group="editbench.tracks")
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda i: (i.name != "image", i.name)):  # image first
    if _info.ispkg:  # a track is a folder whose track.py exports TRACK
        TRACKS.add(_info.name, f"{__name__}.{_info.name}.track:TRACK")

_INSTANCES: dict[str, Track] = {}


def get_track(name: str) -> Track:
    """The track registered as ``name`` (one instance per process; tracks hold no state)."""
    if name not in _INSTANCES:
        _INSTANCES[name] = TRACKS.get(name)()
    return _INSTANCES[name]


