import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from editbench.api import Budget, Edit, EditRequest, MethodError, build_evidence, edited_generate, fit_method
from editbench.cli import main
from editbench.models import load_generator, load_meter
from editbench.registry import BUILTIN, RegistryError, available, resolve
from editbench.world import World

ROOT = Path(__file__).resolve().parents[1]
TINY_G = {"channels": [32, 32, 16, 16, 8], "z_dim": 16, "w_dim": 32, "text_dim": 16, "text_layers": 1}
TINY_D = {"channels": [8, 16, 16, 16], "text_dim": 16}
FAST = {"finetune_full": {"steps": 2, "batch_size": 4}, "finetune_lora": {"steps": 2, "batch_size": 4},
        "finetune_reward": {"steps": 2, "batch_size": 4}}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from editbench.models.train import train_generator

    out = train_generator(tmp_path_factory.mktemp("tiny") / "run", steps=2, batch_size=4, bf16=False,
                          generator_config=TINY_G, discriminator_config=TINY_D, progress=False)
    return load_generator(out / "generator"), load_meter(), World()


def _evidence(method, G, M, W, request, budget):
    ev = build_evidence(method.consumes, G, M, W, request, budget, method.uses_evaluator)
    if ev.kind == "samples":  # an untrained tiny generator draws no lamps: give editors real lamp light to find
        ev.readings = M.read(W.sample(budget.n, budget.seed).images)
    return ev


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_method_is_reversible_saveable_and_within_budget(name, tiny, tmp_path):
    G, M, W = tiny
    method = resolve(name)(FAST.get(name, {}))
    request = EditRequest.named("lamps_off")
    budget = Budget(n=8, evaluator_calls=64, seed=1)
    edit = method.run(G, request, _evidence(method, G, M, W, request, budget), budget)
    caps = W.sample(4, seed=9).captions
    z = G.make_latents(4, seed=9)
    before = G.generate(caps, z=z)
    edited = edited_generate(edit, G, caps, z)
    assert torch.equal(G.generate(caps, z=z), before)  # removed: bit for bit
    if name in ("unit_clamp", "spatial_clamp", "steer", "rank_one", "finetune_full", "finetune_lora", "finetune_reward"):
        assert not torch.equal(edited, before), "the edit changes nothing"
    edit.save(tmp_path / "edit")
    loaded = Edit.load(tmp_path / "edit")
    assert type(loaded) is type(edit)
    assert torch.equal(edited_generate(loaded, G, caps, z), edited)
    cost = edit.cost()
    assert cost.fit_seconds > 0 and cost.examples_used <= budget.n
    assert cost.evaluator_calls <= budget.evaluator_calls
    if method.uses_evaluator:
        assert cost.evaluator_calls > 0
    if name.startswith("finetune") or name == "rank_one":
        assert cost.params_changed > 0


def test_applied_restores_after_an_exception(tiny):
    G, M, W = tiny
    request = EditRequest.named("lamps_off")
    budget = Budget(n=8, seed=1)
    method = resolve("rank_one")({"layer": "blocks.2.conv2"})
    edit = method.run(G, request, _evidence(method, G, M, W, request, budget), budget)
    weight = G.blocks[2].conv2.weight.detach().clone()
    with pytest.raises(KeyError):
        with edit.applied(G):
            assert not torch.equal(G.blocks[2].conv2.weight, weight)
            raise KeyError("inside")
    assert torch.equal(G.blocks[2].conv2.weight, weight)


def test_evaluator_budget_is_enforced(tiny):
    G, M, W = tiny
    method = resolve("prompt")()
    request = EditRequest.named("lamps_off")
    ev = _evidence(method, G, M, W, request, Budget(n=4, evaluator_calls=3))
    with pytest.raises(MethodError, match="evaluator budget exceeded"):
        ev.evaluator(torch.rand(4, 3, 64, 64))


def test_requests_target_the_right_lamps(world):
    scene = world.scenes(200, seed=3)
    left = EditRequest.named("leftmost_off").target_lamps(scene)
    right = EditRequest.named("rightmost_off").target_lamps(scene)
    has = scene.n_lamps > 0
    assert torch.all(left.sum(1)[has] == 1) and torch.all(left[:, 0] == has)
    assert torch.all(right.sum(1)[has] == 1)
    off = EditRequest.named("lamps_off").apply(scene)
    assert not off.lamp_on.any() and torch.equal(off.lamp_present, scene.lamp_present)


# At its default (20 steps of 4), the GAN objective through LoRA adapters does not reliably lower lamp
# light with 16 examples; 40 steps (in its search space, and what tuning picks on three of the four tasks)
# does. Every other method is checked at its default.
DIRECTION_CONFIGS = {"finetune_lora": {"steps": 40}}


@pytest.mark.parametrize("name", sorted(set(BUILTIN) - {"none"}))
def test_every_method_lowers_lamp_light_on_the_shipped_generator(name):
    G, M, W = load_generator(), load_meter(), World()
    request = EditRequest.named("lamps_off")
    method = resolve(name)(DIRECTION_CONFIGS.get(name))
    held = W.sample(24, seed=2**42 + 1)
    if method.renders_world:
        before, after = held.images, W.render(request.apply(held.scene))[0]
    else:
        edit = fit_method(method, G, M, W, request, Budget(n=16, evaluator_calls=256, seed=0))
        z = G.make_latents(24, seed=5)
        before, after = G.generate(held.captions, z=z), edited_generate(edit, G, held.captions, z)
    light_before = M.read(before).light1.sum((1, 2)).mean()
    light_after = M.read(after).light1.sum((1, 2)).mean()
    assert light_after < light_before, (name, float(light_before), float(light_after))  # a direction check


# ---- registry ----------------------------------------------------------------------------------------
def test_listing_imports_no_method():
    code = ("import sys; from editbench.registry import available; assert len(available()) >= 10; "
            "print(sorted(m for m in sys.modules if m.startswith(('editbench.editors.', 'editbench.baselines.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_methods_list_shows_all_builtins(capsys):
    assert main(["methods", "list"]) == 0
    out = capsys.readouterr().out
    for name in BUILTIN:
        assert name in out
    assert {s.family for s in available().values() if s.family} == {"edit", "finetune", "prompt", "reference"}


def test_method_from_file_and_broken_file(tmp_path, capsys):
    good = tmp_path / "mine.py"
    good.write_text((ROOT / "examples/plugin/editbench_dim_lamps/__init__.py").read_text())
    cls = resolve(f"{good}:DimLamps")
    assert cls.name == "dim_lamps"
    bad = tmp_path / "bad.py"
    bad.write_text("raise ImportError('this method is broken')\n")
    with pytest.raises(RegistryError, match="failed to import"):
        resolve(f"{bad}:X")
    assert main(["edit", "--method", f"{bad}:X", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert "this method is broken" in err and "\n" not in err
    with pytest.raises(RegistryError, match="unknown method"):
        resolve("unit_clmp")
    notmethod = tmp_path / "nm.py"
    notmethod.write_text("class X:\n    pass\n")
    with pytest.raises(RegistryError, match="not a subclass"):
        resolve(f"{notmethod}:X")


def test_entry_point_plugin_is_discovered(tmp_path, monkeypatch, capsys):
    # What `pip install examples/plugin` writes: the package and a dist-info with entry_points.txt.
    site = tmp_path / "site"
    dist = site / "editbench_dim_lamps-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: editbench-dim-lamps\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[editbench.methods]\ndim_lamps = editbench_dim_lamps:DimLamps\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(ROOT / "examples/plugin"))
    assert "dim_lamps" in available()
    assert main(["methods", "list"]) == 0
    out = capsys.readouterr().out
    assert "dim_lamps" in out and "entry point (editbench-dim-lamps 0.1.0)" in out
    assert resolve("dim_lamps").family == "edit"


def test_cli_edit_writes_grid_and_rejects_bad_input(tmp_path, capsys):
    out = tmp_path / "g.png"
    assert main(["edit", "--method", "steer", "--n", "8", "--eval-n", "8", "--show", "4", "--out", str(out),
                 "--save-edit", str(tmp_path / "e")]) == 0
    assert out.exists() and (tmp_path / "e" / "edit.safetensors").exists()
    assert "less)" in capsys.readouterr().out
    assert main(["edit", "--method", "steer", "--request", "lamps_brighter", "--out", str(out)]) == 2
    assert main(["edit", "--method", "steer", "--config", '{"strenght": 2}', "--out", str(out)]) == 2
    assert "unknown config field" in capsys.readouterr().err


def test_method_that_returns_nan_is_refused(tmp_path, capsys):
    f = tmp_path / "nan.py"
    f.write_text(textwrap.dedent("""
        import torch
        from editbench.api import Edit, Method
        class NanEdit(Method):
            name = "nan_edit"
            consumes = "none"
            def fit(self, model, request, evidence, budget):
                return Edit(self.name, tensors={"direction": torch.full((16,), float("nan"))},
                            hooks={"blocks.2": {"op": "add", "direction": "direction"}})
    """))
    assert main(["edit", "--method", f"{f}:NanEdit", "--out", str(tmp_path / "x.png")]) == 2
    assert "non-finite" in capsys.readouterr().err


def test_lora_is_deterministic(tiny):
    G, M, W = tiny
    request = EditRequest.named("lamps_off")
    budget = Budget(n=8, seed=2)
    method = resolve("finetune_lora")(FAST["finetune_lora"])
    torch.manual_seed(123)
    a = method.run(G, request, _evidence(method, G, M, W, request, budget), budget)
    torch.manual_seed(456)
    b = method.run(G, request, _evidence(method, G, M, W, request, budget), budget)
    assert a.tensors.keys() == b.tensors.keys()
    assert all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)


def test_method_with_unknown_family_is_refused(tmp_path):
    f = tmp_path / "fam.py"
    f.write_text("from editbench.api import Method\nclass X(Method):\n    family = 'magic'\n")
    with pytest.raises(RegistryError, match="family 'magic'"):
        resolve(f"{f}:X")
