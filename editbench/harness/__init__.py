"""The harness: sessions (loaded models and cached unedited outputs), cells (tune, fit, score), the
grid, executors (which run any :class:`Job`: a cell, or a point of an experiment), suites as data, and the
checks every method gets."""

from editbench.benchmarks.suites import SUITES, Suite

from .cell import SAMPLE_OUTPUTS, Cell, default_config, execute_cell, fit, run_cell
from .executors import EXECUTORS, ExecutorSpec, Job
from .grid import (
    SuitePlan,
    estimate_full,
    is_done,
    make_grid,
    plan_named_suite,
    restore,
    run_grid,
    run_jobs,
    run_named_suite,
    run_suite,
)
from .session import Session, Sessions
from .status import status_table, suite_status

__all__ = ["EXECUTORS", "SAMPLE_OUTPUTS", "SUITES", "Cell", "ExecutorSpec", "Job", "Session", "Sessions", "Suite",
           "default_config", "estimate_full", "execute_cell", "fit", "is_done", "make_grid", "restore", "run_cell", "run_grid",
           "run_jobs", "run_named_suite", "run_suite", "SuitePlan", "plan_named_suite", "status_table", "suite_status"]
