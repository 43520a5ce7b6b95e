"""The editors: the ``edit`` family, one file per method (see :mod:`editbench.methods`, which registers them).

Helpers two or more editors share live in files starting with ``_``: ``_unit_ranking`` (image units ranked
by how their activations fall inside the lamps' light; clamps and rank-one deltas), ``_mlp_rewrite`` (ROME's
and MEMIT's data, subjects, value optimisation and reach on the lamp LM). What any method needs of a track
(the lamp LM's decision positions, its key statistics, causal tracing) lives in that track's folder.
"""
