"""Suites as data: the grid shape and evaluation sizes a named suite runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from editbench.core import Registry


@dataclass(frozen=True)
class Suite:
    name: str
    budgets: tuple[int, ...]
    seeds: tuple[int, ...]
    n_eval: int  # test outputs per slice
    n_dev: int  # dev outputs per slice (tuning)
    tune: int  # configurations tried per (task, method); 1: defaults only
    n_boot: int
    tune_at: tuple[int, int] | None = None  # (budget, seed) of the tuning cell
    evaluators: tuple[str, ...] = ("proxy",)  # evaluator grades the evaluator-calling methods also run under
    more_seeds: dict[int, tuple[int, ...]] = field(default_factory=dict)  # extra seeds of a budget (the headline's)
    description: str = ""

    def more_seeds_for(self, seeds: list[int] | None) -> dict[int, tuple[int, ...]]:
        """The extra seeds per budget a run of this suite adds: none where seeds are given (they replace the
        suite's, its extra seeds included)."""
        return {} if seeds else self.more_seeds

    def cell_kwargs(self) -> dict[str, Any]:
        return {"n_eval": self.n_eval, "n_dev": self.n_dev, "n_boot": self.n_boot}


SUITES: Registry[Suite] = Registry("suite")
SUITES.add("quick", Suite("quick", (16,), (0,), n_eval=32, n_dev=16, tune=1, n_boot=300,
                          description="every task x every method at n = 16, one seed, default configs (CI)"))
SUITES.add("full", Suite("full", (1, 4, 16, 64, 256), (0, 1, 2), n_eval=32, n_dev=16, tune=4, n_boot=1000,
                         tune_at=(16, 0), evaluators=("proxy", "weak", "noisy"), more_seeds={16: tuple(range(3, 10))},
                         description="budgets 1-256 x 3 seeds (10 at the headline budget, n = 16), every method tuned "
                                     "once per task; the methods that call an evaluator also under the weak and the noisy "
                                     "one"))
