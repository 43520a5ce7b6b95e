import os

import pytest
import torch

# one thread per test process under pytest-xdist (the README's command runs two), else up to two
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, os.cpu_count() or 1))

# A tiny generator and discriminator (trained 2 steps): the whole harness in seconds.
TINY_G = {"channels": [32, 32, 16, 16, 8], "z_dim": 16, "w_dim": 32, "text_dim": 16, "text_layers": 1}
TINY_D = {"channels": [8, 16, 16, 16], "text_dim": 16}


@pytest.fixture(scope="session")
def world():
    from editbench.world import World

    return World()


@pytest.fixture(scope="session")
def tiny_gen(tmp_path_factory) -> str:
    """The folder of a tiny generator (its discriminator beside it)."""
    from editbench.tracks.image.train import train_generator

    out = train_generator(tmp_path_factory.mktemp("tiny") / "run", steps=2, batch_size=4, bf16=False,
                          generator_config=TINY_G, discriminator_config=TINY_D, progress=False)
    return str(out / "generator")


@pytest.fixture(scope="session")
def shipped():
    """A session on the shipped image models (loaded once for the whole test run)."""
    from editbench.harness import Session

    return Session("image")


@pytest.fixture(scope="session")
def shipped_text():
    """A session on the shipped lamp LM (loaded once for the whole test run)."""
    from editbench.harness import Session

    return Session("text")


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> str:
    """The folder of a tiny lamp LM (one layer, trained 3 steps): the text track's machinery in seconds."""
    from editbench.tracks.text.train import train_lm

    out = train_lm(tmp_path_factory.mktemp("tiny_lm") / "run", steps=3, batch_size=8, n_layer=1, n_embd=32, n_head=2,
                   warmup=1, progress=False)
    return str(out / "lm")
