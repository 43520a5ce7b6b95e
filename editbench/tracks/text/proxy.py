"""The text track's proxy reader: what text methods read their evidence with and call as their evaluator.

The parser scores the text track exactly; a method must not optimise against its own judge. Methods get
the parser behind a fixed error rate instead: each lamp's state (lit or unlit, the fact every request
is about) is misread with probability :data:`ERROR_RATE`, the draws seeded by the text itself, so a
description always reads the same way (like a fixed imperfect classifier, not fresh noise on every call).
The other facts are read as stated, so targets a method builds from its readings keep the room it saw;
texts that do not parse read as ``None``, as with the parser.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace

from editbench.core import seeds
from editbench.world.descriptions import Facts, parse_description

ERROR_RATE = 0.10
PROXY_SEED = seeds.TEXT_PROXY


def _rng(text: str, seed: int) -> random.Random:
    digest = hashlib.blake2b(f"{seed}:{text}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "little"))


def misread(facts: Facts, rng: random.Random, error: float) -> Facts:
    """``facts`` with each lamp's state misread with probability ``error``."""
    return replace(facts, lamps=tuple(replace(lamp, lit=not lamp.lit) if rng.random() < error else lamp
                                      for lamp in facts.lamps))


def proxy_read(texts: list[str], error: float = ERROR_RATE, seed: int = PROXY_SEED) -> list[Facts | None]:
    """The proxy's reading of a batch of descriptions (``None`` where a text does not parse)."""
    out: list[Facts | None] = []
    for text in texts:
        facts = parse_description(text)
        out.append(None if facts is None else misread(facts, _rng(text, seed), error))
    return out
