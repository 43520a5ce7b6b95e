"""Activation reporting: can the lamp LM be finetuned to report one of its own neurons, and how many layers
down does it stop working?

**Examples.** A sentence of the lamp world ending in a full stop: ``<bos> caption <sep>`` and a world
description cut after one of its sentences (the cut drawn at random). The finetuned copy reads it, then a
query marker naming the neuron (``<report>``, a new token), and must answer with the neuron's bin
(``<bin1>`` ... ``<bin10>``, new tokens): the bin of the neuron's activation **in the frozen base model** at
the final full stop, among the deciles of its activations over a calibration corpus. The copy never labels
itself.

**Neurons.** Per layer (the embedding output ``transformer.drop``; each block's MLP neurons
``transformer.h.{i}.mlp.act`` and residual stream ``transformer.h.{i}``), by a fixed rule: the
highest-variance neurons at full stops over the calibration corpus, then neurons drawn at random (seeded).

**Finetuning.** LoRA (peft, on every ``Conv1D`` of the blocks, with the new tokens' embeddings trained too)
or full finetuning of a copy, the loss on the answer only, for a fixed number of optimiser steps over
``n_train`` distinct examples (so the training-examples axis varies the data, not the compute).

**Models.** The lamp LM family: ``small`` (4 blocks, width 80), ``base`` (the shipped LM: 4 blocks, width
128) and ``large`` (6 blocks, width 160), and ``control`` (the base's architecture, another seed), each
trained by ``editbench train lm`` with a fixed seed and shipped under ``assets/text/experiments``.

**Grid.** Points run as jobs on the harness's executors (``inline``, ``process``), one result file each
with its provenance, resumable like the suites' cells.

**Cross-model control** (privileged access or not, as in Binder et al. 2024): a second LM (``reporter``,
another seed) finetuned on the same labels, from the first model's neuron; if it reports as well, the
first model's report needs no access to its own internals. Drift and the causal check do not apply to it.

**Measures** on held-out sentences: exact-bin accuracy (with a 95% bootstrap interval over the sentences) and
mean absolute bin error (chance: 0.10 and 3.3);
the **probe ceiling**, a multinomial logistic regression from the base's final residual stream (after the
last layer norm) at the full stop to the bin, trained on the same examples; the **drift**, the share of
held-out sentences where the copy's own neuron falls in another bin than the base's; and the **causal
check**, the mean reported bin when the neuron is clamped at the full stop to its 95th percentile minus
when clamped to its 5th (positive: the report follows the neuron).

The study in four modules: :mod:`.data` (sentences, neurons, bins), :mod:`.reporter` (finetuning and
measuring one point), :mod:`.grid` (points as jobs, the named grids) and :mod:`.report` (tables, plots).
"""

from .data import *  # noqa: F403
from .grid import *  # noqa: F403
from .report import *  # noqa: F403
from .reporter import *  # noqa: F403
