"""Trust: how far the proxy a method optimises drifts from the judge that scores it, and where the
evaluator's quality decides between editing and finetuning (DESIGN section 10).

Two parts, both ordinary cells of the harness (same key, store, executors and scoring path as the suites;
every cell scored by the judge with the proxy's reading and the gap beside it):

* **over-optimisation**: ``finetune_reward`` on each track's ``unlit_lamps`` with a growing evaluator budget
  (e.g. 128 to 8,192 calls), its step limit lifted so that the calls are what runs out (the curve of Gao et
  al. 2022 in this world: the proxy's score against the judge's);
* **evaluator quality**: every method of those tasks under each evaluator of graded quality
  (:attr:`editbench.tracks.Track.evaluators`: proxy, weak, noisy). The evaluator labels a method's evidence
  and answers its evaluator calls, so methods that read evidence (every editing method here) or call an
  evaluator (reward finetuning, prompt search) run once per evaluator; the others (targets finetuning, none,
  the oracle) see no reader and run once.

The tables and plots are built from the cells by :mod:`editbench.leaderboard.trust`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from editbench.benchmarks import get_task
from editbench.harness import Cell, ExecutorSpec, run_grid
from editbench.harness.grid import reads_evaluator, supports
from editbench.methods import METHODS, is_builtin
from editbench.tracks import get_track

# the over-optimisation cells' config: images spend all of finetune_reward's evaluator budget, so the budget is what
# ends training; text spends its whole budget anyway (two rounds of rejection sampling, stated so the cells are
# told apart from the quality axis's default-config cells)
UNCAPPED = {"image": {"call_share": 1.0}, "text": {"rounds": 2}}


@dataclass(frozen=True)
class TrustGrid:
    """The tasks (one per track), evidence budget and seeds; the evaluator budgets of the over-optimisation
    curve; the evaluators of the quality axis; and the cells' evaluation sizes."""

    tasks: tuple[str, ...]
    budget: int
    seeds: tuple[int, ...]
    calls: tuple[int, ...]
    evaluators: tuple[str, ...]
    methods: tuple[str, ...] | None = None  # the quality axis's methods (None: every built-in one)
    n_eval: int = 32
    n_dev: int = 16
    n_boot: int = 500
    description: str = ""

    def sizes(self) -> dict[str, Any]:
        return {"n_eval": self.n_eval, "n_dev": self.n_dev, "n_boot": self.n_boot}


GRIDS = {
    "default": TrustGrid(("unlit_lamps", "text/unlit_lamps"), 16, (0, 1, 2), (128, 512, 2048, 8192),
                         ("proxy", "weak", "noisy"),
                         description="both tracks' unlit_lamps at n = 16, three seeds; finetune_reward at 128-8,192 "
                                     "evaluator calls; every method under the proxy, weak and noisy evaluators"),
    "quick": TrustGrid(("unlit_lamps", "text/unlit_lamps"), 16, (0,), (128, 512), ("proxy", "noisy"),
                       ("none", "oracle", "steer", "finetune_reward", "prompt"),
                       description="one seed, two evaluator budgets, two evaluators, five methods (CI)"),
}


def overoptimisation_cells(grid: TrustGrid) -> list[Cell]:
    return [Cell(task=task, method="finetune_reward", budget=grid.budget, seed=s, config=UNCAPPED[get_task(task).track],
                 evaluator_calls=calls, **grid.sizes())
            for task in grid.tasks for calls in grid.calls for s in grid.seeds]


def evaluator_cells(grid: TrustGrid, methods: list[str] | None = None) -> list[Cell]:
    methods = methods or list(grid.methods or [m for m in METHODS.names() if is_builtin(m)])
    cells = []
    for task in grid.tasks:
        known = get_track(get_task(task).track).evaluators
        bad = [e for e in grid.evaluators if e not in known]
        if bad:
            raise ValueError(f"evaluator {bad[0]!r} is not offered on task {task!r}'s track; known: {list(known)}")
        for m in methods:
            if not supports(m, task):
                continue
            for e in grid.evaluators if reads_evaluator(m) else ("proxy",):
                cells += [Cell(task=task, method=m, budget=grid.budget, seed=s, evaluator=e, **grid.sizes())
                          for s in grid.seeds]
    return cells


def run_trust(out: str | Path, grid: TrustGrid, executor: str | ExecutorSpec = "process", workers: int = 2,
              timeout_s: float | None = 1800, progress: bool = True) -> dict[str, Any]:
    """Run both parts' cells into ``out/cells`` (resumable: done cells are skipped)."""
    cells = overoptimisation_cells(grid) + evaluator_cells(grid)
    return run_grid(cells, Path(out) / "cells", executor, workers, timeout_s, progress)
