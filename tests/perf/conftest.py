"""Benchmarks marked ``heavy`` (seconds to minutes each) run only with ``--benchmark-enable``; the
default test run (``--benchmark-disable``) skips them instead of running them once."""

import pytest


def pytest_collection_modifyitems(config, items):
    disabled = config.getoption("benchmark_disable", default=False) and not config.getoption("benchmark_enable", default=False)
    if disabled:
        skip = pytest.mark.skip(reason="heavy benchmark: run with --benchmark-enable")
        for item in items:
            if "heavy" in item.keywords:
                item.add_marker(skip)
