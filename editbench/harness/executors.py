"""Executors: one ``concurrent.futures``-style interface (``submit`` -> ``Future`` of a job's status, then
``flush`` once everything is submitted, then ``shutdown``) over the engines that run jobs. A job is a suite's
:class:`~.cell.Cell` or any other picklable unit of work with the same two methods (:class:`Job`, e.g. a
point of the activation-reporting experiment). Every engine runs a job through the same ``Job.execute``,
which writes its result file atomically, so the same jobs give the same files under every executor.

* ``inline``: in this process, when submitted (tests; no time limit);
* ``process``: ``workers`` long-lived spawned processes that keep their models loaded;
* ``ray`` (the ``ray`` extra): ``workers`` long-lived Ray actors on a local cluster or the one at ``address``;
* ``slurm`` (the ``slurm`` extra, submitit): jobs in chunks of ``chunk``, one array task per chunk, at most
  ``workers`` running at once; ``cluster="local"`` runs the same arrays as local processes (no SLURM needed).

Under ``process``, ``ray`` and ``slurm`` a job past its limit (``timeout_s`` per fit it makes: :func:`limit`) has its
worker killed (and replaced) and is recorded as failed, as is a job whose worker dies; a job whose result file is
not there is redone next run. The ``slurm`` executor lives in :mod:`.slurm` (loaded when asked for).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing as mp
import os
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from editbench.core import Registry, UserError

from .session import Sessions


class Job(Protocol):
    """What an executor runs: ``execute`` computes the job and writes its result file at ``path`` (ok or
    failed) and returns its status; ``failed_record`` is the record written for it when its process dies or
    runs past its limit."""

    def execute(self, path: str, key: str, prov: dict[str, Any], sessions: Sessions) -> str: ...

    def failed_record(self, key: str, error: str, prov: dict[str, Any], total_s: float) -> dict[str, Any]: ...


Item = tuple[Job, str, str, dict[str, Any]]  # (job, result path, key, provenance)


def limit(item: Item, timeout_s: float | None) -> float | None:
    """The seconds ``item`` may run: ``timeout_s`` per fit it makes (a job's optional ``fits``: a tuning cell fits
    once per trial and once more, so the limit that catches a hung fit does not fail a long search)."""
    return None if timeout_s is None else timeout_s * max(1, int(getattr(item[0], "fits", 1)))


def settle(item: Item, error: str, timeout_s: float | None) -> str:
    """The status of a job whose worker did not answer: ``failed`` (recorded) when it ran past its limit or
    left no result file; else the status its file holds (it finished before its worker went)."""
    job, path, key, prov = item
    timed_out = error.startswith("TimeoutError")
    if timed_out or not Path(path).exists():
        from editbench.results import write_result

        spent = float(limit(item, timeout_s) or 0) if timed_out else float("nan")
        write_result(path, job.failed_record(key, error, prov, spent))
        return "failed"
    return json.loads(Path(path).read_text())["status"]


def _timeout_error(timeout_s: float | None) -> str:
    return f"TimeoutError: ran past its limit of {timeout_s:.0f} s"


class InlineExecutor:
    """Runs each job in this process when submitted (no time limit)."""

    def __init__(self, workers: int = 1, timeout_s: float | None = None, device: str = "cpu"):
        self.timeout_s = timeout_s
        self.sessions = Sessions(device)

    def submit(self, job: Job, path: str, key: str, prov: dict[str, Any]) -> cf.Future:
        fut: cf.Future = cf.Future()
        fut.set_result(job.execute(path, key, prov, self.sessions))
        return fut

    def flush(self) -> None:
        pass

    def shutdown(self) -> None:
        pass


class SlotExecutor:
    """``workers`` slots, each a thread that owns one long-lived worker (which keeps its models loaded) and
    feeds it one job at a time. Engines implement ``_spawn``, ``_call`` (run one job, waiting at most
    ``timeout_s``: its status, or None and why not) and ``_stop``."""

    def __init__(self, workers: int = 2, timeout_s: float | None = None, device: str = "cpu"):
        self.timeout_s, self.device = timeout_s, device
        self.jobs: queue.Queue = queue.Queue()
        self.threads = [threading.Thread(target=self._slot, daemon=True) for _ in range(max(1, workers))]
        for t in self.threads:
            t.start()

    def submit(self, job: Job, path: str, key: str, prov: dict[str, Any]) -> cf.Future:
        fut: cf.Future = cf.Future()
        self.jobs.put((fut, (job, os.path.abspath(path), key, prov)))
        return fut

    def flush(self) -> None:
        pass

    def _spawn(self) -> Any:
        raise NotImplementedError

    def _alive(self, worker: Any) -> bool:
        return True

    def _call(self, worker: Any, item: Item) -> tuple[str | None, str | None]:
        raise NotImplementedError

    def _stop(self, worker: Any, kill: bool = False) -> None:
        raise NotImplementedError

    def _slot(self) -> None:
        worker = None
        while True:
            job = self.jobs.get()
            if job is None:
                break
            fut, item = job
            try:
                if worker is None or not self._alive(worker):
                    worker = self._spawn()
                status, error = self._call(worker, item)
                if status is None:
                    self._stop(worker, kill=True)
                    worker = None
                    status = settle(item, error or "its worker died", self.timeout_s)
                fut.set_result(status)
            except BaseException as e:  # noqa: BLE001 - a bug in editbench reaches the caller with its traceback
                fut.set_exception(e)
        if worker is not None:
            self._stop(worker)

    def shutdown(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)
        for t in self.threads:
            t.join()


def _worker(conn, device: str) -> None:
    """A long-lived worker process: runs the jobs it is sent (keeping its sessions between them) and
    answers each with its status; exits when its pipe closes."""
    sessions = Sessions(device)
    conn.send("ready")
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


class ProcessExecutor(SlotExecutor):
    """Jobs run in ``workers`` long-lived (spawned) processes that keep the models loaded."""

    def __init__(self, workers: int = 2, timeout_s: float | None = None, device: str = "cpu"):
        self.ctx = mp.get_context("spawn")
        super().__init__(workers, timeout_s, device)

    def _spawn(self):
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child, self.device), daemon=True)
        proc.start()
        child.close()
        if not parent.poll(600) or parent.recv() != "ready":  # started (a job's limit does not count the start)
            proc.kill()
            raise RuntimeError(f"a worker process did not start (exit code {proc.exitcode})")
        return proc, parent

    def _alive(self, worker) -> bool:
        return worker[0].is_alive()

    def _call(self, worker, item: Item) -> tuple[str | None, str | None]:
        proc, conn = worker
        try:
            conn.send(item)
            if conn.poll(limit(item, self.timeout_s)):
                return conn.recv(), None
            return None, _timeout_error(limit(item, self.timeout_s))
        except (EOFError, BrokenPipeError, OSError):
            proc.join(5)
            return None, f"its process died with exit code {proc.exitcode}"

    def _stop(self, worker, kill: bool = False) -> None:
        proc, conn = worker
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


class _RayWorker:
    """A Ray actor's state: its sessions, kept between jobs."""

    def __init__(self, device: str):
        self.sessions = Sessions(device)

    def ready(self) -> bool:
        return True

    def run(self, job: Job, path: str, key: str, prov: dict[str, Any]) -> str:
        return job.execute(path, key, prov, self.sessions)


def _need(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"the {extra} executor needs {module}: pip install 'editbench[{extra}]'") from None


class RayExecutor(SlotExecutor):
    """Jobs run on ``workers`` Ray actors (one CPU each; one GPU each when ``device`` is CUDA) that keep the
    models loaded. Without ``address`` a local cluster of ``workers`` CPUs is started for the run (and stopped
    after it); with one (``auto``, ``ray://host:10001``, ...) the actors run on that cluster, which must see
    the same result folder (a shared file system) and have editbench installed."""

    def __init__(self, workers: int = 2, timeout_s: float | None = None, device: str = "cpu",
                 address: str | None = None):
        ray = _need("ray", "ray")
        self.ray, self.owns = ray, False
        if not ray.is_initialized():
            import logging

            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
            if address is None:
                kw["num_cpus"] = max(1, workers)
            ray.init(address=address, **kw)
            self.owns = True
        opts: dict[str, Any] = {"num_cpus": 1}
        if str(device).startswith("cuda"):
            opts["num_gpus"] = 1
        self.actor_cls = ray.remote(**opts)(_RayWorker)
        super().__init__(workers, timeout_s, device)

    def _spawn(self):
        actor = self.actor_cls.remote(self.device)
        self.ray.get(actor.ready.remote())  # started (a job's time limit does not count the actor's start)
        return actor

    def _call(self, worker, item: Item) -> tuple[str | None, str | None]:
        ray = self.ray
        ref = worker.run.remote(*item)
        ready, _ = ray.wait([ref], timeout=limit(item, self.timeout_s))
        if not ready:
            return None, _timeout_error(limit(item, self.timeout_s))
        try:
            return ray.get(ref), None
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.ObjectLostError) as e:
            return None, f"its Ray worker died ({type(e).__name__})"
        except ray.exceptions.RayTaskError as e:
            raise e.as_instanceof_cause() from None

    def _stop(self, worker, kill: bool = False) -> None:
        self.ray.kill(worker)

    def shutdown(self) -> None:
        super().shutdown()
        if self.owns:
            self.ray.shutdown()


EXECUTORS: Registry[type] = Registry("executor")
EXECUTORS.add("inline", InlineExecutor)
EXECUTORS.add("process", ProcessExecutor)
EXECUTORS.add("ray", RayExecutor)
EXECUTORS.add("slurm", "editbench.harness.slurm:SlurmExecutor")  # loaded when asked for


def options_of(name: str) -> set[str]:
    """The options executor ``name`` takes: its constructor's parameters beyond ``workers`` and ``timeout_s``."""
    import inspect

    return set(inspect.signature(EXECUTORS.get(name)).parameters) - {"workers", "timeout_s"}


@dataclass(frozen=True)
class ExecutorSpec:
    """An executor by name with its options (``device``; ``address`` for Ray; ``cluster``, ``chunk``, ``folder``
    and ``slurm`` parameters for submitit). Every function that runs jobs takes a name or one of these."""

    name: str = "process"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        EXECUTORS.get(self.name)  # an unknown executor fails before anything runs
        unknown = set(self.options) - options_of(self.name)
        if unknown:
            raise UserError(f"the {self.name} executor takes no option {', '.join(sorted(unknown))}")

    def make(self, workers: int, timeout_s: float | None) -> Any:
        return EXECUTORS.get(self.name)(workers=workers, timeout_s=timeout_s, **self.options)


def executor_spec(executor: str | ExecutorSpec) -> ExecutorSpec:
    return executor if isinstance(executor, ExecutorSpec) else ExecutorSpec(executor)
