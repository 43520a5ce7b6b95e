"""A tuning cell's trials, journalled as they finish, so a cell that is stopped part way (a killed worker, a
session that ends, a timeout) resumes from its last finished trial instead of from its first.

A tuning cell runs up to 24 fits in one job (tens of minutes on a CPU); without a journal a run that stops loses
every trial of the cells in flight. The journal lies beside the cell's result file (``<result>.trials.jsonl``),
so it belongs to one key: one JSON line per fitted trial, in order, with its configuration, its value, its
record and the global torch generator's state after it. Resuming replays the search: the seeded sampler is asked
again and told the journalled values, so it suggests the same configurations, and each one the journal holds is
answered from it (the generator's state restored) instead of refitted. The first configuration that differs from
the journal ends the replay, and the journal is cut there; the cell then computes what a run from the start
would have (``tests/test_runner.py`` checks a resumed cell against an uninterrupted one, exactly). The journal is
removed once the cell's result is written.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import torch

SUFFIX = ".trials.jsonl"


def journal_path(result: str | Path) -> Path:
    """Where the journal of the cell whose result file is ``result`` lies."""
    return Path(result).with_suffix(SUFFIX)


class TrialJournal:
    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path is not None else None
        self.entries = self._read() if self.path is not None else []
        self.at = 0  # the next fitted trial's index
        self.replayed = 0

    def _read(self) -> list[dict[str, Any]]:
        """The journal's complete lines (a line cut short by a kill, and what follows it, are dropped)."""
        out: list[dict[str, Any]] = []
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        except (OSError, UnicodeDecodeError):
            return out
        for line in lines:
            if not line.endswith("\n"):
                break
            try:
                e = json.loads(line)
            except json.JSONDecodeError:
                break
            if not isinstance(e, dict) or not {"config", "value", "record", "rng"} <= set(e):
                break
            out.append(e)
        return out

    def replay(self, config: dict[str, Any]) -> tuple[float, dict[str, Any]] | None:
        """The journalled value and record of the next trial if the journal holds it for ``config`` (the torch
        generator then set to its state after that trial); None where the trial must be fitted."""
        if self.at < len(self.entries):
            e = self.entries[self.at]
            if e["config"] == config:
                torch.set_rng_state(torch.frombuffer(bytearray(base64.b64decode(e["rng"])), dtype=torch.uint8))
                self.at += 1
                self.replayed += 1
                return float(e["value"]), e["record"]
            self._cut()
        return None

    def record(self, config: dict[str, Any], value: float, record: dict[str, Any]) -> None:
        """Journal a trial just fitted (flushed to disk before the search goes on)."""
        self.at += 1
        if self.path is None:
            return
        state = base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()
        try:
            line = json.dumps({"config": config, "value": value, "record": record, "rng": state}) + "\n"
            self.path.parent.mkdir(parents=True, exist_ok=True)  # the cell's folder: its result is not written yet
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except (TypeError, ValueError, OSError):  # a trial the journal cannot hold: the cell goes on without one
            self.remove()
            self.path = None

    def _cut(self) -> None:
        """Drop the journal from the current trial on (the search went another way: those trials are not this
        search's)."""
        self.entries = self.entries[:self.at]
        if self.path is not None:
            text = "".join(json.dumps(e) + "\n" for e in self.entries)
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, self.path)

    def remove(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
