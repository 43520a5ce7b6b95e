"""Measured distribution of a world: what ``editbench world stats`` prints."""

from __future__ import annotations

import re
from typing import Any

import torch

from . import World
from .captions import COUNT_WORDS, TIME_PHRASES
from .config import WALL_COLORS
from .scene import sample_scenes, time_of_day

_COUNT = re.compile(r"\b(" + "|".join(COUNT_WORDS) + r") lamps?\b")


def world_stats(world: World, n: int, seed: int = 0) -> dict[str, Any]:
    """Lamps per room, share lit, lamp kinds, ambient levels and caption mention rates over ``n``
    sampled scenes (scenes and captions only; nothing is rendered)."""
    scene = sample_scenes(world.config, n, seed)
    captions, mentioned = world.captions(scene, seed)
    mentioned_t = torch.from_numpy(mentioned)
    present, lit = scene.lamp_present, scene.lamp_lit
    unlit = present & ~scene.lamp_on
    n_lamps = scene.n_lamps
    times = [time_of_day(a) for a in scene.ambient.tolist()]
    walls = [tuple(WALL_COLORS)[i] for i in scene.wall.tolist()]

    def share(mask: torch.Tensor) -> float:
        return round(float(mask.float().mean()), 4) if mask.numel() else float("nan")

    return {
        "n_scenes": n,
        "seed": seed,
        "lamps_per_room": {str(k): share(n_lamps == k) for k in range(4)},
        "mean_lamps": round(float(n_lamps.float().mean()), 4),
        "n_lamps_total": int(present.sum()),
        "share_lit": share(scene.lamp_on[present]),
        "share_floor_lamps": share(scene.lamp_kind[present] == 1),
        "rooms_all_lamps_unlit": share((n_lamps > 0) & (lit.sum(1) == 0)),
        "rooms_with_window": share(scene.window),
        "ambient": {
            "mean": round(float(scene.ambient.mean()), 4),
            "min": round(float(scene.ambient.min()), 4),
            "max": round(float(scene.ambient.max()), 4),
            **{t: round(times.count(t) / max(n, 1), 4) for t in ("night", "evening", "day")},
        },
        "wall_colors": {c: round(walls.count(c) / max(n, 1), 4) for c in world.config.wall_colors},
        "caption_rates": {
            "lit_lamp_mentioned": share(mentioned_t[lit]),
            "unlit_lamp_mentioned": share(mentioned_t[unlit]),
            "configured_lit": world.config.mention_lit,
            "configured_unlit": world.config.mention_unlit,
            "wall_color": round(sum(" walls" in c for c in captions) / max(n, 1), 4),
            "time_of_day": round(sum(any(p in c for p in TIME_PHRASES.values()) for c in captions) / max(n, 1), 4),
            "lamp_count": round(sum(bool(_COUNT.search(c)) for c in captions) / max(n, 1), 4),
            "no_lamp_words": round(sum("lamp" not in c for c in captions) / max(n, 1), 4),
        },
    }


def format_stats(stats: dict[str, Any]) -> str:
    """Indented plain-text rendering of :func:`world_stats`."""
    lines = []

    def walk(d: dict[str, Any], indent: int) -> None:
        for k, v in d.items():
            if isinstance(v, dict):
                lines.append(" " * indent + f"{k}:")
                walk(v, indent + 2)
            else:
                lines.append(" " * indent + f"{k:<24}{v}")

    walk(stats, 0)
    return "\n".join(lines)
