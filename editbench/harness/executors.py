"""Executors: one ``concurrent.futures``-style interface (``submit`` -> ``Future`` of a cell's status)
over the engines that run cells. Each keeps its own :class:`~.session.Sessions`, so models and unedited
outputs stay loaded between cells.

* ``inline``: in this process, when submitted (tests; no time limit);
* ``process``: ``workers`` long-lived spawned processes; a cell past its time limit has its process
  killed (and replaced) and is recorded as failed, as is a cell whose process dies.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing as mp
import queue
import threading
from pathlib import Path
from typing import Any

from editbench.core import Registry

from .cell import Cell, execute_cell, failed
from .session import Sessions


class InlineExecutor:
    """Runs each cell in this process when submitted (no time limit)."""

    def __init__(self, workers: int = 1, timeout_s: float | None = None, device: str = "cpu"):
        self.timeout_s = timeout_s
        self.sessions = Sessions(device)

    def submit(self, cell: Cell, path: str, key: str, prov: dict[str, Any]) -> cf.Future:
        fut: cf.Future = cf.Future()
        fut.set_result(execute_cell(cell, path, key, prov, self.sessions))
        return fut

    def shutdown(self) -> None:
        pass


def _worker(conn, device: str) -> None:
    """A long-lived cell process: runs the cells it is sent (keeping its sessions between them) and
    answers each with its status; exits when its pipe closes."""
    sessions = Sessions(device)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        status = execute_cell(*msg, sessions)
        try:
            conn.send(status)
        except (BrokenPipeError, OSError):
            return


class ProcessExecutor:
    """Cells run in ``workers`` long-lived (spawned) processes that keep the models loaded; a cell past
    ``timeout_s`` has its process killed (and replaced) and is recorded as failed, as is a cell whose
    process dies."""

    def __init__(self, workers: int = 2, timeout_s: float | None = None, device: str = "cpu"):
        self.timeout_s, self.device = timeout_s, device
        self.ctx = mp.get_context("spawn")
        self.jobs: queue.Queue = queue.Queue()
        self.threads = [threading.Thread(target=self._slot, daemon=True) for _ in range(max(1, workers))]
        for t in self.threads:
            t.start()

    def submit(self, cell: Cell, path: str, key: str, prov: dict[str, Any]) -> cf.Future:
        fut: cf.Future = cf.Future()
        self.jobs.put((fut, (cell, path, key, prov)))
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
            fut, (cell, path, key, prov) = job
            if worker is None or not worker[0].is_alive():
                worker = self._spawn()
            proc, conn = worker
            status, error = None, None
            try:
                conn.send((cell, path, key, prov))
                if conn.poll(self.timeout_s):
                    status = conn.recv()
                else:
                    error = f"TimeoutError: cell ran past its limit of {self.timeout_s:.0f} s"
            except (EOFError, BrokenPipeError, OSError):
                proc.join(5)
                error = f"the cell's process died with exit code {proc.exitcode}"
            if status is None:
                self._stop(proc, conn, kill=True)
                worker = None
                timed_out = error.startswith("TimeoutError")
                if timed_out or not Path(path).exists():
                    from editbench.results import write_result

                    rec = failed(cell, key, error, prov, float(self.timeout_s or 0) if timed_out else float("nan"))
                    write_result(path, rec.as_dict())
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
