"""Rendering throughput (pytest-benchmark; run with `pytest tests/perf --benchmark-enable`).

``images_per_second`` in each benchmark's extra info is the batch size over the median time.
"""

import pytest

from editbench.world import World
from editbench.world.render import render


@pytest.mark.parametrize("batch", [128])
def test_render_64px_with_all_ground_truth(benchmark, batch):
    scene = World().scenes(batch, seed=0)
    images, truth = benchmark(render, scene, 64)
    assert images.shape == (batch, 3, 64, 64) and truth.light2.shape == (batch, 3, 3, 64, 64)
    if benchmark.stats:
        benchmark.extra_info["images_per_second"] = round(batch / benchmark.stats.stats.median)


def test_sample_with_captions(benchmark):
    world = World()
    batch = benchmark(world.sample, 256, 0)
    assert len(batch) == 256
    if benchmark.stats:
        benchmark.extra_info["images_per_second"] = round(256 / benchmark.stats.stats.median)
