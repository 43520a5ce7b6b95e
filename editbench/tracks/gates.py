"""Model-card gates: a figure, a threshold and whether it passed (shared by every track's report)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from editbench.core.seeds import HELD_OUT

EVAL_SEED = HELD_OUT  # held-out evaluation seeds are >= this (editbench.core.seeds)


@dataclass(frozen=True)
class Gate:
    name: str
    value: float
    op: str  # ">=" or "<="
    threshold: float

    @property
    def passed(self) -> bool:
        return self.value >= self.threshold if self.op == ">=" else self.value <= self.threshold

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": round(self.value, 4), "gate": f"{self.op} {self.threshold}",
                "passed": self.passed}
