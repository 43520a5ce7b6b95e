"""The text track: the lamp LM describes a room for a caption, and the world's own descriptions answer for
the oracle. Two readers read the descriptions: the **judge** (the exact parser), which every score comes
from, and the **proxy** (:mod:`.proxy`: the parser misreading lamp states), which labels methods' evidence
and answers their evaluator calls. Paired outputs share their sampling noise.

Evaluators of graded quality (``EVALUATORS``; a cell's ``evaluator``): the proxy misreads a lamp's state
with probability 0.10, ``weak`` with 0.25 and ``noisy`` with 0.40."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from torch import Tensor

from editbench.core import Budget, Edit, Evaluator, Evidence, HookPoint, MethodError
from editbench.tracks import Track
from editbench.world import World
from editbench.world.captions import rewrite_captions
from editbench.world.descriptions import Facts, describe, parse_description
from editbench.world.requests import EditRequest
from editbench.world.scene import Scene

from .checkpoints import ASSETS, lm_hash, load_lm
from .proxy import ERROR_RATE, proxy_read

EVALUATORS = {"proxy": ERROR_RATE, "weak": 0.25, "noisy": 0.40}  # evaluator -> probability a lamp's state is misread


def read(texts: list[str]) -> list[Facts | None]:
    """The parser over a batch (``None`` where a description does not parse)."""
    return [parse_description(t) for t in texts]


@dataclass(frozen=True)
class TextInputs:
    """n paired inputs: the world's scenes, their captions, and the sampling noise drawn up front."""

    world: World
    scene: Scene
    captions: list[str]
    noise: Tensor
    key: Hashable


@dataclass(frozen=True)
class TextPair:
    """Descriptions before and after an edit on the same captions and noise, their parses, and the parses
    of the world's descriptions of the requested scenes."""

    before: list[str]
    after: list[str]
    before_facts: list[Facts | None]
    after_facts: list[Facts | None]
    reference_facts: list[Facts | None]
    request: EditRequest
    captions: list[str]

    @cached_property
    def targets(self) -> list[set[str]]:
        """Per output, the places of the lamps (as described before the edit) that the request switches off."""
        return [set() if f is None else self.request.target_places(f) for f in self.before_facts]


class TextTrack(Track):
    name = "text"
    outputs = "descriptions"
    label = "text"
    checkpoint_kinds = ("lm",)
    edited = "lm"

    evaluators = tuple(EVALUATORS)

    def load(self, checkpoints: dict[str, str | None], device: str = "cpu") -> dict[str, Any]:
        return {"lm": load_lm(checkpoints.get("lm"), device=device)}

    def evaluator(self, models: dict[str, Any], name: str) -> Any:
        """The reader behind evaluator ``name``: the parser misreading lamp states at its rate."""
        if name not in EVALUATORS:
            raise MethodError(f"unknown evaluator {name!r} on the text track; choose from {list(EVALUATORS)}")
        rate = EVALUATORS[name]
        return lambda texts: proxy_read(texts, error=rate)

    def _reader(self, reader: str) -> Any:
        return read if reader == "judge" else self.evaluator({}, "proxy")

    def checkpoint_hashes(self, checkpoints: dict[str, str | None]) -> dict[str, str]:
        return {"lm": lm_hash(checkpoints.get("lm"))}

    def provenance(self, checkpoints: dict[str, str | None]) -> dict[str, Any]:
        """The shipped LM's model-card gates (the parser is exact and needs no accuracy figure)."""
        import json

        report = ASSETS / "report.json"
        if checkpoints.get("lm") is not None or not report.exists():
            return {"lm_gates": None}
        return {"lm_gates": {g["name"]: g["value"] for g in json.loads(report.read_text())["gates"]}}

    def reader_floor(self, checkpoints: dict[str, str | None]) -> float | None:
        """0: the judge is the exact parser (it reads back exactly what the world wrote)."""
        return 0.0

    def request(self, name: str) -> EditRequest:
        return EditRequest.named(name)

    def hook_points(self, models: dict[str, Any]) -> dict[str, HookPoint]:
        return models["lm"].hook_points()

    def example_pass(self, models: dict[str, Any], world: World):
        from .train import encode_pairs

        lm, scene = models["lm"], world.scenes(1, 0)
        ids, mask, _ = encode_pairs(lm.tokenizer, world.captions(scene, 0)[0], describe(scene))
        return lambda: lm(input_ids=ids, attention_mask=mask)

    def build_evidence(self, kind: str, models: dict[str, Any], request: EditRequest, budget: Budget, world: World,
                       uses_evaluator: bool, evaluator_name: str = "proxy") -> Evidence:
        lm = models["lm"]
        n, seed = budget.n, budget.seed
        # methods read their evidence and call their evaluator through the proxy; the parser only scores
        reader = self.evaluator(models, evaluator_name)
        evaluator = Evaluator(reader, budget.evaluator_calls) if uses_evaluator and budget.evaluator_calls > 0 else None
        if kind == "none":
            return Evidence("none", evaluator=evaluator)
        scene = world.scenes(n, seed)
        captions, _ = world.captions(scene, seed)
        if kind == "captions":
            return Evidence("captions", captions=captions, evaluator=evaluator)
        if kind == "samples":
            noise = lm.make_noise(n, seed)
            texts = lm.generate(captions, noise)
            return Evidence("samples", captions=captions, noise=noise, outputs=texts, readings=reader(texts),
                            evaluator=evaluator)
        if kind == "targets":
            return Evidence("targets", captions=captions, outputs=describe(scene), targets=describe(request.apply(scene)),
                            scenes=scene, evaluator=evaluator)
        raise MethodError(f"unknown evidence kind {kind!r}")

    def inputs(self, models: dict[str, Any], world: World, n: int, seed: int, noise_scale: float, key: Hashable
               ) -> TextInputs:
        scene = world.scenes(n, seed)
        captions, _ = world.captions(scene, seed)
        return TextInputs(world, scene, captions, models["lm"].make_noise(n, seed, scale=noise_scale), key)

    @torch.no_grad()
    def pair(self, session: Any, edit: Edit, request: EditRequest, inputs: TextInputs) -> dict[str, TextPair]:
        lm = session.models["lm"]
        before = session.memo((inputs.key, "unedited"), lambda: lm.generate(inputs.captions, inputs.noise))
        with edit.applied(lm):
            after = lm.generate(rewrite_captions(inputs.captions, edit.prompt), inputs.noise)
        reference = session.memo((inputs.key, "reference"), lambda: describe(request.apply(inputs.scene)))
        out = {}
        for reader in self.readers:
            r = self._reader(reader)
            before_facts = session.memo((inputs.key, "unedited", reader), lambda r=r: r(before))
            reference_facts = session.memo((inputs.key, "reference", reader), lambda r=r: r(reference))
            out[reader] = TextPair(before, after, before_facts, r(after), reference_facts, request, inputs.captions)
        return out

    def oracle_pair(self, session: Any, request: EditRequest, inputs: TextInputs) -> dict[str, TextPair]:
        before, after = describe(inputs.scene), describe(request.apply(inputs.scene))
        out = {}
        for reader in self.readers:
            r = self._reader(reader)
            after_facts = r(after)
            out[reader] = TextPair(before, after, r(before), after_facts, after_facts, request, inputs.captions)
        return out

    def metrics(self) -> dict[str, Any]:
        from .metrics import IMPLEMENTATIONS

        return IMPLEMENTATIONS

    def effect(self, pair: TextPair) -> float:
        """Share of the targeted lamps described lit before the edit that are no longer described lit."""
        lit_before = lit_after = 0
        for b, a, places in zip(pair.before_facts, pair.after_facts, pair.targets, strict=True):
            if b is None:
                continue
            lit = {lamp.place for lamp in b.lamps if lamp.lit and lamp.place in places}
            lit_before += len(lit)
            lit_after += len(lit) if a is None else sum(1 for p in lit if (la := a.lamp_at(p)) is not None and la.lit)
        return 1 - lit_after / max(lit_before, 1)

    def collateral(self, session: Any, edit: Edit) -> dict[str, Any] | None:
        """lm-eval's ``lamp_facts`` accuracy and ``lamp_perplexity`` on the LM with ``edit`` applied and without
        (the unedited scores computed once per session, and reused only for an edit that holds nothing); None
        for an edit that answers with the world's outputs instead of the model's (the oracle)."""
        import contextlib
        import io as stdio

        from .lm_tasks import COLLATERAL_TASKS, default_folder, evaluate

        if not edit.uses_model:
            return None
        lm, tasks = session.models["lm"], list(COLLATERAL_TASKS)
        with contextlib.redirect_stderr(stdio.StringIO()):  # lm-eval's progress bars, once per cell
            folder = default_folder()
            base = session.memo(("collateral", "unedited"), lambda: evaluate(lm, tasks, folder))
            # only a plain Edit that holds nothing is the unedited LM; an Edit subclass may apply itself its own way
            # (overriding applied() or hook_fn), so it is measured like any other
            noop = type(edit) is Edit and not (edit.hooks or edit.deltas or edit.prompt)
            edited = base if noop else evaluate(lm, tasks, folder, edit)
        return {"edited": edited, "unedited": base}

    def pictures(self, pair: TextPair, k: int) -> dict[str, Any]:
        return {"captions": pair.captions[:k], "before": pair.before[:k], "after": pair.after[:k]}

    def finetune(self, model: Any, params: list[Any], evidence: Evidence, config: Any, seed: int, cost: Any
                 ) -> dict[str, Any]:
        """The LM loss on the (caption, target description) pairs (:func:`.finetune.finetune_lm`)."""
        from .finetune import finetune_lm

        evidence.need("targets")
        return finetune_lm(model, params, evidence.captions, evidence.targets, config.epochs, config.lr,
                           config.batch_size, seed, cost, config.min_steps, config.max_steps)

    def evaluator_quality(self, name: str) -> float:
        """One minus the probability that evaluator ``name`` misreads a lamp's state."""
        return 1 - EVALUATORS[name]


TRACK = TextTrack
