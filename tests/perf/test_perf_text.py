"""Text-track speed (pytest-benchmark): the parser (descriptions/s) and the shipped lamp LM's sampling
(tokens/s).

    python -m pytest tests/perf/test_perf_text.py --benchmark-enable
"""

import pytest

from editbench.world import World
from editbench.world.descriptions import describe, parse_description


@pytest.fixture(scope="module")
def descriptions():
    return describe(World().scenes(2000, seed=2**41))


def test_parse_2000_descriptions(benchmark, descriptions):
    out = benchmark(lambda: [parse_description(d) for d in descriptions])
    assert all(f is not None for f in out)
    if benchmark.stats:
        benchmark.extra_info["descriptions_per_second"] = round(len(descriptions) / benchmark.stats.stats.median)


@pytest.mark.heavy
def test_generate_64_descriptions(benchmark):
    from editbench.tracks.text.checkpoints import load_lm

    lm = load_lm()
    captions = World().sample(64, seed=2**41).captions
    noise = lm.make_noise(64, seed=1)
    texts = benchmark.pedantic(lm.generate, args=(captions, noise), rounds=3, iterations=1)
    assert len(texts) == 64
    if benchmark.stats:
        tokens = sum(len(t.split()) + 1 for t in texts)
        benchmark.extra_info["tokens_per_second"] = round(tokens / benchmark.stats.stats.median)
        benchmark.extra_info["descriptions_per_second"] = round(64 / benchmark.stats.stats.median, 1)
