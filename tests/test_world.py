import numpy as np
import pytest
import torch

from editbench.world import ConfigError, World, WorldConfig, inverse_tonemap, tonemap
from editbench.world.captions import VOCAB, CaptionTokenizer
from editbench.world.scene import time_of_day


def test_same_seed_same_batch_bit_for_bit(world):
    a, b = world.sample(40, seed=7), world.sample(40, seed=7)
    assert torch.equal(a.images, b.images)
    for f in a.truth.__dataclass_fields__:
        assert torch.equal(getattr(a.truth, f), getattr(b.truth, f)), f
    assert a.captions == b.captions
    assert a.scene.records() == b.scene.records()


def test_different_seeds_differ(world):
    a, b = world.sample(8, seed=1), world.sample(8, seed=2)
    assert not torch.equal(a.images, b.images)
    assert a.scene.records() != b.scene.records()


def test_lamps_sorted_left_to_right_and_present_first(world):
    s = world.scenes(500, seed=3)
    pres = s.lamp_present
    # present lamps form a prefix
    assert torch.all(pres[:, 1:] <= pres[:, :-1])
    both = pres[:, 1:] & pres[:, :-1]
    assert torch.all(s.lamp_x[:, 1:][both] > s.lamp_x[:, :-1][both])
    assert not torch.any(s.lamp_on & ~pres)


def test_switching_one_lamp_off_removes_exactly_its_light(world):
    batch = world.sample(300, seed=11)
    scene, truth = batch.scene, batch.truth
    checked = 0
    for j in range(3):
        _, off = world.render(scene.switch_off(j))
        expected = truth.linear - truth.light1[:, j] - truth.light2[:, j]
        torch.testing.assert_close(off.linear, expected, atol=2e-6, rtol=0)
        assert torch.equal(off.shade_mask, truth.shade_mask)
        assert torch.equal(off.bulb_mask, truth.bulb_mask)
        assert torch.equal(off.base, truth.base)
        # the other lamps' light is untouched, this lamp's is gone
        others = [k for k in range(3) if k != j]
        assert torch.equal(off.light1[:, others], truth.light1[:, others])
        assert torch.equal(off.light2[:, others], truth.light2[:, others])
        assert torch.count_nonzero(off.light1[:, j]) == 0 and torch.count_nonzero(off.light2[:, j]) == 0
        checked += int(scene.lamp_lit[:, j].sum())
    assert checked > 200  # the test really switched many lit lamps off


def test_light_maps_are_nonzero_exactly_for_lit_lamps(world):
    batch = world.sample(200, seed=5)
    e1, e2 = batch.truth.light_energy()
    lit = batch.scene.lamp_lit
    assert torch.all(e1[lit] > 1.0) and torch.all(e2[lit] > 1.0)
    assert torch.all(e1[~lit] == 0) and torch.all(e2[~lit] == 0)
    # every present lamp has a visible shade of several pixels; absent slots have none
    area = batch.truth.shade_mask.sum((-2, -1))
    assert torch.all(area[batch.scene.lamp_present] > 10)
    assert torch.all(area[~batch.scene.lamp_present] == 0)


def test_image_is_tonemapped_linear(world):
    batch = world.sample(16, seed=0)
    torch.testing.assert_close(batch.images, tonemap(batch.truth.linear))
    torch.testing.assert_close(inverse_tonemap(batch.images), batch.truth.linear, atol=1e-3, rtol=1e-3)


def test_ambient_darkness_is_separate_from_lamps(world):
    s = world.scenes(50, seed=9)
    _, a = world.render(s)
    _, b = world.render(s.replace(ambient=s.ambient * 0.5))
    torch.testing.assert_close(a.light1, b.light1)
    assert torch.all(b.base.mean((1, 2, 3)) < a.base.mean((1, 2, 3)))


def test_all_off_keeps_lamps_in_place(world):
    batch = world.sample(64, seed=4)
    images, off = world.render(batch.scene.all_off())
    assert torch.count_nonzero(off.light1) == 0 and torch.count_nonzero(off.light2) == 0
    assert torch.equal(off.shade_mask, batch.truth.shade_mask)
    lit_rooms = batch.scene.lamp_lit.any(1)
    assert torch.all(images[lit_rooms].mean((1, 2, 3)) < batch.images[lit_rooms].mean((1, 2, 3)))


def test_caption_mention_rates_match_config(world):
    cfg = world.config
    scene = world.scenes(10_000, seed=123)
    _, mentioned = world.captions(scene, seed=123)
    mentioned = torch.from_numpy(mentioned)
    lit = scene.lamp_lit
    unlit = scene.lamp_present & ~scene.lamp_on
    assert abs(mentioned[lit].float().mean().item() - cfg.mention_lit) < 0.015
    assert abs(mentioned[unlit].float().mean().item() - cfg.mention_unlit) < 0.015
    assert not mentioned[~scene.lamp_present].any()


def test_caption_rates_follow_a_changed_config():
    w = World(WorldConfig(mention_lit=0.2, mention_unlit=0.5))
    scene = w.scenes(4000, seed=1)
    _, mentioned = w.captions(scene, seed=1)
    mentioned = torch.from_numpy(mentioned)
    assert abs(mentioned[scene.lamp_lit].float().mean().item() - 0.2) < 0.03
    assert abs(mentioned[scene.lamp_present & ~scene.lamp_on].float().mean().item() - 0.5) < 0.03


def test_captions_agree_with_scene(world):
    batch = world.sample(500, seed=21)
    recs = batch.scene.records()
    for cap, rec, ment in zip(batch.captions, recs, batch.mentioned, strict=True):
        assert cap.startswith("a bedroom")
        for lamp, m in zip(rec["lamps"], ment[: len(rec["lamps"])], strict=True):
            if m:
                state = "lit" if lamp["on"] else "unlit"
                assert f"{state} {lamp['kind']} lamp" in cap
        if " walls" in cap:
            assert f"{rec['wall']} walls" in cap
        for t, phrase in (("night", "at night"), ("evening", "in the evening"), ("day", "during the day")):
            if phrase in cap:
                assert rec["time"] == t


def test_tokenizer_roundtrip_without_unknown_words(world):
    tok = CaptionTokenizer()
    batch = world.sample(300, seed=2)
    ids, mask = tok.encode(batch.captions)
    assert ids.shape == (300, tok.max_len)
    assert not (ids == tok.unk_id).any()
    assert tok.decode(ids) == batch.captions
    assert mask.sum(1).min() >= 4
    assert len(tok) == len(VOCAB) == len(set(VOCAB))
    ids2, _ = tok.encode(["a bedroom with purple walls"])
    assert (ids2 == tok.unk_id).sum() == 1


def test_config_validation_and_roundtrip():
    cfg = WorldConfig(wall_colors=("blue", "white"), lamp_count_probs=(0, 1, 0, 0))
    assert WorldConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="p_lamp_on"):
        WorldConfig(p_lamp_on=1.5)
    with pytest.raises(ConfigError, match="wall_colors"):
        WorldConfig(wall_colors=("purple",))
    with pytest.raises(ConfigError, match="unknown world config"):
        WorldConfig.from_dict({"lamps": 3})
    with pytest.raises(ConfigError, match="lamp_count_probs"):
        WorldConfig(lamp_count_probs=(0.5, 0.5))


def test_config_slices_constrain_sampling():
    w = World(WorldConfig(wall_colors=("blue",), lamp_count_probs=(0, 1, 0, 0), ambient_range=(0.8, 1.0)))
    s = w.scenes(300, seed=0)
    assert torch.all(s.n_lamps == 1)
    assert torch.all(s.ambient >= 0.8)
    assert {r["wall"] for r in s.records()} == {"blue"}
    assert {time_of_day(a) for a in s.ambient.tolist()} == {"day"}


def test_other_sizes_render(world):
    w = World(WorldConfig(size=32))
    b = w.sample(4, seed=0)
    assert b.images.shape == (4, 3, 32, 32) and b.truth.light2.shape == (4, 3, 3, 32, 32)


def test_scene_indexing_and_concat(world):
    s = world.scenes(10, seed=0)
    both = type(s).cat([s[:4], s[4:]])
    assert both.records() == s.records()
    assert s[3].records() == [s.records()[3]]
    rt = type(s).from_tensors(s.to_tensors())
    assert rt.records() == s.records()


def test_dataset_write_and_read(tmp_path, world):
    from editbench.world.dataset import dataset_config, read_dataset, write_dataset

    write_dataset(world, tmp_path / "ds", n=300, seed=3, shard_size=128, progress=False)
    shards = list(read_dataset(tmp_path / "ds"))
    assert [len(s["images"]) for s in shards] == [128, 128, 44]
    assert dataset_config(tmp_path / "ds") == world.config
    # images re-render exactly from the stored scenes
    images, _ = world.render(shards[0]["scene"])
    assert (images - shards[0]["images"]).abs().max() <= 0.5 / 255 + 1e-6
    captions = (tmp_path / "ds" / "captions.txt").read_text().splitlines()
    assert len(captions) == 300
    assert CaptionTokenizer().decode(shards[0]["tokens"][:5]) == captions[:5]
    assert np.array_equal(shards[0]["mentioned"].numpy().shape, (128, 3))


def test_parse_caption_reads_back_what_was_stated(world):
    from editbench.world.captions import parse_caption

    batch = world.sample(1000, seed=8)
    recs = batch.scene.records()
    for cap, rec, ment in zip(batch.captions, recs, batch.mentioned, strict=True):
        facts = parse_caption(cap)
        if facts.count is not None:
            assert facts.count == len(rec["lamps"])
        if facts.time is not None:
            assert facts.time == rec["time"]
        if facts.wall is not None:
            assert facts.wall == rec["wall"]
        stated = [(lamp["kind"], lamp["on"]) for lamp, m in zip(rec["lamps"], ment, strict=False) if m]
        assert [(k, lit) for k, lit, _ in facts.lamps] == stated
    f = parse_caption("a bedroom with blue walls , two lamps and an unlit table lamp on the left at night")
    assert (f.count, f.time, f.wall, f.n_lit, f.n_unlit) == (2, "night", "blue", 0, 1)
    assert f.lamps == (("table", False, "left"),)


def test_seed_streams_do_not_meet():
    """Every seed stream has its own range (editbench.core.seeds): training below the previews, previews below
    held-out evaluation, and every held-out stream above it and distinct."""
    from editbench.core import seeds

    assert seeds.stream_seed(2**20 - 1, 10**6 - 1) < seeds.PREVIEW
    assert seeds.EVIDENCE + 10 < seeds.PREVIEW and max(seeds.ABLATION_SEEDS) < seeds.EVIDENCE
    assert seeds.PREVIEW + 2**20 < seeds.HELD_OUT
    held_out = [seeds.KEY_CORPUS, *seeds.SPLITS.values(), seeds.TRACE, seeds.DISSECT, *seeds.LM_EVAL.values(),
                *seeds.ACTIVATIONS.values()]
    assert min(held_out) >= seeds.HELD_OUT and len(set(held_out)) == len(held_out)
    from editbench.benchmarks import EVIDENCE_SEED, SPLIT_SEEDS
    from editbench.tracks.gates import EVAL_SEED

    assert (EVIDENCE_SEED, SPLIT_SEEDS, EVAL_SEED) == (seeds.EVIDENCE, seeds.SPLITS, seeds.HELD_OUT)
