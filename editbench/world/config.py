"""World configuration: every knob of the lamp world, recorded with every dataset it produces."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from editbench.core.errors import UserError

# Palettes: name -> linear-space albedo (R, G, B). Names are what captions say.
WALL_COLORS: dict[str, tuple[float, float, float]] = {
    "white": (0.84, 0.84, 0.81),
    "beige": (0.80, 0.71, 0.56),
    "blue": (0.42, 0.56, 0.80),
    "green": (0.46, 0.66, 0.46),
    "grey": (0.55, 0.55, 0.57),
    "pink": (0.86, 0.58, 0.64),
    "yellow": (0.86, 0.79, 0.42),
}
FLOOR_COLORS: dict[str, tuple[float, float, float]] = {
    "wooden": (0.52, 0.34, 0.19),
    "dark": (0.24, 0.19, 0.17),
    "grey": (0.40, 0.40, 0.43),
}
BED_COLORS: dict[str, tuple[float, float, float]] = {
    "white": (0.88, 0.88, 0.86),
    "blue": (0.25, 0.35, 0.70),
    "red": (0.70, 0.18, 0.18),
    "green": (0.22, 0.50, 0.28),
    "grey": (0.48, 0.48, 0.50),
}
SHADE_COLORS: dict[str, tuple[float, float, float]] = {
    "white": (0.92, 0.90, 0.85),
    "cream": (0.90, 0.80, 0.55),
    "red": (0.78, 0.22, 0.18),
    "green": (0.30, 0.62, 0.32),
    "blue": (0.28, 0.40, 0.80),
}
LAMP_KINDS: tuple[str, ...] = ("table", "floor")
TIMES_OF_DAY: tuple[str, ...] = ("night", "evening", "day")

class ConfigError(UserError, ValueError):
    """A world config that cannot be used; the message says which field and why."""


@dataclass(frozen=True)
class WorldConfig:
    """All parameters of the lamp world.

    Sampling: ``lamp_count_probs[k]`` is the probability of a room with ``k`` lamps (k = 0..3);
    ``p_lamp_on`` the chance each lamp is lit; ``ambient_range`` bounds the ambient level
    (0.2 = night, 1.0 = full day); ``wall_colors`` restricts the palette (slices for transfer tasks).

    Captions: each lit lamp is mentioned with probability ``mention_lit``, each unlit lamp with
    ``mention_unlit`` (the bias of the story: unlit lamps are seldom captioned); the wall colour,
    time of day, lamp count and window with their own rates; a mentioned lamp gets its side
    ("on the left") with ``mention_side``.
    """

    size: int = 64
    max_lamps: int = 3
    lamp_count_probs: tuple[float, ...] = (0.10, 0.35, 0.35, 0.20)
    p_lamp_on: float = 0.65
    p_floor_lamp: float = 0.5
    p_window: float = 0.5
    ambient_range: tuple[float, float] = (0.2, 1.0)
    intensity_range: tuple[float, float] = (0.6, 1.0)
    wall_colors: tuple[str, ...] = tuple(WALL_COLORS)
    mention_lit: float = 0.60
    mention_unlit: float = 0.03
    mention_wall: float = 0.40
    mention_time: float = 0.40
    mention_count: float = 0.25
    mention_window: float = 0.30
    mention_side: float = 0.50
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"world config field {name!r} = {getattr(self, name)!r}: {why}")

        if not isinstance(self.size, int) or self.size < 16 or self.size % 8:
            raise bad("size", "must be an integer >= 16 and a multiple of 8")
        if self.max_lamps != 3:
            raise bad("max_lamps", "the renderer places at most 3 lamps; use 3")
        probs = tuple(float(p) for p in self.lamp_count_probs)
        if len(probs) != self.max_lamps + 1 or any(p < 0 for p in probs) or abs(sum(probs) - 1) > 1e-6:
            raise bad("lamp_count_probs", f"need {self.max_lamps + 1} non-negative numbers summing to 1")
        object.__setattr__(self, "lamp_count_probs", probs)
        for name in (
            "p_lamp_on", "p_floor_lamp", "p_window", "mention_lit", "mention_unlit", "mention_wall",
            "mention_time", "mention_count", "mention_window", "mention_side",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise bad(name, "must be a probability in [0, 1]")
        for name, (lo_ok, hi_ok) in (("ambient_range", (0.05, 1.5)), ("intensity_range", (0.05, 2.0))):
            rng = tuple(float(v) for v in getattr(self, name))
            if len(rng) != 2 or not lo_ok <= rng[0] <= rng[1] <= hi_ok:
                raise bad(name, f"need (low, high) with {lo_ok} <= low <= high <= {hi_ok}")
            object.__setattr__(self, name, rng)
        colors = tuple(self.wall_colors)
        unknown = [c for c in colors if c not in WALL_COLORS]
        if not colors or unknown:
            raise bad("wall_colors", f"unknown or empty; choose from {sorted(WALL_COLORS)}")
        object.__setattr__(self, "wall_colors", colors)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("extra")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorldConfig:
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown world config field(s) {unknown}; known: {sorted(known)}")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kwargs)

    def replace(self, **changes: Any) -> WorldConfig:
        return self.from_dict({**self.to_dict(), **changes})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)
