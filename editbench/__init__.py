"""editbench: when does editing a model's internals beat finetuning it or prompting it?

Data flows one way: ``world`` -> ``models`` -> (``editors`` | ``baselines``) -> ``benchmarks`` ->
``metrics`` -> ``leaderboard``; nothing lower imports anything higher.
"""

__version__ = "0.1.0"
