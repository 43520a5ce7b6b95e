"""Captions of scenes, with the bias of the story, and the fixed caption tokenizer.

A caption is ``"a bedroom"`` followed by optional clauses joined by commas and "and"::

    a bedroom with blue walls , a window , two lamps and a lit floor lamp on the left at night

Each lit lamp is mentioned with probability ``mention_lit`` and each unlit lamp with
``mention_unlit`` (rarely: captions of rooms with unlit lamps seldom say so). The wall colour, the
window, the lamp count and the time of day appear with their own rates. All rates live in
:class:`~editbench.world.config.WorldConfig` and are recorded with every dataset.

The tokenizer is a word-level ``tokenizers.Tokenizer`` over the fixed vocabulary :data:`VOCAB`
(every word any caption can contain), so token ids never change between versions unless the
vocabulary's version does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .config import LAMP_KINDS, WALL_COLORS, WorldConfig
from .scene import Scene, time_of_day

COUNT_WORDS = ("no", "one", "two", "three")
TIME_PHRASES = {"night": "at night", "evening": "in the evening", "day": "during the day"}
PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
VOCAB_VERSION = 1
_WORDS = (
    "a an the bedroom with and , walls window lamp lamps lit unlit glowing dark on off left right"
    " middle at in during night evening day table floor room no one two three"
).split()
VOCAB: tuple[str, ...] = (PAD, UNK, BOS, EOS, *_WORDS, *[c for c in WALL_COLORS if c not in _WORDS])
MAX_TOKENS = 48


def _side(x: float) -> str:
    return "left" if x < 0.4 else ("right" if x > 0.6 else "middle")


def lamp_phrase(kind: str, on: bool, side: str | None) -> str:
    """The words that mention one lamp, e.g. ``"an unlit table lamp on the left"``."""
    state = "lit" if on else "unlit"
    words = f"{'a' if on else 'an'} {state} {kind} lamp"
    return words + (f" on the {side}" if side else "")


def make_captions(scene: Scene, config: WorldConfig, seed: int) -> tuple[list[str], np.ndarray]:
    """Captions for a batch of scenes, and a (B, 3) bool array of which lamps each one mentions.

    Draws come from their own stream (``seed``), taken for every scene and lamp in a fixed order.
    """
    B, L = scene.lamp_present.shape
    rng = np.random.default_rng([int(seed), 0xCA])
    r_lamp = rng.random((B, L))
    r_side = rng.random((B, L))
    r_wall, r_window, r_count, r_time = rng.random((4, B))

    present = scene.lamp_present.numpy()
    on = scene.lamp_on.numpy()
    kind = scene.lamp_kind.numpy()
    xs = scene.lamp_x.numpy()
    rate = np.where(on, config.mention_lit, config.mention_unlit)
    mentioned = present & (r_lamp < rate)
    walls = [tuple(WALL_COLORS)[i] for i in scene.wall.tolist()]
    n_lamps = present.sum(1)

    captions = []
    for i in range(B):
        parts = []
        if r_wall[i] < config.mention_wall:
            parts.append(f"{walls[i]} walls")
        if bool(scene.window[i]) and r_window[i] < config.mention_window:
            parts.append("a window")
        if r_count[i] < config.mention_count:
            k = int(n_lamps[i])
            parts.append(f"{COUNT_WORDS[k]} {'lamp' if k == 1 else 'lamps'}")
        for j in range(L):
            if mentioned[i, j]:
                side = _side(float(xs[i, j])) if r_side[i, j] < config.mention_side else None
                parts.append(lamp_phrase(LAMP_KINDS[int(kind[i, j])], bool(on[i, j]), side))
        text = "a bedroom"
        if parts:
            text += " with " + (parts[0] if len(parts) == 1 else " , ".join(parts[:-1]) + " and " + parts[-1])
        if r_time[i] < config.mention_time:
            text += " " + TIME_PHRASES[time_of_day(float(scene.ambient[i]))]
        captions.append(text)
    return captions, mentioned


class CaptionTokenizer:
    """Word-level tokenizer over :data:`VOCAB` (a ``tokenizers`` WordLevel model).

    ``encode`` returns ``(ids, mask)``: (B, max_len) long ids, padded with 0, with ``<bos>``/``<eos>``
    around each caption, and a (B, max_len) bool mask of real tokens. Unknown words map to ``<unk>``;
    captions longer than ``max_len`` are truncated (and keep ``<eos>``).
    """

    def __init__(self, max_len: int = MAX_TOKENS):
        from tokenizers import Tokenizer, pre_tokenizers
        from tokenizers.models import WordLevel

        self.vocab = {w: i for i, w in enumerate(VOCAB)}
        tok = Tokenizer(WordLevel(self.vocab, unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        self._tok = tok
        self.max_len = max_len
        self.pad_id, self.unk_id = self.vocab[PAD], self.vocab[UNK]
        self.bos_id, self.eos_id = self.vocab[BOS], self.vocab[EOS]

    def __len__(self) -> int:
        return len(self.vocab)

    @property
    def version(self) -> int:
        return VOCAB_VERSION

    def tokenize(self, caption: str) -> list[str]:
        return self._tok.encode(caption.lower().replace(",", " , ")).tokens

    def encode(self, captions: list[str]) -> tuple[Tensor, Tensor]:
        ids = torch.full((len(captions), self.max_len), self.pad_id, dtype=torch.long)
        encs = self._tok.encode_batch([c.lower().replace(",", " , ") for c in captions])
        for i, enc in enumerate(encs):
            seq = [self.bos_id, *enc.ids[: self.max_len - 2], self.eos_id]
            ids[i, : len(seq)] = torch.tensor(seq)
        return ids, ids != self.pad_id

    def decode(self, ids: Tensor) -> list[str]:
        words = VOCAB
        out = []
        for row in ids.tolist():
            toks = [words[t] for t in row if t not in (self.pad_id, self.bos_id, self.eos_id)]
            out.append(" ".join(toks))
        return out


_TIME_BY_PHRASE = {v: k for k, v in TIME_PHRASES.items()}
_COUNT_RE = re.compile(r"\b(" + "|".join(COUNT_WORDS) + r") lamps?\b")
_LAMP_RE = re.compile(r"\b(?:a|an) (lit|unlit) (" + "|".join(LAMP_KINDS) + r") lamp(?: on the (left|right|middle))?")
_WALL_RE = re.compile(r"\b(" + "|".join(WALL_COLORS) + r") walls\b")


@dataclass(frozen=True)
class CaptionFacts:
    """What a caption states (``None`` where it is silent)."""

    count: int | None
    time: str | None
    wall: str | None
    window: bool
    lamps: tuple[tuple[str, bool, str | None], ...]  # (kind, lit, side) of each mentioned lamp

    @property
    def n_lit(self) -> int:
        return sum(lit for _, lit, _ in self.lamps)

    @property
    def n_unlit(self) -> int:
        return sum(not lit for _, lit, _ in self.lamps)

    @property
    def mentions_lamps(self) -> bool:
        return self.count is not None or bool(self.lamps)


def parse_caption(caption: str) -> CaptionFacts:
    """Read back the facts a caption of this grammar states (lamp count, time, wall, lamps)."""
    text = caption.lower()
    count = _COUNT_RE.search(text)
    wall = _WALL_RE.search(text)
    time = next((t for phrase, t in _TIME_BY_PHRASE.items() if phrase in text), None)
    lamps = tuple((kind, state == "lit", side) for state, kind, side in _LAMP_RE.findall(text))
    lamps = tuple((k, lit, side or None) for k, lit, side in lamps)
    return CaptionFacts(
        count=COUNT_WORDS.index(count.group(1)) if count else None, time=time,
        wall=wall.group(1) if wall else None, window="a window" in text, lamps=lamps,
    )


_CLAUSE_SPLIT = re.compile(r" , | and ")


def rewrite_lamp_clause(caption: str, clause: str) -> str:
    """The caption with every lamp mention (lamp phrases and the lamp count) replaced by ``clause``.

    The room the caption asks for (walls, window, time of day) is kept::

        rewrite_lamp_clause("a bedroom with blue walls and a lit table lamp at night", "an unlit table lamp")
        -> "a bedroom with blue walls and an unlit table lamp at night"
    """
    text = caption.strip()
    time = next((p for p in TIME_PHRASES.values() if text.endswith(" " + p)), None)
    if time:
        text = text[: -len(time) - 1]
    head, _, body = text.partition(" with ")
    parts = [p for p in _CLAUSE_SPLIT.split(body) if p] if body else []
    keep = [p for p in parts if "lamp" not in p]
    if clause:
        keep.append(clause)
    out = head
    if keep:
        out += " with " + (keep[0] if len(keep) == 1 else " , ".join(keep[:-1]) + " and " + keep[-1])
    return out + (" " + time if time else "")


def rewrite_captions(captions: list[str], prompt: dict | None) -> list[str]:
    """Captions as a prompt edit rewrites them (its ``clause`` replaces the lamp clause); unchanged without one."""
    if not prompt:
        return list(captions)
    return [rewrite_lamp_clause(c, prompt["clause"]) for c in captions]
