"""Every seed stream editbench draws from, in one place, so that no two of them meet.

World scenes, latents and sampling noise are all drawn from integer seeds. Training reads a stream of
seeds, everything that must stay unseen by training (evaluation, the task splits, the editors' corpora, the
studies) reads seeds above it, each in its own range:

==========================  ==========================  =====================================================
stream                      seeds                       read by
==========================  ==========================  =====================================================
evidence of a cell          ``EVIDENCE + s``            every method's evidence at budget seed ``s``
ablation evidence           ``ABLATION_SEEDS``          the text editors' dev ablations (no suite scores them)
training batches            ``seed * TRAIN_STREAM + k`` step ``k`` of a training run (below ``PREVIEW``)
training previews           ``PREVIEW + seed``          the fixed samples a training log draws each epoch
held-out evaluation         ``>= HELD_OUT``             model cards, reports, gates
key statistics corpus       ``KEY_CORPUS``              the lamp LM's MLP key second moment (ROME, MEMIT)
dev and test splits         ``SPLITS``                  tuning (dev) and every score (test)
causal trace, dissection    ``TRACE``, ``DISSECT``      where the editors' layers come from
lm-eval tasks               ``LM_EVAL[task]``           the lamp tasks in lm-eval
activation reporting        ``ACTIVATIONS[part]``       the seed-004 study
==========================  ==========================  =====================================================

A training run with seed below 2**20 and fewer than 10**6 steps per seed stays below ``PREVIEW`` (2**40);
the test ``tests/test_world.py::test_seed_streams_do_not_meet`` checks the table.
"""

from __future__ import annotations

EVIDENCE = 10_000
ABLATION_SEEDS = (10, 11, 12, 13, 14)  # evidence seeds no suite scores (the full suite's are 0-9)
TRAIN_STREAM = 1_000_003
PREVIEW = 2**40
HELD_OUT = 2**41
KEY_CORPUS = 2**42 + 7
SPLITS = {"dev": 2**43, "test": 2**44}
TRACE = 2**43 + 3
DISSECT = 2**43 + 5
LM_EVAL = {"lamp_state": 2**45 + 1, "lamp_facts": 2**45 + 2, "lamp_describe": 2**45 + 3, "lamp_perplexity": 2**45 + 4}
ACTIVATIONS = {"calibration": 2**46 + 1, "train": 2**46 + 2, "test": 2**46 + 3}
TEXT_PROXY = 0x9E3779B9  # the text track's proxy reader's own noise (a hash constant, not a world seed)


def stream_seed(seed: int, step: int) -> int:
    """Seed of the training batch at ``step`` of a run seeded ``seed`` (below ``PREVIEW`` for any real run)."""
    return int(seed) * TRAIN_STREAM + int(step)
