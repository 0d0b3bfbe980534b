"""The `grok` command line: help, presets, train, and one-line errors with exit code 2."""

import subprocess
import sys

import pytest

import grok
from grok.cli import build_parser, main
from grok.cli.args import parse_sets

SMALL = [
    "--set",
    "task.p=23",
    "--set",
    "model.widths=[16, 16]",
    "--set",
    "train.steps=20",
    "--set",
    "train.log_every=10",
]


def test_parse_sets_reads_json_values_and_plain_strings():
    got = parse_sets(
        ["optim.lr=5e-3", "model.widths=[8, 8]", "task.op=mul", 'optim.transforms=["perp_grad"]', "task.data_seed=null"]
    )
    assert got == {
        "optim.lr": 5e-3,
        "model.widths": [8, 8],
        "task.op": "mul",
        "optim.transforms": ["perp_grad"],
        "task.data_seed": None,
    }


def test_every_command_has_help(capsys):
    commands = build_parser()._subparsers._group_actions[0].choices  # noqa: SLF001
    assert {"train", "presets", "demo"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as done:
            main([name, "--help"])
        assert done.value.code == 0
        assert "usage: grok" in capsys.readouterr().out


def test_presets_lists_every_preset(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in grok.presets():
        assert name in out


@pytest.mark.parametrize(
    "args, expected",
    [
        (["train", "--preset", "nope"], "preset: got 'nope'"),
        (["train", "--set", "task.op=div", "--set", "task.p=96"], "task.p: got 96"),
        (["train", "--set", "optim.lr=-1"], "optim.lr: got -1"),
        (["train", "--set", "task.corrupt_fraction=2"], "task.corrupt_fraction: got 2"),
        (["train", "--set", "lr"], "--set: got 'lr'"),
        (["train", "--set", "optim.learning_rate=1"], "optim.learning_rate: got 1"),
        (["train", "--config", "/nonexistent.toml"], "--config: got '/nonexistent.toml'"),
        (["train", "--seeds", "-3"], "--seeds: got -3"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, expected, capsys):
    before = grok.trace_count()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err and err.startswith("grok train: error:")
    assert grok.trace_count() == before


def test_bad_input_from_a_real_process_has_no_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "grok.cli", "train", "--set", "task.op=pow"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert (
        proc.stderr.strip()
        == "grok train: error: task.op: got 'pow'; allowed: one of add, sub, mul, div, x2y2, x2xyy2, x3xy"
    )


def test_train_writes_a_loadable_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(["train", "--preset", "prieto-perpgrad", *SMALL, "--seeds", "0", "1", "--out", str(out), "--quiet"]) == 0
    )
    printed = capsys.readouterr().out
    assert "[seed=0]" in printed and "[seed=1]" in printed and "test_acc=" in printed
    run = grok.load_run(out)
    assert run.seeds == [0, 1] and run.config.task.p == 23
    assert run.history["test_acc"].shape == (2, 3)


def test_train_from_a_toml_config(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        'preset = "doshi-coexistence"\n[task]\np = 11\n[model]\nwidths = [16]\n[train]\nsteps = 10\nlog_every = 5\n'
    )
    out = tmp_path / "run"
    assert main(["train", "--config", str(path), "--out", str(out), "--quiet"]) == 0
    run = grok.load_run(out)
    assert run.config.model.kind == "quadratic_mlp" and run.config.task.p == 11


@pytest.mark.slow
def test_quick_demo_writes_figure_and_table(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "StableMax CE (float64), AdamW" in out and "step@90% test" in out
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    assert grok.load_run(tmp_path / "run2").config.optim.transforms == ("perp_grad",)
