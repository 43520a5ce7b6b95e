import json
import subprocess
import sys

import pytest

from editbench.cli import main


def test_world_show_writes_png(tmp_path):
    out = tmp_path / "grid.png"
    assert main(["world", "show", "--n", "6", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_world_stats_json(capsys):
    assert main(["world", "stats", "--n", "2000", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["n_scenes"] == 2000
    assert 0.55 < stats["share_lit"] < 0.75
    assert abs(sum(stats["lamps_per_room"].values()) - 1) < 1e-3


def test_world_config_file(tmp_path, capsys):
    cfg = tmp_path / "w.json"
    cfg.write_text(json.dumps({"p_lamp_on": 0.0}))
    assert main(["world", "stats", "--n", "500", "--json", "--config", str(cfg)]) == 0
    assert json.loads(capsys.readouterr().out)["share_lit"] == 0.0


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["world", "show", "--n", "0", "--out", "x.png"], "positive integer"),
        (["world", "show", "--n", "two", "--out", "x.png"], "positive integer"),
        (["world", "show", "--n", "2", "--out", "x.jpg"], ".png"),
        (["world", "stats", "--bogus"], "unrecognized arguments"),
        (["world", "frobnicate"], "invalid choice"),
        (["nothing"], "invalid choice"),
        (["world", "stats", "--seed", "-3"], "non-negative"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("editbench: error:") and "\n" not in err
    assert fragment in err


@pytest.mark.parametrize(
    "content, fragment",
    [("{not json", "not valid JSON"), ('{"lamps": 3}', "unknown world config"), ('{"p_lamp_on": 2}', "p_lamp_on"),
     ("[1, 2]", "JSON object")],
)
def test_malformed_config_exits_2(tmp_path, capsys, content, fragment):
    cfg = tmp_path / "w.json"
    cfg.write_text(content)
    assert main(["world", "stats", "--n", "10", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err


def test_console_script_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "editbench.cli", "world", "show", "--n", "-1", "--out", "a.png"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


# ---- the exit-code policy: bad input exits 2 with one line; a bug shows its traceback and exits 1 --------
@pytest.mark.parametrize("argv, fragment", [
    (["sample", "--caption", "", "--out", "x.png"], "caption is empty"),
    (["sample", "--caption", "   ", "--out", "x.png"], "caption is empty"),
    (["sample", "--caption", "a bedroom with a purple unicorn", "--out", "x.png"], "not in the vocabulary"),
    (["run", "--suite", "huge", "--out", "r"], "invalid choice"),
    (["leaderboard", "build", "--results", "nowhere", "--out", "s"], "no such folder"),
    (["check", "--exact", "--baseline", "nowhere", "--results", "nowhere"], "no such folder"),
    (["edit", "--method", "steer", "--out", "x.jpg"], ".png"),
    (["models", "layers", "--generator", "nowhere"], "does not exist"),
    (["world", "show", "--n", "2", "--out", "blocker/x.png"], "cannot create it"),  # blocker is a file
    (["lm-eval", "tasks", "--out", "blocker/tasks"], "cannot create it"),
    (["run", "--out", "blocker/deeper/results"], "cannot create it"),
    (["models", "trace", "--track", "toy", "--out", "x.png"], "invalid choice"),
])
def test_user_errors_exit_2_with_one_line(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocker").write_text("a file where a folder should be")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("editbench: error:") and "\n" not in err and fragment in err


def test_a_bug_inside_editbench_is_not_a_usage_error(monkeypatch):
    import editbench.cli.world as world_commands

    def broken(args):
        raise ValueError("a bug")

    monkeypatch.setattr(world_commands, "stats", broken)
    with pytest.raises(ValueError, match="a bug"):
        main(["world", "stats", "--n", "10"])


def test_a_bug_shows_its_traceback_and_exits_1(tmp_path):
    code = ("import sys; import editbench.cli.world as w\n"
            "def broken(args):\n    raise ZeroDivisionError('inside editbench')\n"
            "w.stats = broken\nfrom editbench.cli import main\nsys.exit(main(['world', 'stats', '--n', '10']))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ZeroDivisionError: inside editbench" in proc.stderr
