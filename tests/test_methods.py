import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from editbench.benchmarks import evidence_world, get_task
from editbench.cli import main
from editbench.core import Budget, Edit, MethodError, UnknownNameError, UserError
from editbench.core.registry import Registry, RegistryError, import_target
from editbench.harness import Session
from editbench.harness.checks import check_method
from editbench.methods import METHODS, resolve
from editbench.world.requests import EditRequest

ROOT = Path(__file__).resolve().parents[1]
BUILTIN = sorted(n for n, e in METHODS.entries().items() if e.source == "built-in")
IMAGE_METHODS = [n for n in BUILTIN if "image" in resolve(n).tracks]

# At its default (5 epochs: 20 steps of 4), the GAN objective through LoRA adapters does not reliably lower lamp
# light with 16 examples; 10 epochs (40 steps, in its search space) does. Every other method is checked at its default.
CHECK_CONFIGS = {"finetune_lora": {"epochs": 10.0}}


@pytest.mark.parametrize("name", IMAGE_METHODS)
def test_builtin_method_passes_the_checks_every_method_gets(name, shipped):
    """Fits within budget, leaves the shared generator unchanged, changes outputs and restores them bit for
    bit, saves and loads, is deterministic, and lowers lamp light on held-out samples of the shipped
    generator (the same checks as `editbench methods check`)."""
    checks = check_method(name, CHECK_CONFIGS.get(name), session=shipped)
    failed = [c for c in checks if c.passed is False]
    assert not failed, failed
    names = {c.name for c in checks}
    assert {"reversible", "saves and loads", "deterministic", "moves the outputs as requested"} <= names


def test_applied_restores_after_an_exception(tiny_gen):
    G = Session("image", {"generator": tiny_gen}).edited_model
    weight = G.blocks[2].conv2.weight.detach().clone()
    edit = Edit("x", tensors={"delta.blocks.2.conv2.weight": torch.ones_like(weight)}, deltas=["blocks.2.conv2.weight"])
    with pytest.raises(KeyError):
        with edit.applied(G):
            assert not torch.equal(G.blocks[2].conv2.weight, weight)
            raise KeyError("inside")
    assert torch.equal(G.blocks[2].conv2.weight, weight)


def test_hooks_broadcast_along_the_declared_unit_axis(tiny_gen):
    from editbench.core import HookPoint

    conv = HookPoint("conv", units=4, unit_axis=1, positions=(2, 2))
    seq = HookPoint("resid", units=4, unit_axis=-1, positions=(3,))
    assert conv.broadcast(torch.ones(4), torch.zeros(2, 4, 2, 2)).shape == (4, 1, 1)
    assert seq.broadcast(torch.ones(4), torch.zeros(2, 3, 4)).shape == (4,)
    with pytest.raises(ValueError, match="does not broadcast"):
        conv.broadcast(torch.ones(4, 2), torch.zeros(2, 4, 2, 2))
    G = Session("image", {"generator": tiny_gen}).edited_model
    with pytest.raises(MethodError, match="not a hook point"):
        with Edit("x", tensors={"d": torch.ones(8)}, hooks={"to_rgb": {"op": "add", "direction": "d"}}).applied(G):
            pass


def test_evaluator_budget_is_enforced(tiny_gen):
    session = Session("image", {"generator": tiny_gen})
    ev = session.track.build_evidence("captions", session.models, EditRequest.named("lamps_off"),
                                      Budget(n=4, evaluator_calls=3), evidence_world(get_task("unlit_lamps")), True)
    with pytest.raises(MethodError, match="evaluator budget exceeded"):
        ev.evaluator(torch.rand(4, 3, 64, 64))


def test_requests_target_the_right_lamps(world):
    scene = world.scenes(200, seed=3)
    left = EditRequest.named("leftmost_off").target_lamps(scene)
    right = EditRequest.named("rightmost_off").target_lamps(scene)
    has = scene.n_lamps > 0
    assert torch.all(left.sum(1)[has] == 1) and torch.all(left[:, 0] == has)
    assert torch.all(right.sum(1)[has] == 1)
    region = EditRequest(target="region", region=(0.0, 0.5)).target_lamps(scene)
    assert torch.equal(region, scene.lamp_present & (scene.lamp_x <= 0.5))
    off = EditRequest.named("lamps_off").apply(scene)
    assert not off.lamp_on.any() and torch.equal(off.lamp_present, scene.lamp_present)


# ---- registry ----------------------------------------------------------------------------------------
def test_listing_imports_no_method():
    code = ("import sys; from editbench.methods import METHODS; assert len(METHODS.names()) >= 10; "
            "print(sorted(m for m in sys.modules if m.startswith(('editbench.methods.', 'editbench.editors.', "
            "'editbench.baselines.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_built_ins_live_in_the_folder_of_their_family():
    """Editors are the edit family, baselines the others; a built-in whose family contradicts its folder is refused."""
    from editbench import methods

    for name in BUILTIN:
        folder = resolve(name).__module__.split(".")[1]
        assert folder == ("editors" if resolve(name).family == "edit" else "baselines"), name
    wrong = type("Misfiled", (resolve("finetune_full"),), {"__module__": "editbench.editors.misfiled", "name": "misfiled"})
    with pytest.raises(RegistryError, match="editbench.editors is of family 'finetune'"):
        methods._check("misfiled", wrong)
    methods._check("misfiled", type("Fine", (resolve("finetune_full"),), {"__module__": "editbench.baselines.x",
                                                                        "name": "misfiled"}))


def test_methods_list_shows_all_builtins(capsys):
    assert main(["methods", "list"]) == 0
    out = capsys.readouterr().out
    for name in BUILTIN:
        assert name in out
    assert {resolve(n).family for n in BUILTIN} == {"edit", "finetune", "prompt", "reference"}


def test_registry_checks_at_registration():
    reg = Registry("thing", check=lambda name, obj: None)
    reg.add("a", "editbench.editors.steer:METHOD")
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("a", "editbench.baselines.none:METHOD")
    with pytest.raises(UnknownNameError, match="did you mean"):
        reg.get("aa")
    methods = Registry("method", check=METHODS.check)
    methods.add("not_steer", "editbench.editors.steer:METHOD")
    with pytest.raises(RegistryError, match="is named 'steer'"):
        methods.get("not_steer")


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
    with pytest.raises(UnknownNameError, match="unknown method"):
        resolve("unit_clmp")
    notmethod = tmp_path / "nm.py"
    notmethod.write_text("class X:\n    pass\n")
    with pytest.raises(RegistryError, match="not a subclass"):
        resolve(f"{notmethod}:X")
    notrack = tmp_path / "nt.py"
    notrack.write_text("from editbench.core import Method\nclass X(Method):\n    name = 'x'\n    tracks = ('smell',)\n")
    with pytest.raises(RegistryError, match="unknown track"):
        resolve(f"{notrack}:X")


def test_entry_point_plugin_is_discovered(tmp_path, monkeypatch, capsys):
    # What `pip install examples/plugin` writes: the package and a dist-info with entry_points.txt.
    site = tmp_path / "site"
    dist = site / "editbench_dim_lamps-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: editbench-dim-lamps\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[editbench.methods]\ndim_lamps = editbench_dim_lamps:DimLamps\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(ROOT / "examples/plugin"))
    assert "dim_lamps" in METHODS
    assert main(["methods", "list"]) == 0
    out = capsys.readouterr().out
    assert "dim_lamps" in out and "entry point (editbench-dim-lamps 0.1.0)" in out
    assert resolve("dim_lamps").family == "edit"


def test_cli_edit_writes_grid_through_the_scorer_and_rejects_bad_input(tmp_path, capsys):
    out = tmp_path / "g.png"
    assert main(["edit", "--method", "steer", "--n", "8", "--eval-n", "8", "--show", "4", "--out", str(out),
                 "--save-edit", str(tmp_path / "e")]) == 0
    assert out.exists() and (tmp_path / "e" / "edit.safetensors").exists()
    printed = capsys.readouterr().out
    assert "primary" in printed and "efficacy" in printed
    assert main(["edit", "--method", "steer", "--task", "lamps_brighter", "--out", str(out)]) == 2
    assert main(["edit", "--method", "steer", "--config", '{"strenght": 2}', "--out", str(out)]) == 2
    assert "unknown config field" in capsys.readouterr().err


def test_method_that_returns_nan_is_refused(tmp_path, capsys):
    f = tmp_path / "nan.py"
    f.write_text(textwrap.dedent("""
        import torch
        from editbench.core import Edit, Method
        class NanEdit(Method):
            name = "nan_edit"
            consumes = "none"
            def fit(self, model, request, evidence, budget):
                return Edit(self.name, tensors={"direction": torch.full((16,), float("nan"))},
                            hooks={"blocks.2": {"op": "add", "direction": "direction"}})
    """))
    assert main(["edit", "--method", f"{f}:NanEdit", "--out", str(tmp_path / "x.png")]) == 2
    assert "non-finite" in capsys.readouterr().err


def test_method_with_unknown_family_is_refused(tmp_path):
    f = tmp_path / "fam.py"
    f.write_text("from editbench.core import Method\nclass X(Method):\n    name = 'x'\n    family = 'magic'\n")
    with pytest.raises(RegistryError, match="family 'magic'"):
        resolve(f"{f}:X")


# ---- methods check: what a method author runs ---------------------------------------------------------
def test_methods_check_passes_a_good_method(tmp_path, capsys):
    good = tmp_path / "dim.py"
    good.write_text((ROOT / "examples/plugin/editbench_dim_lamps/__init__.py").read_text())
    assert main(["methods", "check", f"{good}:DimLamps", "--n", "8"]) == 0
    out = capsys.readouterr().out
    assert "all checks passed" in out and "reversible" in out and "deterministic" in out


def test_methods_check_fails_a_broken_method(tmp_path, capsys):
    f = tmp_path / "broken.py"
    f.write_text(textwrap.dedent("""
        import torch
        from editbench.core import Edit, Method

        class Noisy(Method):  # a random direction from the global generator: not the same edit twice
            name = "noisy"
            def fit(self, model, request, evidence, budget):
                return Edit(self.name, tensors={"d": torch.randn(model.hook_points()["blocks.0"].units)},
                            hooks={"blocks.0": {"op": "add", "direction": "d"}})

        class Mutates(Method):
            name = "mutates"
            consumes = "none"
            def fit(self, model, request, evidence, budget):
                with torch.no_grad():
                    next(model.parameters()).add_(1e-3)  # edits the shared model instead of a copy
                return Edit(self.name)
    """))
    assert main(["methods", "check", f"{f}:Noisy", "--n", "4"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  deterministic" in out and "check(s) failed" in out
    assert main(["methods", "check", f"{f}:Mutates", "--n", "4"]) == 1
    assert "FAIL  leaves the shared model unchanged" in capsys.readouterr().out
    assert main(["methods", "check", "unit_clmp"]) == 2
    assert main(["methods", "check", "unit_clamp", "--task", "text/unlit_lamps"]) == 2  # unit_clamp: images only


def test_an_edit_saved_before_the_methods_moved_loads_and_scores_the_same(shipped):
    """Saved edits name their class by module path; one saved by editbench 0.3 (``editbench.methods.spatial_clamp``,
    now ``editbench.editors.spatial_clamp``) loads as that class and scores as it did when it was saved."""
    import json
    import warnings
    from pathlib import Path

    from editbench.benchmarks import get_task
    from editbench.benchmarks.scoring import score
    from editbench.core import Edit
    from editbench.editors.spatial_clamp import SpatialClampEdit

    saved = Path(__file__).parent / "data" / "edit-0.3-spatial_clamp"
    assert json.loads((saved / "edit.json").read_text())["edit_class"] == "editbench.methods.spatial_clamp:SpatialClampEdit"
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        edit = Edit.load(saved)
    assert type(edit) is SpatialClampEdit
    then = json.loads((saved / "score.json").read_text())
    now = score(get_task(then["task"]), edit, shipped, split=then["split"], n=then["n"], n_boot=then["n_boot"])
    assert now["primary"] == pytest.approx(then["primary"], abs=1e-3)
    for part, values in then["per_image"].items():
        assert now["per_image"][part] == pytest.approx(values, abs=1e-3, nan_ok=True)


def test_an_edit_of_a_file_method_loads_in_another_process_and_fails_in_one_line_without_it(tmp_path):
    """The module a file reference imports as is named by the file's path, the same in every process, and a
    saved edit names its class by the file itself; an edit whose class cannot be imported is one line."""
    f = tmp_path / "mine.py"
    f.write_text("from editbench.api import Edit\n\nclass MyEdit(Edit):\n    pass\n")
    cls = import_target(f"{f}:MyEdit")
    cls("mine", {}, tensors={"d": torch.ones(3)}).save(tmp_path / "edit")
    assert json.loads((tmp_path / "edit" / "edit.json").read_text())["edit_class"] == f"{f.resolve()}:MyEdit"
    code = (f"from editbench.core import Edit; e = Edit.load({str(tmp_path / 'edit')!r}); "
            "print(type(e).__name__, e.tensors['d'].sum().item())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["MyEdit", "3.0"]
    f.unlink()
    sys.modules.pop(cls.__module__)
    with pytest.raises(UserError, match="cannot be loaded here") as err:
        Edit.load(tmp_path / "edit")
    assert "\n" not in str(err.value)


def test_a_cell_of_an_outside_method_is_keyed_by_its_code(tmp_path):
    """Editing a file method's source gives its cells new keys (a rerun recomputes them, never "already
    done"); a built-in's key holds no code hash (the package version keys it)."""
    from editbench.harness import Cell
    from editbench.methods import method_code

    f = tmp_path / "dim.py"
    f.write_text((ROOT / "examples/plugin/editbench_dim_lamps/__init__.py").read_text())
    cell = Cell("unlit_lamps", f"{f}:DimLamps", 16, 0)
    before, code = cell.key({}), method_code(f"{f}:DimLamps")
    assert code.startswith("sha256:") and cell.key({}) == before
    f.write_text(f.read_text().replace("factor: float = 0.0", "factor: float = 0.25"))
    assert method_code(f"{f}:DimLamps") != code and cell.key({}) != before
    assert method_code("steer") is None


def test_a_tracks_own_version_rekeys_that_tracks_cells_alone(monkeypatch):
    """A change that moves one track's results (``track_versions``) recomputes that track's cells; the other
    track's keep their keys."""
    from editbench.baselines.finetune_reward import FinetuneReward
    from editbench.harness import Cell

    image, text = Cell("single_lamp", "finetune_reward", 16, 0), Cell("text/single_lamp", "finetune_reward", 16, 0)
    before = image.key({}), text.key({})
    monkeypatch.setattr(FinetuneReward, "track_versions", {**FinetuneReward.track_versions, "image": "next"})
    assert image.key({}) != before[0] and text.key({}) == before[1]
    assert FinetuneReward.version_on("image") == "next" and FinetuneReward.version_on("text") == FinetuneReward.version


def test_spatial_clamp_beyond_a_layers_width_clamps_every_unit_of_it(shipped):
    """``k`` is searched up to 128, all of blocks.1's units; at blocks.2 (64 units) any k from 64 on is every unit,
    the same edit, and the top of the range is a limit of the model, not an edge of the search."""
    from editbench.core.search import at_edge
    from editbench.editors.spatial_clamp import SpatialClamp

    spec = get_task("unlit_lamps")
    request = shipped.track.request(spec.request)
    ev = shipped.track.build_evidence("samples", shipped.models, request, Budget(4, 0, seed=7), evidence_world(spec),
                                      False)
    masks = [SpatialClamp({"layer": "blocks.2", "k": k}).fit(shipped.edited_model, request, ev, Budget(4, 0))
             .tensors["mask.blocks.2"] for k in (64, 128, 61)]
    assert masks[0].numel() == 64 and masks[0].sum() == 64 and torch.equal(masks[0], masks[1])
    assert masks[2].sum() == 61
    space = SpatialClamp.space("image")
    assert at_edge(space, {"layer": "blocks.2", "k": 128, "threshold": 0.3}) == []
    assert at_edge(space, {"layer": "blocks.2", "k": 4, "threshold": 0.3}) == ["k"]
