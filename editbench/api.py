"""The public surface for method authors: everything a method needs, from one module, stable within a minor
version (``docs/api.md`` states the policy).

    from editbench.api import Budget, Cost, Edit, EditRequest, Evidence, Method, MethodConfig, capture

What is here keeps its name and meaning for every 0.x.y of one x; a name that leaves it keeps working for one
more minor version with a DeprecationWarning naming its replacement. Anything imported from elsewhere in
``editbench`` (``editbench.core``, ``editbench.tracks.text.positions``, ...) is an implementation detail that
may move in a minor release (it moved once already: ``editbench.api`` -> ``editbench.core`` in 0.3).

The contract: :class:`Method` (declare ``name``, ``family``, ``consumes``, ``tracks``; implement ``fit`` or
``fit_<track>``), :class:`MethodConfig`, :class:`Evidence`, :class:`Budget`, :class:`Evaluator`, :class:`Edit`,
:class:`Cost`, :class:`MethodError`; the hooks (:func:`capture`, :func:`intervene`, :func:`hook_points`,
:class:`HookPoint`); the search space types; the shared schedule (:func:`schedule`, :func:`epoch_batches`);
the request every lamp-world task poses (:class:`EditRequest`); and per track the helpers a method reads its
evidence with:

* images: :class:`MeterReading` (``evidence.readings``: per-pixel ``light1``/``light2``/``shade`` maps and
  per-slot ``on``/``present``/``x``), :data:`LIGHT_PIXEL` (the luminance that counts as lamp light);
* text: :class:`LampLM` (the model a text method gets: a ``transformers`` GPT-2 subclass, with
  ``lm.tokenizer`` and ``lm.generate(captions, noise)``), :func:`prompt_text` (the prompt format),
  :class:`Facts` (``evidence.readings``: the proxy's reading of each description, None where unreadable),
  :func:`parse_description`, :func:`stated` and :func:`decisions` (the token positions where the LM states each
  lamp's state), :func:`activations_at`, :func:`encode_pairs` and :func:`lm_loss`.
"""

from __future__ import annotations

from editbench.core import (
    EVERY_TRACK,
    EVIDENCE_KINDS,
    FAMILIES,
    Budget,
    Choice,
    Cost,
    Edit,
    Evaluator,
    Evidence,
    Float,
    HookPoint,
    LogFloat,
    LogInt,
    Method,
    MethodConfig,
    MethodError,
    capture,
    hook_points,
    intervene,
)
from editbench.core.schedule import epoch_batches, schedule
from editbench.tracks import Offering, get_track
from editbench.tracks.image.meter import LIGHT_PIXEL, MeterReading
from editbench.tracks.text.model import LampLM
from editbench.tracks.text.positions import Decisions, activations_at, decisions, stated
from editbench.tracks.text.tokenizer import prompt_text
from editbench.tracks.text.train import encode_pairs, lm_loss
from editbench.world.descriptions import Facts, parse_description
from editbench.world.requests import EditRequest

API_VERSION = "0.3"  # the minor version whose surface this is (docs/api.md)

__all__ = [
    "API_VERSION", "EVERY_TRACK", "EVIDENCE_KINDS", "FAMILIES", "LIGHT_PIXEL", "Budget", "Choice", "Cost", "Decisions",
    "Edit", "EditRequest", "Evaluator", "Evidence", "Facts", "Float", "HookPoint", "LampLM", "LogFloat", "LogInt",
    "MeterReading", "Method", "MethodConfig", "MethodError", "Offering", "activations_at", "capture", "decisions",
    "encode_pairs", "epoch_batches", "get_track", "hook_points", "intervene", "lm_loss", "parse_description",
    "prompt_text", "schedule", "stated",
]
