"""Descriptions: every scene in words, in a fixed grammar that states every fact the image shows, and the
exact parser that reads a description back into those facts.

A description is a sequence of sentences, each ending in ``.``::

    grey walls , a window , a red bed , at night .
    a lit table lamp on the far left . an unlit floor lamp on the right .
    the lamp on the far left lights the wall and the floor .
    the window reflects the lamp on the far left .

* the room: wall colour, window or not, bed colour, time of day;
* each lamp, left to right: lit or unlit, table or floor lamp, and its place (``far left``, ``left``,
  ``right``, ``far right``: the four lamp slots of the world, so every lamp has its own); ``no lamps .``
  in a room without one;
* the second-order light, exactly where the renderer throws it: every lit lamp lights the wall and
  the floor, and the bed when it stands within ``BED_REACH`` of the bed's edge (the renderer's pool of
  light, a Gaussian of width 0.17 at the foot of the lamp, falls on the bed for the inner slots and not
  for the outer ones); the window reflects a lit lamp when the room has one and the lamp stands within
  ``WINDOW_REACH`` of its glass (the width of the renderer's reflection falloff).

:func:`parse_description` is exact on the world's own descriptions (``parse(describe(s)) ==
facts(s)``), never raises on any text, and says when a text does not parse (``None``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .captions import VOCAB
from .config import BED_COLORS, LAMP_KINDS, WALL_COLORS
from .scene import LAMP_SLOTS, Scene, time_of_day

BED_REACH = 0.15  # horizontal distance from a lamp to the bed's edge within which its pool of light reaches the bed
WINDOW_REACH = 0.25  # horizontal distance from a lamp to the window glass within which the glass mirrors it
PLACES = ("far left", "left", "right", "far right")  # one per lamp slot, left to right
TIME_WORDS = {"night": "at night", "evening": "in the evening", "day": "during the day"}
SURFACES = ("wall", "floor", "bed")
SEP = "<sep>"
DESCRIPTION_VERSION = 1

_NEW_WORDS = ("bed", "wall", "far", "lights", "reflects", ".", "lamps", *[c for c in BED_COLORS if c not in VOCAB])
#: One fixed word-level vocabulary for captions and descriptions (the caption vocabulary first, so a
#: caption's token ids are the image track's), then the description's words and the separator.
TEXT_VOCAB: tuple[str, ...] = (*VOCAB, *[w for w in dict.fromkeys(_NEW_WORDS) if w not in VOCAB], SEP)


@dataclass(frozen=True)
class LampFacts:
    place: str  # one of PLACES
    kind: str  # table or floor
    lit: bool


@dataclass(frozen=True)
class Facts:
    """What a description states (and what a scene makes true)."""

    wall: str
    window: bool
    bed: str
    time: str  # night, evening, day
    lamps: tuple[LampFacts, ...]  # left to right
    lights: frozenset[tuple[str, str]]  # (place, surface): the lamp at place lights that surface
    reflections: frozenset[str]  # places of the lamps the window reflects

    @property
    def n_lamps(self) -> int:
        return len(self.lamps)

    @property
    def n_lit(self) -> int:
        return sum(lamp.lit for lamp in self.lamps)

    def lamp_at(self, place: str) -> LampFacts | None:
        return next((lamp for lamp in self.lamps if lamp.place == place), None)

    def consistent(self) -> bool:
        """Second-order light only from lit lamps the description states, and every lit lamp lighting
        at least the wall and the floor; reflections only with a window."""
        lit = {lamp.place for lamp in self.lamps if lamp.lit}
        sources = {p for p, _ in self.lights}
        if not sources <= lit or not self.reflections <= lit or (self.reflections and not self.window):
            return False
        return all((p, "wall") in self.lights and (p, "floor") in self.lights for p in lit)


def _place(x: float) -> str:
    return PLACES[min(range(len(LAMP_SLOTS)), key=lambda k: abs(LAMP_SLOTS[k] - x))]


def scene_facts(scene: Scene) -> list[Facts]:
    """The facts of every scene of a batch, as the renderer makes them true."""
    walls, beds = tuple(WALL_COLORS), tuple(BED_COLORS)
    out = []
    present, on, kind, xs = (scene.lamp_present.tolist(), scene.lamp_on.tolist(), scene.lamp_kind.tolist(),
                             scene.lamp_x.tolist())
    bed_x, bed_w, window, box = scene.bed_x.tolist(), scene.bed_w.tolist(), scene.window.tolist(), scene.window_box.tolist()
    wall, bed, ambient = scene.wall.tolist(), scene.bed.tolist(), scene.ambient.tolist()
    for i in range(len(scene)):
        lamps, lights, reflections = [], set(), set()
        for j in range(len(present[i])):
            if not present[i][j]:
                continue
            x, place = xs[i][j], _place(xs[i][j])
            lamps.append(LampFacts(place, LAMP_KINDS[int(kind[i][j])], bool(on[i][j])))
            if not on[i][j]:
                continue
            lights |= {(place, "wall"), (place, "floor")}
            if abs(x - bed_x[i]) - bed_w[i] / 2 < BED_REACH:
                lights.add((place, "bed"))
            if window[i]:
                x0, x1 = box[i][0] + 0.02, box[i][2] - 0.02
                if abs(x - min(max(x, x0), x1)) < WINDOW_REACH:
                    reflections.add(place)
        out.append(Facts(walls[wall[i]], bool(window[i]), beds[bed[i]], time_of_day(ambient[i]), tuple(lamps),
                         frozenset(lights), frozenset(reflections)))
    return out


def render_facts(f: Facts) -> str:
    """The description that states ``f`` (the grammar of the module docstring)."""
    words = [f"{f.wall} walls , {'a window' if f.window else 'no window'} , a {f.bed} bed , {TIME_WORDS[f.time]} ."]
    if not f.lamps:
        words.append("no lamps .")
    for lamp in f.lamps:
        words.append(f"{'a lit' if lamp.lit else 'an unlit'} {lamp.kind} lamp on the {lamp.place} .")
    for lamp in f.lamps:
        lit = [s for s in SURFACES if (lamp.place, s) in f.lights]
        if lit:
            listed = " and ".join(f"the {s}" for s in lit) if len(lit) <= 2 else \
                f"the {lit[0]} , the {lit[1]} and the {lit[2]}"
            words.append(f"the lamp on the {lamp.place} lights {listed} .")
    for lamp in f.lamps:
        if lamp.place in f.reflections:
            words.append(f"the window reflects the lamp on the {lamp.place} .")
    return " ".join(words)


def sentences(description: str) -> list[str]:
    """A description's sentences, each with its full stop (each states one fact of the grammar)."""
    return [s.strip() + " ." for s in description.split(" .") if s.strip()]


def describe(scene: Scene) -> list[str]:
    """The description of every scene of a batch."""
    return [render_facts(f) for f in scene_facts(scene)]


# ---- the parser -----------------------------------------------------------------------------------------
_WALLS, _BEDS = frozenset(WALL_COLORS), frozenset(BED_COLORS)
_TIMES = {tuple(v.split()): k for k, v in TIME_WORDS.items()}
_KINDS = frozenset(LAMP_KINDS)
_PLACE_OF = {tuple(p.split()): p for p in PLACES}
_ORDER = {p: k for k, p in enumerate(PLACES)}


def _place_at(tokens: list[str], i: int) -> tuple[str | None, int]:
    """The place named at ``tokens[i:]`` and the index after it."""
    if tokens[i:i + 2] == ["far", "left"] or tokens[i:i + 2] == ["far", "right"]:
        return f"far {tokens[i + 1]}", i + 2
    if i < len(tokens) and tokens[i] in ("left", "right"):
        return tokens[i], i + 1
    return None, i


def _room(s: list[str]) -> tuple[str, bool, str, str] | None:
    # <wall> walls , (a window | no window) , a <bed> bed , <time words>
    if len(s) < 10 or s[0] not in _WALLS or s[1:3] != ["walls", ","] or s[5] != ",":
        return None
    if s[3:5] == ["a", "window"]:
        window = True
    elif s[3:5] == ["no", "window"]:
        window = False
    else:
        return None
    if s[6] != "a" or s[7] not in _BEDS or s[8:10] != ["bed", ","]:
        return None
    time = _TIMES.get(tuple(s[10:]))
    return None if time is None else (s[0], window, s[7], time)


def _lamp(s: list[str]) -> LampFacts | None:
    # (a lit | an unlit) <kind> lamp on the <place>
    if len(s) < 7 or (s[0], s[1]) not in (("a", "lit"), ("an", "unlit")) or s[2] not in _KINDS or s[3:6] != ["lamp", "on", "the"]:
        return None
    place, end = _place_at(s, 6)
    return LampFacts(place, s[2], s[1] == "lit") if place is not None and end == len(s) else None


def _lights(s: list[str]) -> tuple[str, list[str]] | None:
    # the lamp on the <place> lights the <s1> [and the <s2> | , the <s2> and the <s3>]
    if s[:4] != ["the", "lamp", "on", "the"]:
        return None
    place, i = _place_at(s, 4)
    if place is None or i >= len(s) or s[i] != "lights":
        return None
    rest = s[i + 1:]
    n = len(rest)
    if n == 2:
        pairs = [rest]
    elif n == 5 and rest[2] == "and":
        pairs = [rest[0:2], rest[3:5]]
    elif n == 8 and rest[2] == "," and rest[5] == "and":
        pairs = [rest[0:2], rest[3:5], rest[6:8]]
    else:
        return None
    if any(p[0] != "the" or p[1] not in SURFACES for p in pairs):
        return None
    surfaces = [p[1] for p in pairs]
    if [SURFACES.index(x) for x in surfaces] != sorted({SURFACES.index(x) for x in surfaces}):
        return None  # each surface once, in the order wall, floor, bed
    return place, surfaces


def _reflects(s: list[str]) -> str | None:
    # the window reflects the lamp on the <place>
    if s[:7] != ["the", "window", "reflects", "the", "lamp", "on", "the"]:
        return None
    place, end = _place_at(s, 7)
    return place if place is not None and end == len(s) else None


def parse_description(text: str | list[str]) -> Facts | None:
    """The facts a description states, or ``None`` where it does not follow the grammar (any text
    at all: never raises). Accepts the words as a string or a list."""
    tokens = text.split() if isinstance(text, str) else list(text)
    if not tokens or tokens[-1] != ".":
        return None
    sentences, start = [], 0
    for i, t in enumerate(tokens):
        if t == ".":
            sentences.append(tokens[start:i])
            start = i + 1
    room = _room(sentences[0])
    if room is None or len(sentences) < 2:
        return None
    k = 1
    lamps: list[LampFacts] = []
    if sentences[1] == ["no", "lamps"]:
        k = 2
    else:
        while k < len(sentences):
            lamp = _lamp(sentences[k])
            if lamp is None:
                break
            lamps.append(lamp)
            k += 1
        if not lamps:
            return None
    places = [lamp.place for lamp in lamps]
    if len(set(places)) != len(places) or [_ORDER[p] for p in places] != sorted(_ORDER[p] for p in places):
        return None  # lamps are named left to right, one per place
    lights: set[tuple[str, str]] = set()
    last = -1
    while k < len(sentences):
        parsed = _lights(sentences[k])
        if parsed is None:
            break
        place, surfaces = parsed
        if place not in places or _ORDER[place] <= last:
            return None
        last = _ORDER[place]
        lights |= {(place, s) for s in surfaces}
        k += 1
    reflections: set[str] = set()
    last = -1
    while k < len(sentences):
        place = _reflects(sentences[k])
        if place is None or place not in places or _ORDER[place] <= last:
            return None
        last = _ORDER[place]
        reflections.add(place)
        k += 1
    if k != len(sentences):
        return None
    wall, window, bed, time = room
    return Facts(wall, window, bed, time, tuple(lamps), frozenset(lights), frozenset(reflections))
