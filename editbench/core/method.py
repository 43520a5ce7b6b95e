"""The method contract: one interface for editing, finetuning and prompting, on any track.

A :class:`Method` gets the model, the task's edit request (a track-defined object: for the lamp world
:class:`editbench.world.requests.EditRequest`), :class:`Evidence` of the kind it declares bounded by a
:class:`Budget`, and returns an :class:`~editbench.core.edit.Edit`. Every method declares its
``family``, the evidence it ``consumes``, whether it ``uses_evaluator`` and the ``tracks`` it supports;
the registry reads these from the class and never restates them.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from torch import Tensor, nn

from .edit import Edit
from .errors import MethodError

Family = Literal["edit", "finetune", "prompt", "reference"]
EvidenceKind = Literal["samples", "targets", "captions", "none"]
FAMILIES: tuple[str, ...] = ("edit", "finetune", "prompt", "reference")
EVIDENCE_KINDS: tuple[str, ...] = ("samples", "targets", "captions", "none")


@dataclass(frozen=True)
class Budget:
    """``n`` examples of the method's evidence kind; ``evaluator_calls`` evaluator calls (outputs read)."""

    n: int
    evaluator_calls: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 0 or self.evaluator_calls < 0:
            raise MethodError(f"budget must be non-negative, got n={self.n}, evaluator_calls={self.evaluator_calls}")


class Evaluator:
    """A reader behind a counter: every output read costs one call; reading past the budget raises.

    ``read(outputs)`` returns the track's reading; ``differentiable(outputs)`` (where the track offers
    it) the reader's raw outputs with gradients, for methods that optimise against it."""

    def __init__(self, read: Callable[[Any], Any], limit: int, differentiable: Callable[[Any], Any] | None = None):
        self._read, self._differentiable, self.limit, self.calls = read, differentiable, limit, 0

    def _spend(self, n: int) -> None:
        if self.calls + n > self.limit:
            raise MethodError(f"evaluator budget exceeded: {self.calls} + {n} > {self.limit} calls")
        self.calls += n

    @property
    def remaining(self) -> int:
        return self.limit - self.calls

    def __call__(self, outputs: Tensor) -> Any:
        self._spend(len(outputs))
        return self._read(outputs)

    def differentiable(self, outputs: Tensor) -> Any:
        if self._differentiable is None:
            raise MethodError("this track's evaluator has no differentiable form")
        self._spend(len(outputs))
        return self._differentiable(outputs)


@dataclass
class Evidence:
    """What the harness hands a method: exactly its declared kind and budget.

    * ``samples``: ``captions``, the model's ``outputs`` for them with sampling ``noise`` (latents for
      images, sampling noise for text), and ``readings`` of those outputs by the evaluator the cell names
      (the track's proxy by default; never the judge that scores the method);
    * ``targets``: ``captions``, the world's ``outputs`` for n scenes, ``targets`` (the same scenes with
      the request applied: what the model should produce) and the ``scenes``;
    * ``captions``: ``captions`` only; ``none``: nothing.

    ``evaluator`` is a counted reader, the same evaluator (None when the method uses none or the budget
    allows no calls);
    ``track`` names the track that built the evidence (a method working on several tracks fits by it).
    """

    kind: EvidenceKind
    captions: list[str] = field(default_factory=list)
    noise: Tensor | None = None
    outputs: Any = None
    readings: Any = None
    targets: Any = None
    scenes: Any = None
    evaluator: Evaluator | None = None
    track: str = ""

    @property
    def n(self) -> int:
        return len(self.captions)

    @property
    def z(self) -> Tensor | None:
        """Deprecated (0.2's name for the image latents): ``noise``."""
        warnings.warn("Evidence.z is now Evidence.noise (the sampling noise of any track)", DeprecationWarning,
                      stacklevel=2)
        return self.noise

    @property
    def images(self) -> Any:
        """Deprecated (0.2's name for the image outputs): ``outputs``."""
        warnings.warn("Evidence.images is now Evidence.outputs (the outputs of any track)", DeprecationWarning,
                      stacklevel=2)
        return self.outputs

    def need(self, kind: str = "samples") -> None:
        """Raise a MethodError unless the evidence holds what ``kind`` gives (``samples``: outputs and their
        readings; ``targets``: target outputs)."""
        if kind == "samples" and (self.outputs is None or self.readings is None):
            raise MethodError("this method needs evidence of kind 'samples' (the model's outputs and their readings)")
        if kind == "targets" and self.targets is None:
            raise MethodError("this method needs evidence of kind 'targets' (the outputs the model should give)")


class EveryTrack(tuple):
    """``tracks`` of a method that works on every track, those added later included (the references ``none``
    and ``oracle``, which ask nothing of a model the track interface does not give): contains every track
    name, lists as ``*``."""

    def __new__(cls) -> EveryTrack:
        return super().__new__(cls, ("*",))

    def __contains__(self, track: object) -> bool:
        return isinstance(track, str)


EVERY_TRACK = EveryTrack()


@dataclass
class MethodConfig:
    """Base of every method's typed config; subclasses add fields with defaults."""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Method:
    """Base class of every method. Subclasses set the class attributes and implement :meth:`fit`, or one
    ``fit_<track>`` per track they declare (``fit_image``, ``fit_text``: the contract calls the evidence's).

    ``consumes``: the evidence kind it needs; ``uses_evaluator``: whether it spends evaluator calls;
    ``tracks``: the tracks it works on; ``search_space``: config field -> dimension (:mod:`.search`: a range on a
    log scale for a rate or a count, or options), searched with the same number of trials for every method;
    ``version``: part of every cell's key, raised when a change moves the method's results (a results folder
    then recomputes its cells instead of skipping them); ``track_versions``: a track's own version where a change
    moved that track's results alone (:meth:`version_on`). A method on several tracks may give per track the config
    defaults that differ from ``Config``'s (``track_configs``) and its own search space
    (``search_spaces``); an instance made for a track (``Method(config, track="text")``, or fitted on
    that track's evidence) takes them, fields given explicitly winning.
    """

    name: ClassVar[str] = ""
    family: ClassVar[Family] = "edit"
    consumes: ClassVar[EvidenceKind] = "samples"
    uses_evaluator: ClassVar[bool] = False
    tracks: ClassVar[tuple[str, ...]] = ("image",)
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    version: ClassVar[str] = "1"
    track_versions: ClassVar[dict[str, str]] = {}
    search_space: ClassVar[dict[str, Any]] = {}
    track_configs: ClassVar[dict[str, dict[str, Any]]] = {}
    search_spaces: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, config: MethodConfig | dict[str, Any] | None = None, track: str | None = None):
        self.track = track
        self._given: dict[str, Any] | None = None
        if isinstance(config, dict) or config is None:
            self._given = dict(config or {})
            known = {f.name for f in dataclasses.fields(self.Config)}
            unknown = sorted(set(self._given) - known)
            if unknown:
                raise MethodError(f"method {self.name!r}: unknown config field(s) {unknown}; known: {sorted(known)}")
            config = self._make_config(track)
        self.config = config

    def _make_config(self, track: str | None) -> MethodConfig:
        try:
            return self.Config(**{**self.track_configs.get(track or "", {}), **(self._given or {})})
        except (TypeError, ValueError) as e:
            raise MethodError(f"method {self.name!r}: bad config: {e}") from None

    @classmethod
    def version_on(cls, track: str | None) -> str:
        """The version the cells of ``track`` are keyed by: its entry in ``track_versions``, else ``version``."""
        return str(cls.track_versions.get(track or "", cls.version))

    @classmethod
    def space(cls, track: str | None = None) -> dict[str, Any]:
        """The search space tuning draws from on ``track``."""
        return cls.search_spaces.get(track or "", cls.search_space)

    def fit(self, model: nn.Module, request: Any, evidence: Evidence, budget: Budget) -> Edit:
        """Fit on the evidence's track. A method that reaches every track the same way (through the track's own
        hooks, e.g. :meth:`editbench.tracks.Track.finetune`) overrides ``fit``; one whose tracks differ in how it
        reaches the model writes ``fit_<track>`` for each, which this default calls."""
        return self.on_track("fit", evidence.track)(model, request, evidence, budget)

    def on_track(self, stem: str, track: str) -> Callable[..., Any]:
        """The method's ``<stem>_<track>`` (its per-track variant of ``stem``); a MethodError where it has none."""
        fn = getattr(self, f"{stem}_{track}", None)
        if not callable(fn):
            raise MethodError(f"method {self.name!r} has no {stem}_{track}: it does not say how it works on track "
                              f"{track!r}")
        return fn

    def run(self, model: nn.Module, request: Any, evidence: Evidence, budget: Budget) -> Edit:
        """``fit`` with the harness's checks: timing, cost bookkeeping, finite tensors, budget kept."""
        if evidence.track and evidence.track not in self.tracks:
            raise MethodError(f"method {self.name!r} supports tracks {list(self.tracks)}, not {evidence.track!r}")
        if evidence.track and self.track is None and self._given is not None:
            self.track, self.config = evidence.track, self._make_config(evidence.track)
        t0 = time.perf_counter()
        edit = self.fit(model, request, evidence, budget)
        if not isinstance(edit, Edit):
            raise MethodError(f"method {self.name!r} returned {type(edit).__name__}, not an Edit")
        edit.check_finite()
        cost = edit.cost()
        cost.fit_seconds = time.perf_counter() - t0
        cost.evaluator_calls = evidence.evaluator.calls if evidence.evaluator else 0
        if cost.examples_used > budget.n:
            raise MethodError(f"method {self.name!r} used {cost.examples_used} examples, budget {budget.n}")
        return edit


def check_method_class(name: str, cls: Any) -> None:
    """What the registry checks of a method class when it is loaded."""
    from .registry import RegistryError

    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise RegistryError(f"method {name!r} is not a subclass of editbench.core.Method")
    if cls.family not in FAMILIES:
        raise RegistryError(f"method {name!r} declares family {cls.family!r}; choose from {list(FAMILIES)}")
    if cls.consumes not in EVIDENCE_KINDS:
        raise RegistryError(f"method {name!r} consumes {cls.consumes!r}; choose from {list(EVIDENCE_KINDS)}")
    if not cls.tracks or not all(isinstance(t, str) for t in cls.tracks):
        raise RegistryError(f"method {name!r} declares no tracks; set tracks = ('image',) or similar")
    if not cls.name:
        raise RegistryError(f"method {name!r} has no name; set the class attribute name")
    if ":" not in name and cls.name != name:
        raise RegistryError(f"method registered as {name!r} is named {cls.name!r}; register it under its name")


def check_fits(name: str, cls: type[Method]) -> None:
    """A method that keeps the contract's ``fit`` has a ``fit_<track>`` for every track it declares by name."""
    from .registry import RegistryError

    if cls.fit is Method.fit and isinstance(cls.tracks, tuple) and not isinstance(cls.tracks, EveryTrack):
        missing = [t for t in cls.tracks if not callable(getattr(cls, f"fit_{t}", None))]
        if missing:
            raise RegistryError(f"method {name!r} declares tracks {missing} but has no fit_<track> for them (and "
                                "does not override fit)")
