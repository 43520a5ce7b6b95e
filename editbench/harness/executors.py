"""Executors: one ``concurrent.futures``-style interface (``submit`` -> ``Future`` of a job's status)
over the engines that run jobs. A job is a suite's :class:`~.cell.Cell` or any other picklable unit of
work with the same two methods (:class:`Job`, e.g. a point of the activation-reporting experiment). Each
executor keeps its own :class:`~.session.Sessions`, so models and unedited outputs stay loaded between jobs.

* ``inline``: in this process, when submitted (tests; no time limit);
* ``process``: ``workers`` long-lived spawned processes; a job past its time limit has its process
  killed (and replaced) and is recorded as failed, as is a job whose process dies.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing as mp
import queue
import threading
from pathlib import Path
from typing import Any, Protocol

from editbench.core import Registry

from .session import Sessions


class Job(Protocol):
    """What an executor runs: ``execute`` computes the job and writes its result file at ``path`` (ok or
    failed) and returns its status; ``failed_record`` is the record written for it when its process dies or
    runs past its limit."""

    def execute(self, path: str, key: str, prov: dict[str, Any], sessions: Sessions) -> str: ...

    def failed_record(self, key: str, error: str, prov: dict[str, Any], total_s: float) -> dict[str, Any]: ...


class InlineExecutor:
    """Runs each job in this process when submitted (no time limit)."""

    def __init__(self, workers: int = 1, timeout_s: float | None = None, device: str = "cpu"):
        self.timeout_s = timeout_s
        self.sessions = Sessions(device)

    def submit(self, job: Job, path: str, key: str, prov: dict[str, Any]) -> cf.Future:
        fut: cf.Future = cf.Future()
        fut.set_result(job.execute(path, key, prov, self.sessions))
        return fut

    def shutdown(self) -> None:
        pass


def _worker(conn, device: str) -> None:
    """A long-lived worker process: runs the jobs it is sent (keeping its sessions between them) and
    answers each with its status; exits when its pipe closes."""
    sessions = Sessions(device)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        job, *args = msg
        status = job.execute(*args, sessions)
        try:
            conn.send(status)
        except (BrokenPipeError, OSError):
            return


class ProcessExecutor:
    """Jobs run in ``workers`` long-lived (spawned) processes that keep the models loaded; a job past
    ``timeout_s`` has its process killed (and replaced) and is recorded as failed, as is a job whose
    process dies."""

    def __init__(self, workers: int = 2, timeout_s: float | None = None, device: str = "cpu"):
        self.timeout_s, self.device = timeout_s, device
        self.ctx = mp.get_context("spawn")
        self.jobs: queue.Queue = queue.Queue()
        self.threads = [threading.Thread(target=self._slot, daemon=True) for _ in range(max(1, workers))]
        for t in self.threads:
            t.start()

    def submit(self, job: Job, path: str, key: str, prov: dict[str, Any]) -> cf.Future:
        fut: cf.Future = cf.Future()
        self.jobs.put((fut, (job, path, key, prov)))
        return fut

    def _spawn(self):
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child, self.device), daemon=True)
        proc.start()
        child.close()
        return proc, parent

    @staticmethod
    def _stop(proc, conn, kill: bool = False) -> None:
        if not kill:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            proc.join(10)
        if proc.is_alive():
            proc.kill()
        proc.join()
        conn.close()

    def _slot(self) -> None:
        worker = None
        while True:
            job = self.jobs.get()
            if job is None:
                break
            fut, (work, path, key, prov) = job
            if worker is None or not worker[0].is_alive():
                worker = self._spawn()
            proc, conn = worker
            status, error = None, None
            try:
                conn.send((work, path, key, prov))
                if conn.poll(self.timeout_s):
                    status = conn.recv()
                else:
                    error = f"TimeoutError: ran past its limit of {self.timeout_s:.0f} s"
            except (EOFError, BrokenPipeError, OSError):
                proc.join(5)
                error = f"its process died with exit code {proc.exitcode}"
            if status is None:
                self._stop(proc, conn, kill=True)
                worker = None
                timed_out = error.startswith("TimeoutError")
                if timed_out or not Path(path).exists():
                    from editbench.results import write_result

                    write_result(path, work.failed_record(key, error, prov, float(self.timeout_s or 0) if timed_out
                                                          else float("nan")))
                    status = "failed"
                else:
                    status = json.loads(Path(path).read_text())["status"]
            fut.set_result(status)
        if worker is not None:
            self._stop(*worker)

    def shutdown(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)
        for t in self.threads:
            t.join()


EXECUTORS: Registry[type] = Registry("executor")
EXECUTORS.add("inline", InlineExecutor)
EXECUTORS.add("process", ProcessExecutor)
