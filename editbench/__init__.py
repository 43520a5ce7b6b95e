"""editbench: when does editing a model's internals beat finetuning it or prompting it?

Layers, lowest first; data flows one way and nothing lower imports anything higher:

    core -> world -> tracks -> (methods | metrics) -> tasks -> results -> harness -> (leaderboard | experiments) -> cli

* ``core``: the method contract, edits, hooks, one registry type, statistics, the atomic writer;
* ``world``: the procedural lamp world (scenes, renderer, ground truth, captions, edit requests);
* ``tracks``: one folder per modality (``image``: generator, lamp meter; ``text``: the lamp LM, the proxy, lm-eval);
* ``methods``: one file per method; ``metrics``: score parts, each registered once;
* ``tasks``: task specs per track and the one scoring path; ``results``: schema, store, provenance;
* ``harness``: sessions, cells, the grid, executors, suites, method checks;
* ``leaderboard``: frame, aggregate and rank, families, tables, plots, grids, page, gate;
* ``experiments``: studies that are not edit tasks (activation reporting); ``cli``.
"""

__version__ = "0.3.0"
