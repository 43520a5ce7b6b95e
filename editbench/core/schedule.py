"""The training schedule every gradient method shares: compute in units of evidence.

A method states its schedule in **epochs over its evidence** (``epochs``, the search tunes it on a log
scale), not in steps: at ``n`` examples and batches of ``batch_size`` it takes
``ceil(epochs * n / batch_size)`` optimiser steps, at least ``min_steps`` (so a budget of one example still
trains) and at most ``max_steps`` (the stated cap; a cell records whether it bound). Mini-batches are
drawn epoch by epoch (:func:`epoch_batches`: each epoch a fresh seeded permutation of the evidence, as
Fine-tuning Done Right in Model Editing runs finetuning), so every example is seen once per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class Schedule:
    """``steps`` optimiser steps of ``batch`` examples over ``n`` evidence examples; ``capped``: the cap bound."""

    n: int
    batch: int
    steps: int
    capped: bool

    @property
    def epochs(self) -> float:
        return self.steps * self.batch / max(self.n, 1)

    def as_dict(self) -> dict[str, float | int | bool]:
        return {"steps": self.steps, "batch": self.batch, "epochs": round(self.epochs, 3), "capped": self.capped}


def schedule(n: int, batch_size: int, epochs: float, min_steps: int, max_steps: int) -> Schedule:
    """The steps ``epochs`` epochs over ``n`` examples take, within [``min_steps``, ``max_steps``]."""
    batch = max(1, min(batch_size, n))
    want = math.ceil(epochs * n / batch) if n > 0 else 0
    steps = min(max(want, min_steps), max_steps)
    return Schedule(n, batch, steps, capped=want > max_steps)


SCHEDULE_FIELDS = ("epochs", "batch_size", "min_steps", "max_steps")  # a config stating its compute in epochs


def steps_of(config: dict[str, Any], n: int) -> tuple[Callable[[float], int], int, int] | None:
    """For a configuration that states its schedule (every field of ``SCHEDULE_FIELDS``): the optimiser steps
    ``epochs`` epochs take at ``n`` examples, and the floor and cap they are held within; None otherwise."""
    if not set(SCHEDULE_FIELDS) <= set(config):
        return None
    batch, lo, hi = int(config["batch_size"]), int(config["min_steps"]), int(config["max_steps"])
    return (lambda e: schedule(n, batch, float(e), lo, hi).steps), lo, hi


def epoch_batches(n: int, batch: int, steps: int, generator: torch.Generator) -> Iterator[Tensor]:
    """``steps`` index batches of ``batch`` examples, epoch after epoch of seeded permutations of ``range(n)``
    (a batch that straddles two epochs takes the end of one and the start of the next)."""
    buf = torch.empty(0, dtype=torch.long)
    for _ in range(steps):
        while len(buf) < batch:
            buf = torch.cat([buf, torch.randperm(n, generator=generator)])
        idx, buf = buf[:batch], buf[batch:]
        yield idx
