"""editbench: when does editing a model's internals beat finetuning it or prompting it?

Layers, lowest first; data flows one way and nothing lower imports anything higher:

    core -> world -> tracks -> (editors | baselines | metrics) -> methods -> benchmarks -> results -> harness
         -> (leaderboard | experiments) -> cli

* ``core``: the method contract, edits, hooks, one registry type, statistics, the atomic writer, search, schedules;
* ``world``: the procedural lamp world (scenes, renderer, ground truth, captions, edit requests);
* ``tracks``: one folder per modality (``image``: generator, lamp meter; ``text``: the lamp LM, the proxy, lm-eval);
* ``editors``: the edit family, one file per method; ``baselines``: finetuning, prompting, none and oracle;
  ``metrics``: score parts, each registered once; ``methods``: the one registry over editors and baselines;
* ``benchmarks``: one file per task (its spec on every track), the one scoring path, the suites;
  ``results``: schema, store, provenance;
* ``harness``: sessions, cells, the grid, executors, method checks;
* ``leaderboard``: frame, aggregate and rank, families, tables, plots, grids, page, gate;
* ``experiments``: studies that are not edit tasks (activation reporting); ``cli``.
"""

__version__ = "0.3.0"

from editbench import _moved  # noqa: E402 - moved module names keep importing

_moved.install()
