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
    tune: int  # search trials per (task, method, tuned budget), the same for every method; 1: defaults only
    n_boot: int
    tune_budgets: tuple[int, ...] = ()  # budgets tuned at (empty: every budget); the others use the nearest
    tune_seed: int = 100  # the seed tuning cells fit on: never one the suite scores
    regret: dict[int, int] = field(default_factory=dict)  # budget -> how many times larger the regret search is
    warm: dict[int, int] = field(default_factory=dict)  # budget -> the tuned budget whose best its search tries first
    grow: int = 0  # times a search still climbing in its last third of trials goes on to twice its trials
    evaluators: tuple[str, ...] = ("proxy",)  # evaluator grades the evaluator-calling methods also run under
    evaluator_budgets: tuple[int, ...] = ()  # the budgets they run under the other evaluators at (empty: every one)
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
SUITES.add("full", Suite("full", (1, 4, 16, 64, 256), (0, 1, 2), n_eval=32, n_dev=48, tune=8, n_boot=1000,
                         tune_budgets=(1, 16, 256), tune_seed=100, regret={1: 3, 16: 3}, warm={256: 16}, grow=1,
                         evaluators=("proxy", "weak", "noisy"), evaluator_budgets=(16,),
                         more_seeds={16: tuple(range(3, 10))},
                         description="budgets 1-256 x 3 seeds (10 at the headline budget, n = 16); every method searched "
                                     "with 8 trials per task at n = 1, 16 and 256 on seed 100 (never scored), the other "
                                     "budgets taking the nearest; the regret search 3x larger at n = 1 and 16, whose best the "
                                     "scored cells use; a search still climbing in its last third of trials going on to twice "
                                     "its trials, once; the search at n = 256 starting from n = 16's best; the methods that "
                                     "call an evaluator also under the weak and the noisy one at n = 16 (the budget "
                                     "the evaluator table reads)"))
