"""The text track's methods: the checks every method gets on the shipped lamp LM, ROME's rank one, MEMIT's
layers, ITI's last-position shift, the proxy evaluator, and methods that work on both tracks."""

import pytest
import torch

from editbench.benchmarks import EVIDENCE_SEED, evidence_world, get_task
from editbench.cli import main
from editbench.core import Budget, Edit, HookPoint
from editbench.harness.cell import default_config, fit
from editbench.harness.checks import check_method
from editbench.methods import METHODS, resolve
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


def test_rome_changes_one_projection_by_rank_one_and_writes_the_target_at_the_edited_key(shipped_text):
    from editbench.editors._mlp_rewrite import edit_data

    edit = fitted(shipped_text, "rome")
    assert edit.deltas == ["transformer.h.3.mlp.c_proj.weight"] and not edit.meta["traced"]  # the fixed layer
    delta = edit.tensors[f"delta.{edit.deltas[0]}"].double()
    s = torch.linalg.svdvals(delta)
    assert s[0] > 0 and s[1] / s[0] < 1e-5  # rank one (up to float32 rounding)
    # at the anchor (the first context's subject), the edited LM's likeliest next word is the object asked for
    lm = shipped_text.models["lm"]
    spec = get_task("text/unlit_lamps")
    ev = shipped_text.track.build_evidence("samples", shipped_text.models, EditRequest.named(spec.request),
                                           Budget(16, 0, seed=EVIDENCE_SEED), evidence_world(spec), False)
    data = edit_data(lm, ev, EditRequest.named(spec.request))
    row, col = data.subjects["lamp introduced"].nonzero()[0].tolist()
    target = int(data.labels[row, col + 1])
    with torch.no_grad():
        before = lm(input_ids=data.ids[row:row + 1]).logits[0, col]
        with edit.applied(lm):
            after = lm(input_ids=data.ids[row:row + 1]).logits[0, col]
    assert int(after.argmax()) == target and after.log_softmax(-1)[target] > before.log_softmax(-1)[target]
    traced = fitted(shipped_text, "rome", {"layer": -1})  # tracing per fit remains an option
    assert traced.meta["traced"] and len(traced.meta["indirect_effects"]) == lm.config.n_layer


def test_no_text_editor_default_depends_on_a_per_fit_trace():
    assert resolve("rome")().config.layer >= 0 and resolve("memit")().config.layers.strip()
    assert 3 in resolve("rome").search_space["layer"].values and "2,3" in resolve("memit").search_space["layers"].values


def test_memit_spreads_the_residual_over_its_layers_as_the_reference(shipped_text, monkeypatch):
    """With a negligible second moment the first of k layers writes exactly 1/k of each memory's residual at its
    keys (Meng et al. 2023, Alg. 1: R / (L - l + 1)), and after the last layer the whole target is reached."""
    from editbench.editors import _mlp_rewrite, memit

    lm = shipped_text.models["lm"]
    g = torch.Generator().manual_seed(0)
    fixed = {}

    def known(lm_, data, layer, masks, *args, **kwargs):
        fixed["deltas"] = [torch.randn(lm.config.n_embd, generator=g) for _ in masks]
        return fixed["deltas"], [torch.zeros(lm.config.n_embd) for _ in masks], {}

    monkeypatch.setattr(memit, "optimise_values", known)
    edit = fitted(shipped_text, "memit", {"layers": "1,2,3", "mom2_weight": 1e-9, "locality": "subject"})
    spec = get_task("text/unlit_lamps")
    ev = shipped_text.track.build_evidence("samples", shipped_text.models, EditRequest.named(spec.request),
                                           Budget(16, 0, seed=EVIDENCE_SEED), evidence_world(spec), False)
    data = _mlp_rewrite.edit_data(lm, ev, EditRequest.named(spec.request))
    masks = [data.subjects[k] for k in edit.meta["memories"]]
    K = torch.stack(_mlp_rewrite.mean_at(lm, "transformer.h.1.mlp.act", data.ids, data.mask, masks))
    first = K @ edit.tensors["delta.transformer.h.1.mlp.c_proj.weight"].double()
    R = torch.stack(fixed["deltas"]).double()
    assert torch.allclose(first, R / 3, rtol=1e-3, atol=1e-3 * float(R.abs().max()))
    assert edit.meta["unreached_share"] < 0.05


def test_iti_shifts_kept_heads_by_alpha_sigma_along_a_unit_direction(shipped_text):
    from editbench.tracks.text.positions import activations_at, stated

    lm = shipped_text.models["lm"]
    edit = fitted(shipped_text, "iti", {"k": 4, "alpha": 3.0})
    dim = lm.config.n_embd // lm.config.n_head
    spec = get_task("text/unlit_lamps")
    ev = shipped_text.track.build_evidence("samples", shipped_text.models, EditRequest.named(spec.request),
                                           Budget(16, 0, seed=EVIDENCE_SEED), evidence_world(spec), False)
    d = stated(lm, ev)
    assert d.classes()[0] == d.classes()[1]  # every lamp sentence read lit and unlit
    for h in edit.meta["heads"]:
        point = f"transformer.h.{h['layer']}.attn.c_proj.heads"
        v = edit.tensors[f"direction.{point}"][h["head"] * dim:(h["head"] + 1) * dim].double()
        x = activations_at(lm, [point], d)[point][:, h["head"] * dim:(h["head"] + 1) * dim].double()
        unit = x[~d.lit].mean(0) - x[d.lit].mean(0)
        unit = unit / unit.norm()
        sigma = (x @ unit).std()
        assert torch.allclose(v, sigma * unit, rtol=1e-4, atol=1e-6)  # sigma times the unit mass-mean direction
        assert edit.hooks[point]["strength"] == 3.0 and edit.hooks[point]["positions"] == "last"


@pytest.mark.parametrize("n", [4, 64])
def test_steering_moves_the_hook_point_by_strength_standard_deviations_at_every_budget(shipped_text, n):
    from editbench.tracks.text.positions import activations_at, stated

    lm = shipped_text.models["lm"]
    layer = "transformer.h.2"
    edit = fitted(shipped_text, "steer", {"layer": layer, "strength": 1.5}, n=n)
    spec = get_task("text/unlit_lamps")
    ev = shipped_text.track.build_evidence("samples", shipped_text.models, EditRequest.named(spec.request),
                                           Budget(n, 0, seed=EVIDENCE_SEED), evidence_world(spec), False)
    d = stated(lm, ev)
    before = activations_at(lm, [layer], d)[layer].double()
    with edit.applied(lm):
        after = activations_at(lm, [layer], d)[layer].double()
    shift = (after - before).mean(0)
    unit = shift / shift.norm()
    assert torch.allclose(after - before, shift.expand_as(before), atol=1e-4)  # the same push everywhere
    assert float(shift.norm() / (before @ unit).std()) == pytest.approx(1.5, rel=1e-3)
    mean_diff = before[~d.lit].mean(0) - before[d.lit].mean(0)
    assert torch.allclose(unit, mean_diff / mean_diff.norm(), atol=1e-4)


def test_the_neuron_clamp_sets_neurons_beyond_the_unlit_mean(shipped_text):
    edit = fitted(shipped_text, "neuron_clamp", {"k": 16, "quantile": 0.9})
    mean = fitted(shipped_text, "neuron_clamp", {"k": 16, "value": "mean"})
    layer = edit.config["layer"]
    units = edit.meta["units"]
    assert mean.meta["units"] == units
    q, m = edit.tensors[f"value.{layer}"][units], mean.tensors[f"value.{layer}"][units]
    sep = edit.tensors["separation"][units]
    # unlit above lit (separation < 0): the upper quantile lies above the mean; unlit below: the lower one below
    assert bool(((q - m) * -sep.sign() >= 0).all()) and bool((q != m).any())


def test_causal_trace_restoring_the_last_residual_at_the_decision_restores_everything(shipped_text):
    from editbench.tracks.text.causal_trace import causal_trace

    trace = causal_trace(shipped_text.models["lm"], n=24, draws=2)
    last = trace["effects"]["residual"]["decision"][-1]["mean"]
    assert last == pytest.approx(trace["p_clean"] - trace["p_corrupted"], abs=2e-3)
    assert 0 <= trace["layer"] < 4 and trace["layers"][-1] == trace["layer"]
    assert set(trace["effects"]["mlp"]) == {"caption lamp words", "caption end", "description so far", "decision"}


def test_the_shipped_trace_is_the_model_cards(shipped_text):
    import json

    from editbench.tracks.text.checkpoints import ASSETS
    from editbench.tracks.text.key_moments import model_hash

    trace = json.loads((ASSETS / "trace.json").read_text())
    assert trace["model_hash"] == model_hash(shipped_text.models["lm"])
    assert trace["n_facts"] >= 100 and trace["draws"] >= 5


def test_memit_changes_only_its_layers(shipped_text):
    edit = fitted(shipped_text, "memit", {"layers": "1,2"})
    assert sorted(edit.deltas) == ["transformer.h.1.mlp.c_proj.weight", "transformer.h.2.mlp.c_proj.weight"]
    assert set(edit.meta["memories"]) <= {"table lamp", "floor lamp", "lamp named"} and len(edit.meta["memories"]) >= 2
    ranks = [int(torch.linalg.matrix_rank(edit.tensors[f"delta.{d}"].double(), rtol=1e-5)) for d in edit.deltas]
    assert all(1 <= r <= len(edit.meta["memories"]) for r in ranks)  # one direction per memory at most


def test_the_key_moment_is_cached_by_model_hash(shipped_text, tmp_path, monkeypatch):
    from editbench.tracks.text import key_moments as _text

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
    assert all(v.startswith("transformer.h.") for v in steer.space("text")["layer"].values)
    assert steer.space("image")["layer"].values == ("stem", "blocks.0", "blocks.1")
    assert default_config(steer, "text")["layer"] == "transformer.h.1"


def test_a_text_only_method_on_an_image_task_is_a_usage_error(capsys):
    assert main(["methods", "check", "rome", "--task", "unlit_lamps"]) == 2
    assert "text" in capsys.readouterr().err


def test_reward_finetuning_stops_training_once_its_total_steps_are_spent(shipped_text, monkeypatch):
    """Many rounds of expert iteration share one cap on the whole run's optimiser steps: the cap is spent exactly,
    and no round trains or samples after it."""
    from editbench.baselines import finetune_reward

    monkeypatch.setattr(finetune_reward, "TEXT_TOTAL_STEPS", 12)
    edit = fitted(shipped_text, "finetune_reward", {"rounds": 16, "epochs": 4.0, "lr": 1e-4})
    log = edit.meta["rounds"]
    trained = [entry.get("steps", 0) for entry in log]
    assert sum(trained) == 12 == edit.cost().steps
    assert len(log) < 16 and trained[-1] > 0  # stopped at the round that spent the cap


def test_reward_finetuning_epochs_end_where_every_round_trains_one_step():
    """The searched epochs' lower end is the method's floor, not the search's edge: there a round trains one step
    even with every one of the suites' evaluator calls kept, and any more epochs buy a second step."""
    from editbench.baselines.finetune_reward import TEXT_ROUNDS, FinetuneReward
    from editbench.core.schedule import schedule
    from editbench.core.search import at_edge

    space = FinetuneReward.space("text")
    batch = resolve("finetune_reward")({}, track="text").config.batch_size
    lo = space["epochs"].lo
    assert schedule(TEXT_ROUNDS, batch, lo, 1, 10**6).steps == 1
    assert schedule(TEXT_ROUNDS, batch, lo * 1.01, 1, 10**6).steps == 2
    assert at_edge(space, {"lr": 1e-4, "epochs": lo, "rounds": 12}) == []
    assert at_edge(space, {"lr": 1e-4, "epochs": 16.0, "rounds": 12}) == ["epochs"]


def test_reward_finetuning_runs_no_more_rounds_than_it_has_evaluator_calls(shipped_text):
    """Rounds beyond the evaluator calls are the online limit, one description per call: every round samples and
    reads one, none is skipped; the searched rounds end at the suites' calls (a hard end of the space)."""
    from editbench.baselines.finetune_reward import TEXT_ROUNDS, FinetuneReward
    from editbench.harness import Cell

    assert FinetuneReward.space("text")["rounds"].hi == TEXT_ROUNDS == Cell("text/unlit_lamps", "none", 1, 0).evaluator_calls
    spec = get_task("text/unlit_lamps")
    edit = fit(resolve("finetune_reward")({"rounds": 100, "epochs": 0.1, "lr": 1e-5}, track="text"), shipped_text,
               shipped_text.track.request(spec.request), Budget(4, 12, seed=EVIDENCE_SEED), evidence_world(spec))
    log = edit.meta["rounds"]
    assert len(log) == 12 and all(entry["sampled"] == 1 for entry in log)


def test_prompting_searches_what_the_request_asks_on_samples_not_captions(shipped_text):
    """A request for the leftmost lamp searches clauses with an unlit lamp on the left and the rest lit, each
    description read beside the original caption's (same noise); at n = 1 it reads as many samples as its calls
    allow, not one per caption."""
    from editbench.baselines.prompt import CANDIDATES, candidates

    leftmost, every = EditRequest.named("leftmost_off"), EditRequest.named("lamps_off")
    assert candidates(every) == CANDIDATES
    assert all("unlit" in c and "on the left" in c and "unlit" not in c.split("on the left")[1]
               for c in candidates(leftmost))
    assert all("on the right" in c for c in candidates(EditRequest.named("rightmost_off")))
    spec = get_task("text/single_lamp")
    edit = fit(resolve("prompt")({}, track="text"), shipped_text, shipped_text.track.request(spec.request),
               Budget(1, 16, seed=EVIDENCE_SEED), evidence_world(spec))
    assert edit.cost().forward == 16 and set(edit.meta["scores"]) == set(candidates(leftmost))
    assert edit.meta["clause"] in candidates(leftmost)
