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
  (``{reader: pair}``, the outputs shared; a :class:`Readings` reads each only when it is looked up);
* ``oracle_pair(...)``: the world's own answer (the renderer with the request applied): the oracle is a
  capability of the track;
* ``hook_points(models)``: the layers editors may hook, with the axis holding their units;
* ``metrics()``: its implementation of each score part and measure it scores (``tracks/<name>/metrics.py``);
  the benchmarks' task specs it poses are data too (``tasks``: task -> its own fields);
* ``finetune(model, params, evidence, config, seed, cost)``: how finetuning reaches its model (optional;
  methods declaring ``tracks = Offering("finetune")`` run on every track that has it);
* ``collateral(session, edit)``: scores of the edited model outside the task (optional).
"""

from __future__ import annotations

import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

from editbench.core import Budget, Edit, Evidence, HookPoint, Registry
from editbench.core.registry import RegistryError


class Readings(Mapping[str, Any]):
    """``{reader: pair}`` whose pairs are read on first lookup: a score that needs the judge alone (every
    tuning trial's dev score) never runs the other readers, and gets the same judge readings."""

    def __init__(self, readers: Sequence[str], read: Callable[[str], Any]):
        self._readers, self._read, self._done = tuple(readers), read, {}

    def __getitem__(self, reader: str) -> Any:
        if reader not in self._readers:
            raise KeyError(reader)
        if reader not in self._done:
            self._done[reader] = self._read(reader)
        return self._done[reader]

    def __iter__(self) -> Iterator[str]:
        return iter(self._readers)

    def __len__(self) -> int:
        return len(self._readers)


class Track(ABC):
    """The interface every track implements (see the module docstring)."""

    name: ClassVar[str]
    checkpoint_kinds: ClassVar[tuple[str, ...]]  # checkpoint folders a run may override, e.g. generator, meter
    edited: ClassVar[str]  # which of the loaded models methods edit
    readers: ClassVar[tuple[str, ...]] = ("judge", "proxy")  # the scores' reader first
    evaluators: ClassVar[tuple[str, ...]] = ("proxy",)  # evaluators of graded quality, the default first
    outputs: ClassVar[str] = "outputs"  # what its model produces, in the tables' words ("images", "descriptions")
    label: ClassVar[str] = ""  # how the tables name the track in a sentence ("leads in images"); default: its name

    # the benchmark tasks the track poses beyond the task files' (benchmarks/<task>.py): task -> its fields
    # (version, parts, description; request, evidence and slices where the task files do not give them)
    tasks: ClassVar[dict[str, dict[str, Any]]] = {}
    # metrics the track defines beyond those of :mod:`editbench.metrics`: name -> (kind, direction, description)
    metric_definitions: ClassVar[dict[str, tuple[str, int, str]]] = {}

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
    def metrics(self) -> dict[str, Callable[[Any], Any]]:
        """The track's implementation of each metric it scores (score parts: a pair -> per-output scores in [0, 1],
        NaN where a part does not apply; measures: a pair -> one number), by metric name."""

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

    def finetune(self, model: Any, params: list[Any], evidence: Evidence, config: Any, seed: int, cost: Any
                 ) -> dict[str, Any]:
        """How finetuning reaches the track's model: train ``params`` of ``model`` (a copy the method owns) with the
        model's own objective on the evidence's captions and ``targets`` for ``config.epochs`` epochs of seeded
        mini-batches (the track reads ``epochs``, ``lr``, ``batch_size``, ``min_steps`` and ``max_steps`` of the
        method's ``config``, and any field its objective has), adding the compute to ``cost``; returns the schedule
        and the last losses. Optional: a track without it offers no finetuning on its model's own objective."""
        raise NotImplementedError(f"track {self.name!r} offers no finetuning")

    def step_cost(self, config: dict[str, Any]) -> float:
        """How long one training step under ``config`` takes against one of the plain objective (1.0): the cost
        estimate's price of a searched option that trains more per step (the image GAN's discriminator)."""
        return 1.0

    @classmethod
    def offers(cls, hook: str) -> bool:
        """Whether the track implements the optional ``hook`` (e.g. ``finetune``)."""
        return getattr(cls, hook, None) is not getattr(Track, hook, None)

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


class Offering(Sequence):
    """``tracks`` of a method that works on every track offering ``hook`` (``Offering("finetune")``: those whose
    class implements :meth:`Track.finetune`), those added later included; resolved from the registry when read."""

    def __init__(self, hook: str):
        self.hook = hook

    def _names(self) -> tuple[str, ...]:
        return tuple(n for n in TRACKS.names() if TRACKS.get(n).offers(self.hook))

    def __getitem__(self, i):  # noqa: ANN001 - Sequence's signature
        return self._names()[i]

    def __len__(self) -> int:
        return len(self._names())

    def __contains__(self, track: object) -> bool:
        return isinstance(track, str) and track in TRACKS and TRACKS.get(track).offers(self.hook)

    def __repr__(self) -> str:
        return f"Offering({self.hook!r})"


_INSTANCES: dict[str, Track] = {}


def get_track(name: str) -> Track:
    """The track registered as ``name`` (one instance per process; tracks hold no state)."""
    if name not in _INSTANCES:
        _INSTANCES[name] = TRACKS.get(name)()
    return _INSTANCES[name]


