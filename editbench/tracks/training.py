"""What every track's training shares: the seeded data stream, the device, the run folder (with its
resume check) and the JSON-lines log. A run is reproducible from one command with a fixed seed: the data
of step ``k`` comes from seed ``stream_seed(seed, k)``, so a resumed run sees exactly the data it would
have seen."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from editbench.core import UserError, io
from editbench.core.seeds import TRAIN_STREAM, stream_seed

__all__ = ["TRAIN_STREAM", "JsonlLog", "autocast", "pick_device", "stream_seed"]


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return dev


def autocast(device: torch.device, enabled: bool):
    if not enabled:
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


class JsonlLog:
    def __init__(self, path: Path):
        self.path = path

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


def start_run(out: Path, kind: str, args: dict[str, Any], resume: bool, versions: dict[str, str] | None = None) -> int:
    """Create the run folder; return the step to start from (0, or the saved step on resume)."""
    out.mkdir(parents=True, exist_ok=True)
    state = out / "state" / "step.json"
    if state.exists():
        if not resume:
            raise UserError(f"{out} already holds a {kind} run; pass --resume to continue it or choose a new --out")
        saved = json.loads((out / "run.json").read_text())
        changed = {k: (saved["args"].get(k), v) for k, v in args.items()
                   if k not in ("steps", "resume", "progress") and saved["args"].get(k) != v}
        if changed:
            raise UserError(f"cannot resume {out} with different settings: {changed}")
        return int(json.loads(state.read_text())["step"])
    io.write_text(out / "run.json", json.dumps({"kind": kind, "args": args, "versions": versions or {}}, indent=2))
    return 0
