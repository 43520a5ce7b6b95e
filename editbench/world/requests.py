"""Edit requests of the lamp world: which lamps must go off, and which lamp slots those are.

:func:`target_slots` is the one place that turns a request into lamp slots. It serves the ground truth
(a :class:`~editbench.world.scene.Scene`'s lamps) and anything that reads lamps off an output (a lamp
meter's slots, a parsed description), since both say which slots hold a lamp, how many there are and
where each one stands (slots are ordered left to right).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from torch import Tensor

from editbench.core.errors import UnknownNameError

from .scene import LAMP_SLOTS, Scene

if TYPE_CHECKING:
    from .descriptions import Facts

Target = Literal["all", "leftmost", "rightmost", "region"]


def target_slots(target: Target, present: Tensor, x: Tensor, region: tuple[float, float] | None = None) -> Tensor:
    """(B, S) bool: the slots a request targets, given ``present`` (B, S) bool (slots holding a lamp,
    filled left to right) and ``x`` (B, S) their horizontal positions in [0, 1].

    ``all``: every lamp; ``leftmost`` / ``rightmost``: the first / last lamp; ``region``: the lamps whose
    centre lies in ``region`` = (x0, x1)."""
    if target == "all":
        return present.clone()
    if target in ("leftmost", "rightmost"):
        n = present.sum(1)
        idx = torch.zeros_like(n) if target == "leftmost" else (n - 1).clamp_min(0)
        return torch.nn.functional.one_hot(idx.long(), present.shape[1]).bool() & present
    if target == "region":
        x0, x1 = region or (0.0, 1.0)
        return present & (x >= x0) & (x <= x1)
    raise ValueError(f"unknown request target {target!r}")


@dataclass(frozen=True)
class EditRequest:
    """What must change.

    ``target``: ``"all"`` lamps, or one lamp by position: ``"leftmost"``, ``"rightmost"``, or
    ``"region"`` (the lamps whose centre lies in ``region`` = (x0, x1), fractions of the width).
    ``second_order``: whether the light the lamps throw on the room must go too (it always does in
    the world; the flag says whether the task scores it).
    """

    target: Target = "all"
    region: tuple[float, float] | None = None
    second_order: bool = False

    NAMES: ClassVar[dict[str, dict[str, Any]]] = {
        "lamps_off": {"target": "all"},
        "leftmost_off": {"target": "leftmost"},
        "rightmost_off": {"target": "rightmost"},
        "lamps_off_second_order": {"target": "all", "second_order": True},
    }

    @classmethod
    def named(cls, name: str) -> EditRequest:
        if name not in cls.NAMES:
            raise UnknownNameError(f"unknown edit request {name!r}; choose from {sorted(cls.NAMES)}")
        return cls(**cls.NAMES[name])

    @property
    def name(self) -> str:
        for k, v in self.NAMES.items():
            if EditRequest(**v) == self:
                return k
        return f"region_off_{self.region}"

    def slots(self, present: Tensor, x: Tensor) -> Tensor:
        """(B, S) bool: the targeted slots among ``present`` lamps at positions ``x``."""
        return target_slots(self.target, present, x, self.region)

    def target_lamps(self, scene: Scene) -> Tensor:
        """(B, 3) bool: the lamps of ``scene`` this request switches off."""
        return self.slots(scene.lamp_present, scene.lamp_x)

    def apply(self, scene: Scene) -> Scene:
        """The requested scene: the target lamps switched off, nothing else changed."""
        return scene.replace(lamp_on=scene.lamp_on & ~self.target_lamps(scene))

    def target_places(self, facts: Facts) -> set[str]:
        """The places of the lamps a description states that this request switches off."""
        from .descriptions import PLACES

        if not facts.lamps:
            return set()
        x = torch.tensor([[LAMP_SLOTS[PLACES.index(lamp.place)] for lamp in facts.lamps]])
        hit = self.slots(torch.ones_like(x, dtype=torch.bool), x)[0].tolist()
        return {lamp.place for lamp, h in zip(facts.lamps, hit, strict=True) if h}

    def apply_facts(self, facts: Facts) -> Facts:
        """The requested description's facts: the target lamps stated unlit and the light they threw (on
        the room and in the window) gone, nothing else changed (what :meth:`apply` does to a scene)."""
        off = self.target_places(facts)
        lamps = tuple(replace(lamp, lit=False) if lamp.place in off else lamp for lamp in facts.lamps)
        return replace(facts, lamps=lamps, lights=frozenset(ls for ls in facts.lights if ls[0] not in off),
                       reflections=frozenset(p for p in facts.reflections if p not in off))

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "region": list(self.region) if self.region else None,
                "second_order": self.second_order}
