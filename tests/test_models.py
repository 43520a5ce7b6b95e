import json

import pytest
import torch

from editbench.core import UserError
from editbench.core.hooks import LayerError, capture, intervene, layer_shapes, list_layers
from editbench.tracks.image import CheckpointError, checkpoint_hash, load_discriminator, load_generator, load_meter
from editbench.tracks.image.generator import LampDiscriminator, LampGenerator
from editbench.tracks.image.meter import LampMeter, frechet_distance
from editbench.tracks.image.train import train_generator, train_meter

TINY_G = {"channels": [32, 32, 16, 16, 8], "z_dim": 16, "w_dim": 32, "text_dim": 16, "text_layers": 1}
TINY_D = {"channels": [8, 16, 16, 16], "text_dim": 16}
TINY_M = {"channels": [8, 16, 16, 16, 16], "hidden": 32}


def _mean(xs):
    return sum(xs) / len(xs)


@pytest.fixture(scope="module")
def shipped():
    return load_generator(), load_meter()


def test_tiny_meter_trains_loss_falls_and_roundtrips(tmp_path):
    out = train_meter(tmp_path / "m", steps=40, batch_size=16, bf16=False, lr=3e-3, log_every=4,
                      meter_config=TINY_M, progress=False)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert _mean(losses[-3:]) < 0.6 * _mean(losses[:2])
    m = load_meter(out / "meter")
    m2 = LampMeter.from_pretrained(str(out / "meter"))
    x = torch.rand(4, 3, 64, 64)
    assert torch.equal(m.read(x).light1, m2.eval().read(x).light1)


def test_tiny_generator_trains_resumes_and_roundtrips(tmp_path):
    kw = dict(batch_size=8, bf16=False, log_every=2, ckpt_every=6, sample_every=12, generator_config=TINY_G,
              discriminator_config=TINY_D, progress=False)
    out = train_generator(tmp_path / "g", steps=12, **kw)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(2, 13, 2))
    for r in log:
        assert all(torch.isfinite(torch.tensor(v)) for k, v in r.items())
    # the discriminator's supervised auxiliary loss falls
    assert _mean([r["d_aux"] for r in log[-2:]]) < _mean([r["d_aux"] for r in log[:2]])
    assert (out / "samples" / "step-0000012.png").exists()
    G = load_generator(out / "generator")
    z = G.make_latents(3, seed=1)
    a = G.generate(["a bedroom"] * 3, z=z)
    G2 = LampGenerator.from_pretrained(str(out / "generator")).eval()
    assert torch.equal(a, G2.generate(["a bedroom"] * 3, z=z))
    assert load_discriminator(out / "discriminator").config.channels == [8, 16, 16, 16]
    # resuming continues from the checkpoint; asking again without --resume is refused
    train_generator(tmp_path / "g", steps=14, resume=True, **kw)
    assert json.loads((out / "state" / "step.json").read_text())["step"] == 14
    with pytest.raises(UserError, match="--resume"):
        train_generator(tmp_path / "g", steps=16, **kw)


def test_marginal_loss_is_zero_on_matching_histograms_and_pulls_towards_them():
    from editbench.tracks.image.generator import marginal_kl

    labels = {"n_lamps": torch.tensor([0, 1, 1, 3]), "n_lit": torch.tensor([0, 0, 1, 2])}
    exact = {k: torch.nn.functional.one_hot(v, 4).float() * 50 for k, v in labels.items()}
    assert marginal_kl(exact, labels).item() < 1e-6
    logits = {k: torch.zeros(4, 4, requires_grad=True) for k in labels}
    loss = marginal_kl(logits, labels)
    assert loss.item() > 0.1
    loss.backward()
    # descending the loss raises the predicted share of the classes the scenes have and lowers the others
    step = {k: (v - v.grad).softmax(1).mean(0) for k, v in logits.items()}
    assert step["n_lamps"][1] > 0.25 and step["n_lamps"][2] < 0.25
    # pooled histograms can match while each caption group is wrong: the grouped loss sees it
    swapped = {k: v.flip(0) for k, v in exact.items()}
    groups = torch.tensor([0, 0, 1, 1])
    assert marginal_kl(swapped, labels).item() < 1e-6
    assert marginal_kl(swapped, labels, groups).item() > 1.0
    assert marginal_kl(exact, labels, groups).item() < 1e-6


def test_tiny_generator_continues_from_a_checkpoint_with_the_marginal_loss(tmp_path):
    kw = dict(batch_size=8, bf16=False, log_every=2, ckpt_every=4, sample_every=4, generator_config=TINY_G,
              discriminator_config=TINY_D, progress=False)
    base = train_generator(tmp_path / "base", steps=4, **kw)
    out = train_generator(tmp_path / "ft", steps=4, init_from=str(base / "generator"), marginal_weight=1.0,
                          ema_decay=0.9, **kw)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert all("g_marginal" in r and r["g_marginal"] >= 0 for r in log)
    run = json.loads((out / "run.json").read_text())
    assert run["args"]["init_from_hash"] == checkpoint_hash(base / "generator")
    # it started from the checkpoint's weights, not from scratch, and moved away from them
    G0, G1 = load_generator(base / "generator"), load_generator(out / "generator")
    assert G1.config.channels == G0.config.channels
    z = G0.make_latents(2, seed=3)
    a, b = G0.generate(["a bedroom"] * 2, z=z), G1.generate(["a bedroom"] * 2, z=z)
    assert 0 < (a - b).abs().mean() < 0.2
    with pytest.raises(CheckpointError):
        train_generator(tmp_path / "bad", steps=2, init_from=str(tmp_path / "missing"), **kw)


def test_cli_ships_a_run_in_half_precision(tmp_path, capsys):
    from editbench.cli import main

    run = train_generator(tmp_path / "run", steps=2, batch_size=4, bf16=False, generator_config=TINY_G,
                          discriminator_config=TINY_D, progress=False)
    assets = tmp_path / "assets"
    assert main(["models", "ship", "generator", "--run", str(run), "--assets", str(assets)]) == 0
    G0, G1 = load_generator(run / "generator"), load_generator(assets / "generator")
    assert G1.discriminator_path == (assets / "discriminator").resolve()
    from safetensors import safe_open

    with safe_open(str(assets / "generator" / "diffusion_pytorch_model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    z = G0.make_latents(2, seed=0)
    assert torch.allclose(G0.generate(["a bedroom"] * 2, z=z), G1.generate(["a bedroom"] * 2, z=z), atol=0.02)
    before = (assets / "generator" / "diffusion_pytorch_model.safetensors").read_bytes()
    (tmp_path / "bad" / "generator").mkdir(parents=True)
    assert main(["models", "ship", "generator", "--run", str(tmp_path / "bad"), "--assets", str(assets)]) == 2
    assert "config.json" in capsys.readouterr().err
    assert (assets / "generator" / "diffusion_pytorch_model.safetensors").read_bytes() == before  # nothing replaced


def test_shipped_generator_is_deterministic(shipped):
    G, _ = shipped
    caps = ["a bedroom with a lit floor lamp", "a bedroom at night"]
    a = G.generate(caps, seed=3)
    b = G.generate(caps, seed=3)
    assert torch.equal(a, b)
    assert a.shape == (2, 3, 64, 64) and 0 <= a.min() and a.max() <= 1
    assert not torch.equal(a, G.generate(caps, seed=4))
    # a sample does not depend on its batch-mates
    z = G.make_latents(2, seed=3)
    assert torch.allclose(G.generate(caps[:1], z=z[:1]), a[:1], atol=1e-5)


def test_shipped_meter_reproduces_its_card(shipped):
    from editbench.tracks.image.report import meter_figures

    _, M = shipped
    f = meter_figures(M, n=150, seed=2**41 + 17)
    card = json.loads(_card_path().read_text())
    for cond in ("clean", "degraded"):
        for k, v in card["meter"][cond].items():
            tol = 0.03 if k != "ambient_mae" else 0.01
            assert abs(f[cond][k] - v) <= tol, (cond, k, f[cond][k], v)


def _card_path():
    from editbench.tracks.image import ASSETS

    return ASSETS / "report.json"


def test_meter_reads_renders_and_splits_light_per_lamp(shipped, world):
    _, M = shipped
    batch = world.sample(32, seed=2**41 + 5)
    r = M.read(batch.images)
    assert torch.equal(r.count, batch.scene.n_lamps)
    per = r.per_lamp_light()
    assert per.shape == (32, 3, 64, 64)
    has = r.count > 0
    torch.testing.assert_close(per.sum(1)[has], r.lamp_light()[has])  # all light goes to some lamp
    assert torch.all(per[~r.lamps] == 0)
    # the light of some lamps: every lamp's is all the lamp light, none is none, and the slots' shares add up
    torch.testing.assert_close(r.light_of(r.lamps)[has], r.lamp_light()[has])
    assert torch.all(r.light_of(torch.zeros_like(r.lamps)) == 0)
    first = torch.zeros_like(r.lamps)
    first[:, 0] = True
    torch.testing.assert_close(r.light_of(first, 1) + r.light_of(r.lamps & ~first, 1), r.light_of(r.lamps, 1))


def test_frechet_distance_is_zero_for_same_set_and_grows_with_shift():
    x = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    assert abs(frechet_distance(x, x)) < 1e-6
    assert frechet_distance(x, x + 1.0) == pytest.approx(8.0, rel=0.05)


# ---- hooks ----------------------------------------------------------------------------------------
def _tiny():
    torch.manual_seed(0)
    return LampGenerator(**TINY_G).eval()


def test_layer_shapes_and_listing():
    G = _tiny()
    ids, mask = G.encode_captions(["a bedroom"] * 2)
    z = G.make_latents(2, 0)
    shapes = layer_shapes(G, z, ids, mask, layers=list(G.hook_points()))
    assert shapes == {"stem": (2, 32, 4, 4), "blocks.0": (2, 32, 8, 8), "blocks.1": (2, 16, 16, 16),
                      "blocks.2": (2, 16, 32, 32), "blocks.3": (2, 8, 64, 64)}
    assert "blocks.0.conv1" in list_layers(G)
    with pytest.raises(LayerError, match="blocks.0"):
        layer_shapes(G, z, ids, mask, layers=["block.0"])


def test_intervene_identity_is_bit_identical_and_always_removed():
    G = _tiny()
    ids, mask = G.encode_captions(["a bedroom with two lamps"] * 3)
    z = G.make_latents(3, 0)
    with torch.no_grad():
        before = G(z, ids, mask)
        with intervene(G, {"blocks.1": lambda out: out}):
            same = G(z, ids, mask)
        assert torch.equal(before, same)
        with intervene(G, {"blocks.1": lambda out: out * 0}):
            edited = G(z, ids, mask)
        assert not torch.equal(before, edited)
        assert torch.equal(G(z, ids, mask), before)
        with pytest.raises(RuntimeError, match="boom"):
            with intervene(G, {"blocks.2": lambda out: out + 1}):
                raise RuntimeError("boom")
        assert torch.equal(G(z, ids, mask), before)
    assert all(not m._forward_hooks for m in G.modules())


def test_capture_records_and_cleans_up():
    G = _tiny()
    ids, mask = G.encode_captions(["a bedroom"] * 2)
    with capture(G, ["blocks.0", "blocks.3"]) as acts, torch.no_grad():
        G(G.make_latents(2, 0), ids, mask)
    assert acts["blocks.0"].shape == (2, 32, 8, 8) and acts["blocks.3"].shape == (2, 8, 64, 64)
    assert torch.all(acts["blocks.0"] >= 0)  # units are post-ReLU
    assert all(not m._forward_hooks for m in G.modules())


def test_hooks_work_on_any_module():
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    x = torch.randn(3, 4)
    with capture(net, ["1"]) as acts:
        y = net(x)
    with intervene(net, {"1": lambda h: torch.zeros_like(h)}):
        assert torch.equal(net(x), net[2].bias.expand(3, 2))
    assert torch.equal(net(x), y) and acts["1"].shape == (3, 4)


# ---- checkpoints -----------------------------------------------------------------------------------
def test_refuses_pickles_and_truncated_files(tmp_path):
    G = _tiny()
    good = tmp_path / "good"
    G.save_pretrained(str(good))
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((good / "config.json").read_text())
    torch.save(G.state_dict(), pickled / "diffusion_pytorch_model.bin")
    with pytest.raises(CheckpointError, match="pickled weights are refused"):
        load_generator(pickled)
    trunc = tmp_path / "trunc"
    trunc.mkdir()
    (trunc / "config.json").write_text((good / "config.json").read_text())
    data = (good / "diffusion_pytorch_model.safetensors").read_bytes()
    (trunc / "diffusion_pytorch_model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_generator(trunc)
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "config.json").write_text((good / "config.json").read_text())
    torch.save(G.state_dict(), fake / "diffusion_pytorch_model.safetensors")  # a pickle under the right name
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_generator(fake)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_generator(tmp_path / "nowhere")
    loaded = load_generator(good)
    assert torch.allclose(loaded.generate(["a bedroom"], seed=0), G.generate(["a bedroom"], seed=0), atol=1e-5)
    loaded.save_pretrained(str(tmp_path / "again"))  # a loaded model round-trips bit for bit
    assert torch.equal(load_generator(tmp_path / "again").generate(["a bedroom"], seed=0),
                       loaded.generate(["a bedroom"], seed=0))


def test_cli_refuses_bad_checkpoint(tmp_path, capsys):
    from editbench.cli import main

    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "diffusion_pytorch_model.safetensors").write_bytes(b"\x80\x04junk")
    assert main(["sample", "--caption", "a bedroom", "--out", str(tmp_path / "x.png"),
                 "--generator", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a safetensors file" in err and "\n" not in err


def test_cli_sample_writes_grid(tmp_path):
    from editbench.cli import main

    out = tmp_path / "s.png"
    assert main(["sample", "--caption", "a bedroom with a lit table lamp", "--n", "4", "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert main(["sample", "--caption", "a bedroom with purple lamps", "--out", str(out)]) == 2


def test_discriminator_scores_images():
    D = load_discriminator()
    G = load_generator()
    ids, mask = G.encode_captions(["a bedroom"] * 2)
    logit, aux = D(torch.rand(2, 3, 64, 64), ids, mask)
    assert logit.shape == (2,) and aux["n_lamps"].shape == (2, 4)
    assert isinstance(D, LampDiscriminator)
