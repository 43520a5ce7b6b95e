"""The checks every method gets, built-in or submitted (``editbench methods check file.py:Class``):
it loads; it fits within its budget; it leaves the shared model as it found it; its edit changes the
outputs and, removed, leaves them exactly as before; saved and loaded it gives the same outputs; fitted
again with the same seed it is the same edit; and it moves the outputs the way the request asks."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from editbench.benchmarks import EVIDENCE_SEED, SPLIT_SEEDS, evidence_world, get_task
from editbench.core import Budget, Edit, UserError
from editbench.methods import resolve

from .cell import fit
from .session import Session


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool | None  # None: not applicable (skipped)
    detail: str


def _equal(a: Any, b: Any) -> bool:
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


def _same_edit(a: Edit, b: Edit) -> bool:
    return (a.hooks == b.hooks and a.deltas == b.deltas and a.prompt == b.prompt and a.tensors.keys() == b.tensors.keys()
            and all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors))


def check_method(method: str, config: dict[str, Any] | None = None, session: Session | None = None,
                 task: str = "unlit_lamps", n: int = 16, evaluator_calls: int = 256, n_held: int = 24,
                 seed: int = 0) -> list[Check]:
    """Run the checks on ``method`` (a registered name, ``module:Class`` or ``file.py:Class``) fitted on
    ``task``'s evidence with ``n`` examples; held-out outputs come from the task's dev split. A method
    that cannot be loaded or configured raises :class:`~editbench.core.UserError`."""
    cls = resolve(method)
    spec = get_task(task)
    instance = cls(config or {}, track=spec.track)
    session = session or Session(spec.track)
    track = session.track
    request = track.request(spec.request)
    budget = Budget(n, evaluator_calls, seed=EVIDENCE_SEED + seed)
    checks = [Check("loads", True, f"{cls.__module__}:{cls.__qualname__} ({cls.family}, consumes {cls.consumes}, "
                                   f"tracks {', '.join(cls.tracks)})")]
    fingerprint = session.fingerprint()
    torch.manual_seed(seed)
    try:
        edit = fit(instance, session, request, budget, evidence_world(spec))
    except Exception as e:  # noqa: BLE001 - a method's failure is the check's finding
        return [*checks, Check("fits", False, f"{type(e).__name__}: {e}")]
    cost = edit.cost()
    within = (cost.examples_used <= budget.n and cost.evaluator_calls <= budget.evaluator_calls and cost.fit_seconds > 0
              and (cost.evaluator_calls > 0 or not cls.uses_evaluator))
    checks.append(Check("fits within budget", within, f"{cost.fit_seconds:.1f} s, {cost.examples_used} of {budget.n} "
                        f"examples, {cost.evaluator_calls} of {budget.evaluator_calls} evaluator calls, "
                        f"{cost.params_changed} parameters changed"))
    what = session.changed(fingerprint)
    unchanged = what is None
    checks.append(Check("leaves the shared model unchanged", unchanged,
                        "weights, gradient flags, training mode and hooks as before" if unchanged
                        else f"fit changed the shared model: {what}"))
    if not unchanged:
        session.reset()
        return checks

    sl = spec.slices[0]
    world = sl.make_world()

    def pair(e: Edit, tag: Any) -> Any:
        key = ("check", task, n_held, tag)  # the unedited outputs of a tag are computed once per session
        inputs = track.inputs(session.models, world, n_held, SPLIT_SEEDS["dev"] + 7, sl.noise_scale, key=key)
        return e.pair(track, session, request, inputs)[track.readers[0]]

    try:
        edited = pair(edit, "edited")
    except UserError as e:
        return [*checks, Check("applies", False, str(e))]
    changes = not _equal(edited.after, edited.before)
    reference = cls.family == "reference"
    detail = "reference method" if reference else ("edited outputs differ" if changes else "the edit changes nothing")
    checks.append(Check("changes the outputs", None if reference else changes, detail))
    again = pair(Edit("none"), object())  # the unedited outputs, computed afresh after the edit was removed
    restored = _equal(again.before, edited.before) or reference
    checks.append(Check("reversible", restored, "outputs identical bit for bit after the edit is removed" if restored
                        else "the model's outputs changed after the edit was removed"))
    with tempfile.TemporaryDirectory() as tmp:
        edit.save(Path(tmp) / "edit")
        loaded = Edit.load(Path(tmp) / "edit")
        same = type(loaded) is type(edit) and _equal(pair(loaded, "loaded").after, edited.after)
    checks.append(Check("saves and loads", same, f"{type(edit).__name__} restored, same outputs" if same
                        else "the loaded edit gives other outputs"))
    torch.manual_seed(seed + 1)
    repeat = fit(cls(config or {}, track=spec.track), session, request, budget, evidence_world(spec))
    deterministic = _same_edit(edit, repeat)
    checks.append(Check("deterministic", deterministic, "same seed, same edit" if deterministic
                        else "fitting again with the same seed gave another edit"))
    effect = track.effect(edited)
    checks.append(Check("moves the outputs as requested", None if cls.name == "none" else effect > 0,
                        f"{100 * effect:.1f}% of the requested change measured on {n_held} held-out outputs"))
    return checks


def format_checks(method: str, checks: list[Check]) -> str:
    mark = {True: "pass", False: "FAIL", None: "skip"}
    lines = [f"{mark[c.passed]:<5} {c.name:<36} {c.detail}" for c in checks]
    failed = sum(c.passed is False for c in checks)
    lines.append(f"{method}: {'all checks passed' if not failed else f'{failed} check(s) failed'}")
    return "\n".join(lines)
