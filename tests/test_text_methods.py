"""The text track's methods: the checks every method gets on the shipped lamp LM, ROME's rank one, MEMIT's
layers, ITI's last-position shift, the proxy evaluator, and methods that work on both tracks."""

import pytest
import torch

from editbench.cli import main
from editbench.core import Budget, Edit, HookPoint
from editbench.harness.cell import candidate_configs, fit
from editbench.harness.checks import check_method
from editbench.methods import METHODS, resolve
from editbench.tasks import EVIDENCE_SEED, evidence_world, get_task
from editbench.tracks.text.proxy import ERROR_RATE, proxy_read
from editbench.world.descriptions import describe, parse_description, scene_facts
from editbench.world.requests import EditRequest

TEXT_METHODS = sorted(n for n, e in METHODS.entries().items() if e.source == "built-in" and "text" in resolve(n).tracks)


def fitted(session, method, config=None, task="text/unlit_lamps", n=16):
    spec = get_task(task)
    return fit(resolve(method)(config or {}, track="text"), session, session.track.request(spec.request),
               Budget(n, 256, seed=EVIDENCE_SEED), evidence_world(spec))


def test_the_text_track_has_the_methods_of_the_story():
    assert {"rome", "memit", "iti", "neuron_clamp", "steer", "finetune_full", "finetune_lora", "finetune_reward",
            "prompt", "none", "oracle"} <= set(TEXT_METHODS)
    assert {resolve(n).family for n in TEXT_METHODS} == {"edit", "finetune", "prompt", "reference"}


@pytest.mark.parametrize("name", TEXT_METHODS)
def test_text_method_passes_the_checks_every_method_gets(name, shipped_text):
    """Within budget, the shared LM unchanged, reversible bit for bit, saved and loaded with the same
    outputs, deterministic, and fewer lamps described lit on held-out captions of the dev split."""
    checks = check_method(name, session=shipped_text, task="text/unlit_lamps")
    failed = [c for c in checks if c.passed is False]
    assert not failed, failed
    assert {"reversible", "saves and loads", "deterministic", "moves the outputs as requested"} <= {c.name for c in checks}


def test_rome_changes_one_projection_by_rank_one(shipped_text):
    edit = fitted(shipped_text, "rome")
    assert len(edit.deltas) == 1 and edit.deltas[0].endswith(".mlp.c_proj.weight")
    delta = edit.tensors[f"delta.{edit.deltas[0]}"].double()
    s = torch.linalg.svdvals(delta)
    assert s[0] > 0 and s[1] / s[0] < 1e-5  # rank one (up to float32 rounding)
    assert edit.meta["traced"] and len(edit.meta["indirect_effects"]) == shipped_text.models["lm"].config.n_layer
    fixed = fitted(shipped_text, "rome", {"layer": 1})
    assert fixed.deltas == ["transformer.h.1.mlp.c_proj.weight"] and not fixed.meta["traced"]


def test_memit_changes_only_its_layers(shipped_text):
    edit = fitted(shipped_text, "memit", {"layers": "1,2"})
    assert sorted(edit.deltas) == ["transformer.h.1.mlp.c_proj.weight", "transformer.h.2.mlp.c_proj.weight"]
    assert set(edit.meta["memories"]) <= {"table lamp", "floor lamp", "lamp named"} and len(edit.meta["memories"]) >= 2
    ranks = [int(torch.linalg.matrix_rank(edit.tensors[f"delta.{d}"].double(), rtol=1e-5)) for d in edit.deltas]
    assert all(1 <= r <= len(edit.meta["memories"]) for r in ranks)  # one direction per memory at most


def test_the_key_moment_is_cached_by_model_hash(shipped_text, tmp_path, monkeypatch):
    from editbench.methods import _text

    monkeypatch.setenv("EDITBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(_text, "_MOMENTS", {})
    lm = shipped_text.models["lm"]
    first = _text.key_second_moment(lm, 2)
    assert list((tmp_path / "key_moments").glob(f"{_text.model_hash(lm)}-layer2-*.safetensors"))
    monkeypatch.setattr(_text, "_MOMENTS", {})
    assert torch.equal(_text.key_second_moment(lm, 2), first)  # read back from disk, the same floats
    assert torch.allclose(first, first.T) and torch.linalg.eigvalsh(first).min() > -1e-9


def test_iti_shifts_only_the_newest_position():
    d = torch.arange(4.0)
    edit = Edit("x", tensors={"d": d}, hooks={"h": {"op": "add", "direction": "d", "strength": 2.0, "positions": "last"}})
    fn = edit.hook_fn(HookPoint("h", 4, -1), edit.hooks["h"])
    out = fn(torch.zeros(2, 3, 4))
    assert torch.equal(out[:, :-1], torch.zeros(2, 2, 4)) and torch.equal(out[:, -1], (2 * d).expand(2, 4))


def test_the_proxy_misreads_lamp_states_at_its_rate_and_always_the_same_way(world):
    scene = world.scenes(3000, seed=11)
    texts, truth = describe(scene), scene_facts(scene)
    read = proxy_read(texts)
    assert proxy_read(texts) == read  # the same text always reads the same way
    states = [(a.lit, b.lit) for f, t in zip(read, truth, strict=True) for a, b in zip(f.lamps, t.lamps, strict=True)]
    wrong = sum(a != b for a, b in states) / len(states)
    assert abs(wrong - ERROR_RATE) < 0.02
    same_otherwise = all(f.wall == t.wall and f.time == t.time and f.lights == t.lights and
                         [lamp.place for lamp in f.lamps] == [lamp.place for lamp in t.lamps]
                         for f, t in zip(read, truth, strict=True))
    assert same_otherwise
    assert proxy_read(["not a description ."]) == [None]


def test_text_methods_see_the_proxy_not_the_parser(shipped_text):
    spec = get_task("text/unlit_lamps")
    ev = shipped_text.track.build_evidence("samples", shipped_text.models, EditRequest.named("lamps_off"),
                                           Budget(64, 64, seed=1), evidence_world(spec), True)
    assert ev.readings == proxy_read(ev.outputs)
    assert ev.readings != [parse_description(t) for t in ev.outputs]  # some lamp is misread among 64 rooms
    assert ev.evaluator(ev.outputs[:8]) == proxy_read(ev.outputs[:8]) and ev.evaluator.calls == 8


def test_request_on_facts_is_the_world_request(world):
    scene = world.scenes(2000, seed=5)
    for name in EditRequest.NAMES:
        request = EditRequest.named(name)
        assert [request.apply_facts(f) for f in scene_facts(scene)] == scene_facts(request.apply(scene))


def test_one_method_two_tracks_has_per_track_defaults_and_search_spaces():
    steer = resolve("steer")
    assert steer().config.layer == "blocks.0" and steer(track="text").config.layer == "transformer.h.1"
    assert steer({"layer": "transformer.h.3"}, track="text").config.layer == "transformer.h.3"
    configs = candidate_configs(steer, 4, track="text")
    assert configs[0] == {} and all(c["layer"].startswith("transformer.h.") for c in configs[1:])
    assert all(c["layer"] in ("stem", "blocks.0", "blocks.1") for c in candidate_configs(steer, 4, track="image")[1:])


def test_a_text_only_method_on_an_image_task_is_a_usage_error(capsys):
    assert main(["methods", "check", "rome", "--task", "unlit_lamps"]) == 2
    assert "text" in capsys.readouterr().err
