"""Sampling throughput and hook overhead of the shipped generator (pytest-benchmark).

    python -m pytest tests/perf --benchmark-enable
"""

import pytest
import torch

from editbench.core import intervene
from editbench.tracks.image import load_generator


@pytest.fixture(scope="module")
def gen():
    G = load_generator()
    captions = ["a bedroom with a lit floor lamp at night"] * 64
    ids, mask = G.encode_captions(captions)
    return G, G.make_latents(64, seed=0), ids, mask


def _forward(G, z, ids, mask):
    with torch.no_grad():
        return G(z, ids, mask)


def test_sample_64(benchmark, gen):
    G, z, ids, mask = gen
    out = benchmark(_forward, G, z, ids, mask)
    assert out.shape == (64, 3, 64, 64)
    if benchmark.stats:
        benchmark.extra_info["samples_per_second"] = round(64 / benchmark.stats.stats.median, 1)


def test_sample_64_under_noop_intervention(benchmark, gen):
    G, z, ids, mask = gen

    def run():
        with intervene(G, {name: (lambda out: out) for name in G.hook_points()}):
            return _forward(G, z, ids, mask)

    out = benchmark(run)
    assert torch.equal(out, _forward(G, z, ids, mask))
    if benchmark.stats:
        benchmark.extra_info["samples_per_second"] = round(64 / benchmark.stats.stats.median, 1)


def test_meter_read_64(benchmark):
    from editbench.tracks.image import load_meter

    M = load_meter()
    x = torch.rand(64, 3, 64, 64)
    r = benchmark(M.read, x)
    assert r.shade.shape == (64, 64, 64)
