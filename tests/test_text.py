"""The text track: descriptions and their parser, the lamp LM, paired sampling, hook points, tasks."""


import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from editbench.core import Edit, intervene
from editbench.core.checkpoints import CheckpointError
from editbench.world.descriptions import (
    PLACES,
    TEXT_VOCAB,
    Facts,
    LampFacts,
    describe,
    parse_description,
    render_facts,
    scene_facts,
)
from editbench.world.render import luminance


# ---- descriptions and the parser ------------------------------------------------------------------------
def test_parser_reads_back_exactly_what_the_world_wrote(world):
    scene = world.scenes(10_000, seed=2**41 + 5)
    facts = scene_facts(scene)
    texts = describe(scene)
    assert [parse_description(t) for t in texts] == facts
    assert all(f.consistent() for f in facts)
    assert {f.n_lamps for f in facts} == {0, 1, 2, 3} and any(f.reflections for f in facts)
    assert any(("bed" in {s for _, s in f.lights}) for f in facts)


def test_switching_a_lamp_off_removes_its_light_from_the_description(world):
    scene = world.scenes(400, seed=9)
    before, after = scene_facts(scene), scene_facts(scene.switch_off(0))
    for b, a in zip(before, after, strict=True):
        if not b.lamps:
            continue
        first = b.lamps[0].place
        assert a.lamp_at(first) == LampFacts(first, b.lamps[0].kind, False)
        assert not {p for p, _ in a.lights} & {first} and first not in a.reflections
        assert a.lamps[1:] == b.lamps[1:] and (a.wall, a.window, a.bed, a.time) == (b.wall, b.window, b.bed, b.time)


def test_second_order_sentences_follow_the_renderer(world):
    """Light on the bed and reflections are stated exactly where the renderer throws much more of that light."""
    scene = world.scenes(300, seed=11)
    _, truth = world.render(scene)
    light2 = luminance(truth.light2, dim=2)  # (B, L, H, W)
    size = light2.shape[-1]
    coords = (torch.arange(size) + 0.5) / size
    facts = scene_facts(scene)
    on_bed, off_bed, refl, no_refl = [], [], [], []
    for i, f in enumerate(facts):
        hz, bx, bw = float(scene.horizon[i]), float(scene.bed_x[i]), float(scene.bed_w[i])
        rows = (coords > hz + 0.05) & (coords < hz + 0.22)
        cols = (coords > bx - bw / 2 + 0.02) & (coords < bx + bw / 2 - 0.02)
        wb = scene.window_box[i].tolist()
        wrows, wcols = (coords > wb[1]) & (coords < wb[3]), (coords > wb[0]) & (coords < wb[2])
        lamps = [j for j in range(3) if scene.lamp_present[i, j]]
        for j, lamp in zip(lamps, f.lamps, strict=True):
            if not lamp.lit:
                assert float(light2[i, j].sum()) == 0.0
                continue
            bed = float(light2[i, j][rows][:, cols].mean()) / float(light2[i, j].max())
            (on_bed if (lamp.place, "bed") in f.lights else off_bed).append(bed)
            if f.window:
                win = float(light2[i, j][wrows][:, wcols].max())
                (refl if lamp.place in f.reflections else no_refl).append(win)
    median = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    assert median(on_bed) > 3 * median(off_bed)
    assert median(refl) > 3 * median(no_refl)


def test_parser_refuses_what_breaks_the_grammar():
    good = "grey walls , a window , a red bed , at night . a lit table lamp on the left . " \
           "the lamp on the left lights the wall and the floor ."
    assert parse_description(good) is not None
    for bad in [good[:-2], good.replace("grey walls", "purple walls"), good.replace("on the left .", "on the left"),
                good + " the lamp on the right lights the wall .",  # no lamp on the right
                good.replace("a lit table lamp on the left . ",
                             "a lit table lamp on the left . an unlit floor lamp on the far left . "),
                "", ".", "no lamps ."]:
        assert parse_description(bad) is None, bad
    # light from an unlit lamp parses but is not consistent
    unlit = good.replace("a lit table lamp", "an unlit table lamp")
    assert parse_description(unlit) is not None and not parse_description(unlit).consistent()


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TEXT_VOCAB + ("walls", "xyzzy", "", "..")), max_size=60), st.text(max_size=80))
def test_parser_never_crashes(tokens, text):
    for candidate in (tokens, " ".join(tokens), text):
        out = parse_description(candidate)
        assert out is None or isinstance(out, Facts)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_every_fact_set_round_trips(data):
    places = data.draw(st.lists(st.sampled_from(PLACES), unique=True, max_size=3))
    places.sort(key=PLACES.index)
    lamps = tuple(LampFacts(p, data.draw(st.sampled_from(("table", "floor"))), data.draw(st.booleans())) for p in places)
    lit = [lamp.place for lamp in lamps if lamp.lit]
    lights = frozenset((p, s) for p in lit for s in ("wall", "floor") + (("bed",) if data.draw(st.booleans()) else ()))
    window = data.draw(st.booleans())
    reflections = frozenset(p for p in lit if window and data.draw(st.booleans()))
    f = Facts(data.draw(st.sampled_from(("white", "grey", "pink"))), window, data.draw(st.sampled_from(("red", "blue"))),
              data.draw(st.sampled_from(("night", "evening", "day"))), lamps, lights, reflections)
    assert parse_description(render_facts(f)) == f


# ---- the lamp LM ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lm(tiny_lm):
    from editbench.tracks.text.checkpoints import load_lm

    return load_lm(tiny_lm)


def test_lm_loads_offline_as_plain_gpt2_and_refuses_unsafe_folders(tiny_lm, tmp_path):
    from transformers import GPT2LMHeadModel

    from editbench.cli import main
    from editbench.tracks.text.checkpoints import load_lm

    plain = GPT2LMHeadModel.from_pretrained(tiny_lm, local_files_only=True)
    ours = load_lm(tiny_lm)
    ids = torch.tensor([[2, 4, 5, 6]])
    assert torch.equal(plain(ids).logits, ours(ids).logits)  # same weights, same function
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(open(f"{tiny_lm}/config.json").read())
    (bad / "pytorch_model.bin").write_bytes(b"\x80\x02not safetensors")
    with pytest.raises(CheckpointError, match="pickled weights are refused"):
        load_lm(bad)
    weights = open(f"{tiny_lm}/model.safetensors", "rb").read()
    (bad / "model.safetensors").write_bytes(weights[:-100])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_lm(bad)
    assert main(["sample", "--track", "text", "--lm", str(bad), "--caption", "a bedroom"]) == 2


def test_paired_sampling_shares_the_noise(lm):
    caps = ["a bedroom with white walls at night", "a bedroom with a lit floor lamp"] * 4
    noise = lm.make_noise(len(caps), seed=3)
    a = lm.generate_ids(caps, noise)
    assert torch.equal(a, lm.generate_ids(caps, noise))  # same noise, same samples
    assert not torch.equal(a, lm.generate_ids(caps, lm.make_noise(len(caps), seed=4)))
    with Edit("zero", tensors={"d": torch.zeros(lm.config.n_embd)},
              hooks={"transformer.h.0": {"op": "add", "direction": "d"}}).applied(lm):
        assert torch.equal(lm.generate_ids(caps, noise), a)  # an edit that changes nothing keeps the sample


def test_hook_points_identity_is_exact_clamp_changes_and_hooks_are_removed(lm):
    points = lm.hook_points()
    assert {"transformer.drop", "transformer.h.0", "transformer.h.0.attn.c_proj.heads", "transformer.h.0.mlp.act",
            "transformer.h.0.mlp"} <= set(points)
    assert all(p.unit_axis == -1 for p in points.values())
    ids, mask = lm.encode_prompts(["a bedroom with two lamps", "a bedroom"])
    with torch.no_grad():
        base = lm(input_ids=ids, attention_mask=mask).logits
        with intervene(lm, {name: (lambda out: out) for name in points}):
            assert torch.equal(lm(input_ids=ids, attention_mask=mask).logits, base)
        units = points["transformer.h.0.mlp.act"].units
        mask1, value = torch.zeros(units), torch.zeros(units)
        mask1[3], value[3] = 1.0, 5.0
        clamp = Edit("clamp", tensors={"m": mask1, "v": value},
                     hooks={"transformer.h.0.mlp.act": {"op": "clamp", "mask": "m", "value": "v"}})
        with pytest.raises(RuntimeError):
            with clamp.applied(lm):
                assert not torch.equal(lm(input_ids=ids, attention_mask=mask).logits, base)
                raise RuntimeError("inside")
        assert torch.equal(lm(input_ids=ids, attention_mask=mask).logits, base)  # removed, also after an error


def test_cli_sample_text_and_bad_captions(tiny_lm, capsys):
    from editbench.cli import main

    assert main(["sample", "--track", "text", "--lm", tiny_lm, "--caption", "a bedroom at night", "--n", "2"]) == 0
    assert capsys.readouterr().out.count("->") == 2
    assert main(["sample", "--track", "text", "--lm", tiny_lm, "--caption", "a bedroom with a unicorn"]) == 2
    assert "not in the vocabulary" in capsys.readouterr().err
    assert main(["run", "--track", "sound", "--out", "x"]) == 2


def test_training_resumes_where_it_stopped(tmp_path):
    from editbench.tracks.text.train import train_lm

    small = {"batch_size": 4, "n_layer": 1, "n_embd": 16, "n_head": 2, "warmup": 1, "progress": False, "ckpt_every": 2}
    a = train_lm(tmp_path / "a", steps=4, **small)
    train_lm(tmp_path / "b", steps=2, **small)
    b = train_lm(tmp_path / "b", steps=4, resume=True, **small)
    from safetensors.torch import load_file

    wa, wb = load_file(str(a / "lm" / "model.safetensors")), load_file(str(b / "lm" / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    with pytest.raises(Exception, match="--resume"):
        train_lm(tmp_path / "a", steps=6, **small)


def test_text_results_say_which_lm_and_its_gates():
    from editbench.results import provenance
    from editbench.tracks import get_track
    from editbench.tracks.text import lm_hash

    prov = provenance(get_track("text"), {})
    assert prov["track"] == "text" and prov["checkpoints"] == {"lm": lm_hash()}
    assert prov["lm_gates"]["lm parses"] >= 0.99  # the shipped LM's card, as every text result records it
