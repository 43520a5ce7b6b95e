"""Scene records and seeded, vectorised scene sampling.

A batch of scenes is a struct of tensors (:class:`Scene`); every field has the batch as its first
dimension and lamp fields have ``(batch, lamps)`` with ``lamps = 3``. Present lamps come first and
are sorted left to right, so lamp 0 is always the leftmost; absent slots have ``lamp_present`` False.
Coordinates are fractions of the image: ``x`` from the left edge, ``y`` from the top edge.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .config import BED_COLORS, FLOOR_COLORS, LAMP_KINDS, SHADE_COLORS, WALL_COLORS, WorldConfig

WALL_NAMES = tuple(WALL_COLORS)
FLOOR_NAMES = tuple(FLOOR_COLORS)
BED_NAMES = tuple(BED_COLORS)
SHADE_NAMES = tuple(SHADE_COLORS)

# Horizontal slots a lamp may stand in (the bed stands between the middle two), jittered.
LAMP_SLOTS = (0.10, 0.30, 0.70, 0.90)
SLOT_JITTER = 0.035
FLOOR_LAMP, TABLE_LAMP = LAMP_KINDS.index("floor"), LAMP_KINDS.index("table")


def time_of_day(ambient: float) -> str:
    """Name of the time of day for an ambient level (what captions and stats say)."""
    if ambient < 0.45:
        return "night"
    if ambient < 0.70:
        return "evening"
    return "day"


@dataclass(frozen=True)
class Scene:
    """A batch of scenes.

    Room: ``wall``/``floor``/``bed`` (B,) palette indices and their jittered albedos ``*_rgb`` (B, 3);
    ``horizon`` (B,) where wall meets floor; ``bed_x``, ``bed_w`` (B,); ``window`` (B,) bool with
    ``window_box`` (B, 4) = x0, y0, x1, y1; ``ambient`` (B,) in [0.2, 1] (night..day).
    Lamps, (B, 3) each: ``lamp_present``, ``lamp_kind`` (0 table, 1 floor), ``lamp_x`` (centre),
    ``lamp_y`` (bottom of the shade), ``lamp_size`` (shade bottom width), ``lamp_shade`` (palette
    index), ``lamp_on``, ``lamp_intensity``.
    """

    wall: Tensor
    wall_rgb: Tensor
    floor: Tensor
    floor_rgb: Tensor
    bed: Tensor
    bed_rgb: Tensor
    bed_x: Tensor
    bed_w: Tensor
    horizon: Tensor
    window: Tensor
    window_box: Tensor
    ambient: Tensor
    lamp_present: Tensor
    lamp_kind: Tensor
    lamp_x: Tensor
    lamp_y: Tensor
    lamp_size: Tensor
    lamp_shade: Tensor
    lamp_on: Tensor
    lamp_intensity: Tensor

    # -- container protocol -------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.ambient.shape[0])

    def __getitem__(self, index: Any) -> Scene:
        """Select scenes with an int, slice, index tensor or boolean mask (keeps the batch dim)."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return Scene(**{f: getattr(self, f)[index] for f in self.field_names()})

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def to(self, device: torch.device | str) -> Scene:
        return Scene(**{f: getattr(self, f).to(device) for f in self.field_names()})

    def replace(self, **changes: Tensor) -> Scene:
        return dataclasses.replace(self, **changes)

    @classmethod
    def cat(cls, scenes: list[Scene]) -> Scene:
        return cls(**{f: torch.cat([getattr(s, f) for s in scenes]) for f in cls.field_names()})

    def to_tensors(self) -> dict[str, Tensor]:
        """Plain dict of contiguous tensors (bools as uint8), e.g. for safetensors."""
        out = {}
        for f in self.field_names():
            t = getattr(self, f)
            out[f"scene.{f}"] = (t.to(torch.uint8) if t.dtype == torch.bool else t).contiguous()
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor]) -> Scene:
        kwargs = {}
        for f in cls.field_names():
            t = tensors[f"scene.{f}"]
            kwargs[f] = t.bool() if f in ("window", "lamp_present", "lamp_on") else t
        return cls(**kwargs)

    # -- derived quantities ---------------------------------------------------------------------
    @property
    def n_lamps(self) -> Tensor:
        """(B,) number of lamps in each room."""
        return self.lamp_present.sum(1)

    @property
    def lamp_lit(self) -> Tensor:
        """(B, 3) lamps that are present and on."""
        return self.lamp_present & self.lamp_on

    def switch(self, on: Tensor | bool) -> Scene:
        """The same scenes with lamps switched: ``on`` is a bool or a (B, 3) bool mask of new states.

        Only ``lamp_on`` changes, so the re-rendered room is identical except for the light.
        """
        if isinstance(on, bool):
            new = torch.full_like(self.lamp_on, on)
        else:
            new = on.to(torch.bool).expand_as(self.lamp_on).clone()
        return self.replace(lamp_on=new & self.lamp_present)

    def all_off(self) -> Scene:
        return self.switch(False)

    def switch_off(self, lamp: int | Tensor) -> Scene:
        """Switch off lamp ``lamp`` (an int, or a (B,) tensor of per-scene lamp indices)."""
        idx = torch.as_tensor(lamp, device=self.lamp_on.device).expand(len(self))
        mask = torch.nn.functional.one_hot(idx.long(), self.lamp_on.shape[1]).bool()
        return self.replace(lamp_on=self.lamp_on & ~mask)

    def records(self) -> list[dict[str, Any]]:
        """Human-readable per-scene dicts (for display, JSON, and captions)."""
        out = []
        for i in range(len(self)):
            lamps = []
            for j in range(self.lamp_present.shape[1]):
                if not bool(self.lamp_present[i, j]):
                    continue
                lamps.append({
                    "kind": LAMP_KINDS[int(self.lamp_kind[i, j])],
                    "x": round(float(self.lamp_x[i, j]), 4),
                    "y": round(float(self.lamp_y[i, j]), 4),
                    "size": round(float(self.lamp_size[i, j]), 4),
                    "shade": SHADE_NAMES[int(self.lamp_shade[i, j])],
                    "on": bool(self.lamp_on[i, j]),
                    "intensity": round(float(self.lamp_intensity[i, j]), 4),
                })
            amb = float(self.ambient[i])
            out.append({
                "wall": WALL_NAMES[int(self.wall[i])],
                "floor": FLOOR_NAMES[int(self.floor[i])],
                "bed": BED_NAMES[int(self.bed[i])],
                "window": bool(self.window[i]),
                "ambient": round(amb, 4),
                "time": time_of_day(amb),
                "lamps": lamps,
            })
        return out


def _uniform(g: torch.Generator, shape: tuple[int, ...], lo: float, hi: float) -> Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=g)


def _jittered(g: torch.Generator, palette: Tensor, idx: Tensor, amount: float) -> Tensor:
    rgb = palette[idx] + _uniform(g, (*idx.shape, 3), -amount, amount)
    return rgb.clamp(0.02, 0.98)


def sample_scenes(config: WorldConfig, n: int, seed: int) -> Scene:
    """Sample ``n`` scenes; the same ``(config, n, seed)`` always gives the same scenes.

    Every random draw is taken for every scene in a fixed order, so scene ``i`` of a batch depends
    only on the seed and the batch size, never on the values drawn for other fields.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    g = torch.Generator().manual_seed(int(seed))
    L = config.max_lamps

    wall_choices = torch.tensor([WALL_NAMES.index(c) for c in config.wall_colors])
    wall = wall_choices[torch.randint(len(wall_choices), (n,), generator=g)]
    floor = torch.randint(len(FLOOR_NAMES), (n,), generator=g)
    bed = torch.randint(len(BED_NAMES), (n,), generator=g)
    wall_rgb = _jittered(g, torch.tensor(list(WALL_COLORS.values())), wall, 0.03)
    floor_rgb = _jittered(g, torch.tensor(list(FLOOR_COLORS.values())), floor, 0.03)
    bed_rgb = _jittered(g, torch.tensor(list(BED_COLORS.values())), bed, 0.03)
    horizon = _uniform(g, (n,), 0.58, 0.66)
    bed_x = _uniform(g, (n,), 0.46, 0.54)
    bed_w = _uniform(g, (n,), 0.26, 0.34)

    window = torch.rand(n, generator=g) < config.p_window
    wx = _uniform(g, (n,), 0.22, 0.78)
    ww = _uniform(g, (n,), 0.16, 0.24)
    wy0 = _uniform(g, (n,), 0.09, 0.16)
    wh = _uniform(g, (n,), 0.18, 0.25)
    window_box = torch.stack([wx - ww / 2, wy0, wx + ww / 2, torch.minimum(wy0 + wh, horizon - 0.12)], 1)

    lo, hi = config.ambient_range
    ambient = _uniform(g, (n,), lo, hi)

    probs = torch.tensor(config.lamp_count_probs, dtype=torch.float64)
    n_lamps = torch.multinomial(probs, n, replacement=True, generator=g) if n else torch.zeros(0, dtype=torch.long)
    slot_perm = torch.rand(n, len(LAMP_SLOTS), generator=g).argsort(1)[:, :L]
    lamp_x = torch.tensor(LAMP_SLOTS)[slot_perm] + _uniform(g, (n, L), -SLOT_JITTER, SLOT_JITTER)
    lamp_kind = torch.where(torch.rand(n, L, generator=g) < config.p_floor_lamp, FLOOR_LAMP, TABLE_LAMP)
    lamp_size = _uniform(g, (n, L), 0.085, 0.11)
    lamp_shade = torch.randint(len(SHADE_NAMES), (n, L), generator=g)
    lamp_on = torch.rand(n, L, generator=g) < config.p_lamp_on
    ilo, ihi = config.intensity_range
    lamp_intensity = _uniform(g, (n, L), ilo, ihi)
    # Shade bottom: floor lamps stand tall, table lamps sit on a nightstand.
    floor_line = horizon[:, None] + 0.06
    tall = floor_line - _uniform(g, (n, L), 0.36, 0.44)
    short = floor_line - 0.13 - _uniform(g, (n, L), 0.06, 0.09)
    lamp_y = torch.where(lamp_kind == FLOOR_LAMP, tall, short)

    present = torch.arange(L)[None, :] < n_lamps[:, None]
    # Present lamps first, sorted left to right.
    order = torch.where(present, lamp_x, lamp_x + 10.0).argsort(1)

    def take(t: Tensor) -> Tensor:
        return t.gather(1, order)

    return Scene(
        wall=wall, wall_rgb=wall_rgb, floor=floor, floor_rgb=floor_rgb, bed=bed, bed_rgb=bed_rgb,
        bed_x=bed_x, bed_w=bed_w, horizon=horizon, window=window, window_box=window_box,
        ambient=ambient, lamp_present=take(present), lamp_kind=take(lamp_kind), lamp_x=take(lamp_x),
        lamp_y=take(lamp_y), lamp_size=take(lamp_size), lamp_shade=take(lamp_shade),
        lamp_on=take(lamp_on) & take(present), lamp_intensity=take(lamp_intensity),
    )


EXTRA_LAMP_X = (0.20, 0.50, 0.80)  # where a room beyond the world's support gets its extra lamps (jittered)


def beyond_support(scene: Scene, seed: int, p_extra: float, lamps: int = 5) -> Scene:
    """``scene`` with ``lamps`` lamp columns, where a share ``p_extra`` of the rooms get one or two lamps
    more than the world ever places (at most ``lamps``): what a generator sometimes draws and a judge must
    be able to count. Extra lamps stand at :data:`EXTRA_LAMP_X` (jittered) where no lamp is within 0.07,
    drawn like the world's own (kind, size, shade, state with probability 0.65 on, intensity 0.6-1.0);
    present lamps come first, left to right, as in :func:`sample_scenes`."""
    B, L = scene.lamp_present.shape
    if lamps < L:
        raise ValueError(f"lamps must be at least the scene's {L}, got {lamps}")
    g = torch.Generator().manual_seed(int(seed))
    pad = lamps - L

    def padded(t: Tensor, fill: Tensor) -> Tensor:
        return torch.cat([t, fill.to(t.dtype).expand(B, pad)], 1)

    present = padded(scene.lamp_present, torch.tensor(False))
    x = padded(scene.lamp_x, torch.tensor(10.0))
    fields = {f: padded(getattr(scene, f), torch.tensor(0)) for f in
              ("lamp_kind", "lamp_y", "lamp_size", "lamp_shade", "lamp_on", "lamp_intensity")}
    wanted = (torch.rand(B, generator=g) < p_extra).long() * torch.randint(1, 3, (B,), generator=g)
    cand = torch.tensor(EXTRA_LAMP_X)[None] + _uniform(g, (B, len(EXTRA_LAMP_X)), -0.04, 0.04)
    kind = torch.where(torch.rand(B, len(EXTRA_LAMP_X), generator=g) < 0.5, FLOOR_LAMP, TABLE_LAMP)
    size = _uniform(g, (B, len(EXTRA_LAMP_X)), 0.085, 0.11)
    shade = torch.randint(len(SHADE_NAMES), (B, len(EXTRA_LAMP_X)), generator=g)
    on = torch.rand(B, len(EXTRA_LAMP_X), generator=g) < 0.65
    intensity = _uniform(g, (B, len(EXTRA_LAMP_X)), 0.6, 1.0)
    floor_line = scene.horizon[:, None] + 0.06
    tall = floor_line - _uniform(g, (B, len(EXTRA_LAMP_X)), 0.36, 0.44)
    short = floor_line - 0.13 - _uniform(g, (B, len(EXTRA_LAMP_X)), 0.06, 0.09)
    y = torch.where(kind == FLOOR_LAMP, tall, short)
    for b in range(B):
        for k in range(len(EXTRA_LAMP_X)):
            n = int(present[b].sum())
            if wanted[b] == 0 or n >= lamps:
                break
            if ((x[b][present[b]] - cand[b, k]).abs() < 0.07).any():
                continue
            present[b, n], x[b, n] = True, cand[b, k]
            for f, v in (("lamp_kind", kind), ("lamp_y", y), ("lamp_size", size), ("lamp_shade", shade),
                         ("lamp_on", on), ("lamp_intensity", intensity)):
                fields[f][b, n] = v[b, k]
            wanted[b] -= 1
    order = torch.where(present, x, x + 10.0).argsort(1)
    take = {f: t.gather(1, order) for f, t in {"lamp_present": present, "lamp_x": x, **fields}.items()}
    take["lamp_on"] = take["lamp_on"].bool() & take["lamp_present"]
    return scene.replace(**take)
