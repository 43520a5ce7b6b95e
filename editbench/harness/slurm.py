"""The ``slurm`` executor (the ``slurm`` extra, submitit): jobs in chunks, one array task per chunk, each chunk's jobs
in turn in one worker process (see :mod:`.executors` for the interface every executor shares)."""

from __future__ import annotations

import concurrent.futures as cf
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .executors import Item, Job, ProcessExecutor, _need, limit, settle


def run_chunk(items: list[Item], timeout_s: float | None, device: str) -> list[str]:
    """One array task of the ``slurm`` executor: its jobs in turn, in one worker process (the models loaded
    once), each killed and recorded as failed past ``timeout_s``."""
    ex = ProcessExecutor(1, timeout_s, device)
    futures = [ex.submit(*item) for item in items]
    ex.shutdown()
    return [f.result() for f in futures]


@dataclass(eq=False)
class _Array:
    items: list[tuple[cf.Future, Item]]
    job: Any = None


class SlurmExecutor:
    """Jobs in chunks of ``chunk`` (one submitit job per chunk, submitted as one SLURM job array with at most
    ``workers`` tasks running at once); each chunk runs its jobs in one worker process with the per-job time
    limit. ``cluster``: ``slurm``, ``local`` (the same arrays as local processes, at most ``workers`` at a time)
    or None (submitit picks: SLURM where ``sbatch`` is found, else local). ``folder``: submitit's logs and
    pickles. ``slurm``: further submitit parameters (``{"slurm_partition": "gpu", "gpus_per_node": 1}``)."""

    def __init__(self, workers: int = 2, timeout_s: float | None = None, device: str = "cpu",
                 cluster: str | None = None, chunk: int = 8, folder: str | Path = "submitit-logs",
                 slurm: dict[str, Any] | None = None, poll_s: float = 0.5):
        submitit = _need("submitit", "slurm")
        self.workers, self.timeout_s, self.device, self.chunk = max(1, workers), timeout_s, device, max(1, chunk)
        self.poll_s = poll_s
        self.ex = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
        self.cluster = self.ex.cluster
        params: dict[str, Any] = {"timeout_min": self._minutes([]), "cpus_per_task": 1}
        if self.cluster == "slurm":
            params["slurm_array_parallelism"] = self.workers
        self.ex.update_parameters(**params, **(slurm or {}))
        self.pending: list[tuple[cf.Future, Item]] = []
        self.arrays: list[_Array] = []
        self.monitor: threading.Thread | None = None

    def _minutes(self, items: list[Item]) -> int:
        """An array task's time limit: every job of its chunk at its limit (a chunk of ordinary cells while none is
        known), and ten minutes of loading."""
        per = [limit(it, self.timeout_s or 1800) or 0 for it in items] or [float(self.timeout_s or 1800)] * self.chunk
        return math.ceil((sum(per) + 600) / 60)

    def submit(self, job: Job, path: str, key: str, prov: dict[str, Any]) -> cf.Future:
        fut: cf.Future = cf.Future()
        self.pending.append((fut, (job, os.path.abspath(path), key, prov)))
        return fut

    def flush(self) -> None:
        """Cut the submitted jobs into chunks and start them (all at once as one array on SLURM; in waves of
        ``workers`` on a local cluster)."""
        chunks = [_Array(self.pending[i : i + self.chunk]) for i in range(0, len(self.pending), self.chunk)]
        self.pending = []
        self.arrays += chunks
        if self.cluster == "slurm" and chunks:
            self.ex.update_parameters(timeout_min=max(self._minutes([it for _, it in a.items]) for a in chunks))
            jobs = self.ex.map_array(run_chunk, [[it for _, it in a.items] for a in chunks],
                                     [self.timeout_s] * len(chunks), [self.device] * len(chunks))
            for a, j in zip(chunks, jobs, strict=True):
                a.job = j
        if self.monitor is None:
            self.monitor = threading.Thread(target=self._watch, daemon=True)
            self.monitor.start()

    def _start(self, a: _Array) -> None:
        self.ex.update_parameters(timeout_min=self._minutes([it for _, it in a.items]))
        a.job = self.ex.submit(run_chunk, [it for _, it in a.items], self.timeout_s, self.device)

    def _watch(self) -> None:
        open_ = list(self.arrays)
        while open_:
            running = [a for a in open_ if a.job is not None]
            for a in [a for a in open_ if a.job is None][: max(0, self.workers - len(running))]:
                self._start(a)  # local: the next wave
            for a in [a for a in open_ if a.job is not None and a.job.done()]:
                self._finish(a)
                open_.remove(a)
            open_ += [a for a in self.arrays if a not in open_ and not all(f.done() for f, _ in a.items)]
            time.sleep(self.poll_s)

    def _finish(self, a: _Array) -> None:
        try:
            statuses = a.job.result()
        except Exception as e:  # noqa: BLE001 - the array task died (killed, preempted, out of memory)
            why = f"its SLURM job {a.job.job_id} ended: {str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__}"
            statuses = [settle(item, why, self.timeout_s) for _, item in a.items]
        for (fut, _), status in zip(a.items, statuses, strict=True):
            fut.set_result(status)

    def shutdown(self) -> None:
        if self.monitor is not None:
            self.monitor.join()


