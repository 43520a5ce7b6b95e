"""Metrics on hand-made cases from the renderer, read by the shipped meter."""

import math

import pytest
import torch

from editbench.core import stats
from editbench.tracks.image import load_meter
from editbench.tracks.image import metrics as m
from editbench.world.requests import EditRequest


@pytest.fixture(scope="module")
def case(world):
    meter = load_meter()
    batch = world.sample(96, seed=2**41 + 99)
    scene = batch.scene
    views = {
        "none": batch.images,
        "oracle": world.render(EditRequest.named("lamps_off").apply(scene))[0],
        "anti": world.render(scene.switch(True))[0],
        "darker": world.render(scene.replace(ambient=scene.ambient * 0.5))[0],
        "left_off": world.render(EditRequest.named("leftmost_off").apply(scene))[0],
    }
    readings = {k: meter.read(v) for k, v in views.items()}
    return batch, views, readings


def _primary(batch, views, readings, key):
    before, after = readings["none"], readings[key]
    target = before.lamps
    eff = m.efficacy(before, after, target)
    parts = {
        "efficacy": stats.nanmean(eff["off"]),
        "retention": stats.nanmean(m.retention(before, after)),
        "locality": stats.nanmean(m.locality(views["none"], views[key], before)["score"]),
        "no_darkening": stats.nanmean(m.darkening(before, after)["score"]),
    }
    return parts, float(stats.harmonic_mean(torch.tensor(list(parts.values()))))


def test_oracle_scores_near_one(case):
    parts, primary = _primary(*case, "oracle")
    assert parts["efficacy"] > 0.95 and parts["retention"] > 0.85
    assert parts["locality"] > 0.8 and parts["no_darkening"] > 0.95
    assert primary > 0.85
    residual = stats.nanmean(m.second_order_residual(case[2]["none"], case[2]["oracle"]))
    assert residual < 0.1


def test_unedited_model_scores_zero_on_efficacy(case):
    parts, primary = _primary(*case, "none")
    assert parts["efficacy"] == 0.0 and primary == 0.0
    eff = m.efficacy(case[2]["none"], case[2]["none"], case[2]["none"].lamps)
    assert stats.nanmean(eff["reduction"]) == pytest.approx(0.0, abs=1e-6)
    assert stats.nanmean(m.locality(case[1]["none"], case[1]["none"], case[2]["none"])["l1"]) == 0.0


def test_anti_edit_scores_below_the_unedited_model(case):
    none_parts, _ = _primary(*case, "none")
    anti_parts, anti_primary = _primary(*case, "anti")
    assert anti_parts["locality"] < none_parts["locality"]
    assert anti_parts["efficacy"] <= none_parts["efficacy"]
    assert anti_primary == 0.0


def test_darkening_the_room_costs_locality_and_darkening(case):
    parts, _ = _primary(*case, "darker")
    oracle_parts, _ = _primary(*case, "oracle")
    assert parts["locality"] < oracle_parts["locality"] - 0.3
    assert parts["no_darkening"] < 0.6


def test_single_lamp_disentangle(case):
    batch, views, readings = case
    before = readings["none"]
    multi = batch.scene.n_lamps >= 2
    target = EditRequest.named("leftmost_off").target_lamps(batch.scene)
    good = m.disentangle(before, readings["left_off"], target)
    bad = m.disentangle(before, readings["oracle"], target)  # switches every lamp off
    assert stats.nanmean(good["cause"][multi]) > 0.9 and stats.nanmean(good["isolate"][multi]) > 0.9
    assert stats.nanmean(bad["isolate"][multi]) < 0.1
    assert stats.nanmean(good["disentangle"]) > stats.nanmean(bad["disentangle"]) + 0.3


def test_harmonic_mean_and_bootstrap():
    hm = stats.harmonic_mean
    assert float(hm(torch.tensor([1.0, 1.0]))) == 1.0
    assert float(hm(torch.tensor([0.5, 0.0]))) == 0.0
    assert float(hm(torch.tensor([0.25, 1.0]))) == pytest.approx(0.4)
    assert math.isnan(float(hm(torch.tensor([float("nan"), 1.0]))))
    cols = hm(torch.tensor([[0.25, 0.5, float("nan")], [1.0, 0.0, 1.0]]))  # parts on axis 0, vectorised
    assert cols[0] == pytest.approx(0.4) and cols[1] == 0.0 and math.isnan(cols[2])
    g = torch.Generator().manual_seed(0)
    per = {"a": torch.rand(200, generator=g), "b": torch.rand(200, generator=g) * 0.5 + 0.5}
    point, lo, hi = stats.output_bootstrap(per, n_boot=300)
    assert lo < point < hi and hi - lo < 0.2
    assert stats.output_bootstrap(per, n_boot=300) == (point, lo, hi)  # seeded
    assert not math.isnan(point)


def test_pooled_bootstrap_resamples_seeds_then_outputs():
    g = torch.Generator().manual_seed(1)
    parts = {"a": torch.rand(3, 50, generator=g, dtype=torch.float64), "b": torch.rand(3, 50, generator=g, dtype=torch.float64)}
    parts["a"][0, :10] = float("nan")  # not applicable to some outputs
    B = 400
    seeds = torch.randint(3, (B, 3), generator=g)
    outputs = torch.randint(50, (B, 3, 50), generator=g)
    point, draws = stats.bootstrap(parts, seeds, outputs)
    assert draws.shape == (B,) and torch.isfinite(draws).all()
    lo, hi = stats.interval(draws)
    assert lo < point < hi
    # the identity resample reproduces the point estimate
    same = stats.bootstrap(parts, torch.arange(3)[None], torch.arange(50).expand(1, 3, 50))[1]
    assert float(same[0]) == pytest.approx(point, abs=1e-12)
    assert stats.paired_better((draws + 0.1).numpy(), draws.numpy()) and not stats.paired_better(draws.numpy(), draws.numpy())


def test_fidelity_orders_oracle_before_unedited(case):
    _, _, readings = case
    assert m.fidelity(readings["oracle"], readings["oracle"]) < 1e-6
    assert m.fidelity(readings["none"], readings["oracle"]) > m.fidelity(readings["oracle"], readings["oracle"])
