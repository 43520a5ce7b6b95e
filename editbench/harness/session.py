"""A session: one track's models, loaded once, and the unedited outputs every method of a task shares.

The harness owns sessions (an executor or a worker process keeps one per track and checkpoints); no
model or cached output lives in a module global.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import torch

from editbench.core import MethodError
from editbench.tracks import Track, get_track


class Session:
    """``models`` (loaded on first use), ``memo(key, compute)`` (a cache of unedited outputs and
    readings, cleared with the models), and the check that methods leave the shared model unchanged."""

    def __init__(self, track: str | Track, checkpoints: dict[str, str | None] | None = None, device: str = "cpu"):
        self.track = get_track(track) if isinstance(track, str) else track
        self.checkpoints = dict(checkpoints or {})
        self.device = device
        self._models: dict[str, Any] | None = None
        self._memo: dict[Hashable, Any] = {}

    @property
    def models(self) -> dict[str, Any]:
        if self._models is None:
            self._models = self.track.load(self.checkpoints, device=self.device)
        return self._models

    @property
    def edited_model(self) -> torch.nn.Module:
        """The model methods edit (the generator; the language model)."""
        return self.models[self.track.edited]

    def memo(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def clear(self) -> None:
        """Forget the cached outputs (e.g. to time a cell from a cold cache)."""
        self._memo.clear()

    def reset(self) -> None:
        """Drop the models and the cache; the next use reloads them."""
        self._models = None
        self._memo.clear()

    def flops_per_pass(self, world: Any) -> float | None:
        """FLOPs of one example's forward pass through the edited model (``torch.utils.flop_counter``, counted
        once per session on the track's typical example)."""
        def count() -> float | None:
            run = self.track.example_pass(self.models, world)
            if run is None:
                return None
            from torch.utils.flop_counter import FlopCounterMode

            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                run()
            return float(counter.get_total_flops())
        return self.memo("flops_per_pass", count)

    def fingerprint(self) -> dict[str, Any]:
        """What a method must leave as it found it on the shared model: its weights (a sum per tensor), which
        parameters require gradients, which modules are in training mode, and the hooks registered on it."""
        model = self.edited_model
        with torch.no_grad():
            weights = [float(t.double().abs().sum()) for t in model.state_dict().values()]
        return {"weights": weights,
                "requires_grad": [n for n, p in model.named_parameters() if p.requires_grad],
                "training": [n for n, m in model.named_modules() if m.training],
                "hooks": sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
                             for m in model.modules())}

    def changed(self, fingerprint: dict[str, Any]) -> str | None:
        """What a fit changed on the shared model since ``fingerprint`` (None: nothing)."""
        now = self.fingerprint()
        said = {"weights": "its weights in place", "requires_grad": "which parameters require gradients",
                "training": "its training mode (train()/eval())", "hooks": "the hooks registered on it"}
        what = [said[k] for k in said if now[k] != fingerprint.get(k)]
        return ", ".join(what) or None

    def check_unchanged(self, fingerprint: dict[str, Any]) -> None:
        """Methods must leave the shared model as they found it (they change a copy or return an Edit)."""
        what = self.changed(fingerprint)
        if what:
            self.reset()
            raise MethodError(f"the method changed the shared {self.track.edited}: {what}; fit must edit a copy "
                              "and leave the model's flags and hooks as it found them")


class Sessions:
    """One session per (track, checkpoints), as a worker keeps them between cells."""

    def __init__(self, device: str = "cpu"):
        self.device = device
        self._sessions: dict[tuple, Session] = {}

    def get(self, track: str, checkpoints: dict[str, str | None] | None) -> Session:
        key = (track, tuple(sorted((checkpoints or {}).items())))
        if key not in self._sessions:
            if any(k[0] == track for k in self._sessions):  # another checkpoint of this track: free the old models
                self._sessions = {k: s for k, s in self._sessions.items() if k[0] != track}
            self._sessions[key] = Session(track, checkpoints, self.device)
        return self._sessions[key]
