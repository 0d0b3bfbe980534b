"""Sweeps: spec validation, one compile per static group, members == runs alone, sharding,
kill-and-resume, load_sweep, phase plots (docs/architecture.md "Sweeps", docs/formulas.md §6)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import grok
from grok.cli import build_parser
from grok.phases import PHASES, classify_phase
from grok.plots import phase as phase_plots
from grok.store import RunDirError
from grok.sweep import SweepSpec, check_memory, load_sweep, member_size, sweep, sweep_presets

BASE = {
    "preset": "doshi-coexistence",
    "set": {"task.p": 11, "model.widths": [32], "train.steps": 40, "train.log_every": 10},
}
WD = [0.0, 1.0, 5.0, 10.0]
XI = [0.0, 0.3]


def spec_dict(**extra):
    return {**BASE, "seeds": [0, 1], "axes": {"optim.weight_decay": WD, "task.corrupt_fraction": XI}} | extra


GRID = {  # 4 wd × 2 ξ × 2 p × 2 seeds = 32 members; task.p is static → 2 groups
    **BASE,
    "set": {k: v for k, v in BASE["set"].items() if k != "task.p"},
    "seeds": [0, 1],
    "axes": {"optim.weight_decay": WD, "task.corrupt_fraction": XI, "task.p": [11, 13]},
}


def assert_same_run(a, b, n_test, what=""):
    """Losses to float tolerance, accuracies within 2 test examples."""
    for name in ("train_loss", "test_loss", "weight_norm"):
        np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-7, err_msg=f"{what} {name}")
    for name in ("train_acc", "test_acc"):
        np.testing.assert_allclose(a[name], b[name], atol=2.0 / n_test + 1e-6, err_msg=f"{what} {name}")


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid") / "sweep"
    before = grok.trace_count()
    sw = sweep(GRID, out, progress=False)
    return sw, grok.trace_count() - before


# --------------------------------------------------------------------------- spec parsing (no training)
def test_spec_values_linspace_logspace_and_types(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(
        textwrap.dedent(
            """
            preset = "doshi-coexistence"
            seeds = [3, 1]
            [set]
            "task.p" = 11
            [axes]
            "task.corrupt_fraction" = {linspace = [0.0, 0.8, 17]}
            "optim.lr" = {logspace = [-3, -1, 3]}
            "optim.weight_decay" = [0, 5]
            [axes.model]
            widths = [[16], [32]]
            """
        )
    )
    spec = SweepSpec.parse(path)
    assert list(spec.axes) == ["task.corrupt_fraction", "optim.lr", "optim.weight_decay", "model.widths"]
    xi = spec.axes["task.corrupt_fraction"]
    assert len(xi) == 17 and xi[0] == 0.0 and xi[-1] == 0.8 and xi[3] == 0.15  # rounded, not 0.15000000000000002
    np.testing.assert_allclose(spec.axes["optim.lr"], [1e-3, 1e-2, 1e-1])  # base-10 exponents
    assert spec.axes["optim.weight_decay"] == (0.0, 5.0) and all(
        type(v) is float for v in spec.axes["optim.weight_decay"]
    )
    assert spec.shape == (17, 3, 2, 2, 2) and spec.n_members == 17 * 3 * 2 * 2 * 2
    assert spec.static_axes() == ["model.widths"]
    groups = spec.groups()
    assert len(groups) == 2 and all(len(g.members) == 17 * 3 * 2 * 2 for g in groups)
    assert spec.config((3, 1, 1, 1, 0)).get("model.widths") == (32,)
    cfg = spec.config((3, 1, 1, 1, 0))
    assert (cfg.task.corrupt_fraction, cfg.optim.lr, cfg.optim.weight_decay, cfg.seed) == (0.15, 0.01, 5.0, 3)
    # integral floats for an int field become ints
    spec = SweepSpec.parse(spec_dict(axes={"task.p": {"linspace": [11, 13, 2]}}, set={"model.widths": [32]}))
    assert spec.axes["task.p"] == (11, 13) and all(type(v) is int for v in spec.axes["task.p"])
    # normalized form round-trips
    again = SweepSpec.from_normalized(json.loads(json.dumps(spec.normalized())))
    assert again == spec


def test_batches_are_equal_sized_and_cover_every_member_once():
    spec = SweepSpec.parse(spec_dict(seeds=[0, 1, 2], max_members_per_program=7))  # 24 members → 4 batches of 6
    batches = spec.batches()
    assert [len(b.members) for b in batches] == [6, 6, 6, 6] and {b.size for b in batches} == {6}
    spec = SweepSpec.parse(spec_dict(seeds=[0, 1, 2], max_members_per_program=10))  # 24 → 3 × 8
    batches = spec.batches()
    assert [len(b.members) for b in batches] == [8, 8, 8]
    spec = SweepSpec.parse(spec_dict(seeds=[0, 1, 2, 4, 5], max_members_per_program=16))  # 40 → 3 batches: 14, 14, 12
    batches = spec.batches()
    assert [len(b.members) for b in batches] == [14, 14, 12] and {b.size for b in batches} == {14}
    seen = [idx for b in batches for idx, _ in b.members]
    assert len(seen) == len(set(seen)) == spec.n_members
    assert set(seen) == set(np.ndindex(*spec.shape))
    for b in batches:  # a member's overrides are its grid point
        for idx, over in b.members:
            assert b.group.config.override(**over) == spec.config(idx)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"axes": {"optim.wieght_decay": [1.0]}}, "axes.optim.wieght_decay"),
        ({"axes": {"optim.weight_decay": []}}, "non-empty"),
        ({"axes": {"optim.weight_decay": {"linspace": [0, 1, 0]}}}, "non-empty"),
        ({"axes": {"optim.weight_decay": {"logspace": [0, 1]}}}, "logspace"),
        ({"axes": {"seed": [0, 1]}}, "seeds go in"),
        ({"axes": {"description": ["a", "b"]}}, "axes.description"),
        ({"axes": {"model.alpha": [1.0, 2.0]}}, "no effect for model.kind='quadratic_mlp'"),
        ({"axes": {"optim.momentum": [0.0, 0.9]}}, "no effect for optim.kind='adamw'"),
        ({"axes": {"train.log_points": [5, 10]}}, "train.log_points has no effect on a linear schedule"),
        (
            {
                "axes": {"train.log_every": [5, 10]},
                "set": {
                    "task.p": 11,
                    "model.widths": [32],
                    "train.steps": 40,
                    "train.schedule": "log",
                    "train.log_points": 10,
                },
            },
            "train.log_every has no effect on a log schedule",
        ),
        ({"axes": {"optim.weight_decay": [1.0, 1.0]}}, "distinct values"),
        ({"axes": {"optim.weight_decay": [1.0], "optim": {"weight_decay": [2.0]}}}, "given twice"),
        ({"axes": {"task.p": [11, 12]}, "set": {"task.op": "div", "model.widths": [32]}}, "task.p: got 12"),
        ({"axes": {"task.corrupt_fraction": [0.5, 1.5]}}, "task.corrupt_fraction: got 1.5"),
        ({"axes": {"task.p": [11, 13]}}, "not also fixed in \\[set\\]"),
        ({"seeds": []}, "seeds"),
        ({"seeds": [0, 0]}, "distinct seeds"),
        ({"seeds": [0, -1]}, "seeds"),
        ({"max_members_per_program": 0}, "max_members_per_program"),
        ({"sweep_name": "x"}, "sweep_name"),
        ({"preset": "no-such-preset"}, "preset"),
    ],
)
def test_bad_specs_raise_before_compiling(change, match, tmp_path):
    before = grok.trace_count()
    with pytest.raises(grok.ConfigError, match=match):
        sweep(spec_dict() | change, tmp_path / "never", progress=False)
    assert grok.trace_count() == before
    assert not (tmp_path / "never").exists()


def test_schedule_fields_are_axes_where_some_member_uses_them():
    """`train.log_points` matters on log schedules, `train.log_every` on linear ones: an axis over either
    is accepted beside a `train.schedule` axis, one group per combination."""
    base = {k: v for k, v in BASE["set"].items() if k != "train.log_every"}
    for axis, values, fixed in (
        ("train.log_points", [5, 10], {"train.log_every": 10}),
        ("train.log_every", [5, 10], {"train.log_points": 10}),
    ):
        spec = SweepSpec.parse(
            BASE | {"set": base | fixed, "axes": {"train.schedule": ["linear", "log"], axis: values}}
        )
        groups = spec.groups()
        assert len(groups) == 4
        points = {(g.static["train.schedule"], g.static[axis]): g.config.n_intervals for g in groups}
        moved = "log" if axis == "train.log_points" else "linear"
        still = "linear" if moved == "log" else "log"
        assert points[(moved, 5)] != points[(moved, 10)]  # the axis changes these runs
        assert points[(still, 5)] == points[(still, 10)]  # and not those


def test_bad_toml_and_unknown_spec_name(tmp_path):
    bad = tmp_path / "dup.toml"
    bad.write_text('[axes]\n"optim.lr" = [1e-3]\n"optim.lr" = [1e-2]\n')  # a repeated key
    with pytest.raises(grok.ConfigError, match="valid TOML"):
        SweepSpec.parse(bad)
    with pytest.raises(grok.ConfigError, match="a TOML file or a sweep preset"):
        SweepSpec.parse("no-such-sweep")


def test_memory_estimate_refuses_sweeps_that_cannot_fit(tmp_path):
    before = grok.trace_count()
    huge = spec_dict(set=BASE["set"] | {"model.widths": [10**9]})  # ~12 GB of parameters per member
    with pytest.raises(grok.ConfigError, match="sweep memory"):
        sweep(huge, tmp_path / "a", progress=False, memory_bytes=2**33)
    per = member_size(grok.preset("doshi-coexistence").override(**BASE["set"])).device
    assert 10_000 < per < 10**8
    # 16 members fit in 20 × per, not in 10 × per: the error names the batch-size option and a size that fits
    with pytest.raises(grok.ConfigError, match=r"max_members_per_program: got 256; allowed: at most \d+"):
        sweep(spec_dict(), tmp_path / "b", progress=False, memory_bytes=10 * per, shard=False)
    assert grok.trace_count() == before
    # the same grid fits with smaller batches
    small = SweepSpec.parse(spec_dict(max_members_per_program=8))
    check_memory(small, small.batches(), memory_bytes=10 * per, shard=False)


def test_one_activation_count_for_the_memory_estimate_and_the_working_set(monkeypatch):
    monkeypatch.setenv("GROK_MEMBER_BLOCK", "auto")
    from grok import engine
    from grok.sizing import activation_width

    mlp = grok.preset("doshi-coexistence").override(**BASE["set"])
    transformer = grok.Config().override(**{"model.kind": "transformer", "task.p": 13})
    assert activation_width(mlp) == 3 * sum(mlp.model.widths)
    m = transformer.model
    assert activation_width(transformer) == 3 * (6 * m.d_model + m.d_mlp + 3 * m.n_heads)
    for cfg in (mlp, transformer):
        size = member_size(cfg)
        assert size.activations == activation_width(cfg)
        assert size.working_set > 4 * size.params
        assert engine.member_block(cfg, 10_000) == max(1, engine._CPU_BLOCK_BYTES // size.working_set)
    # the optimizer's state from its real shapes: AdamW keeps two moments, plain SGD a momentum trace
    sgd = mlp.override(**{"optim.kind": "sgd"})
    pb = member_size(mlp).params
    assert 2 * pb <= member_size(mlp).optimizer <= 2 * pb + 64 and pb <= member_size(sgd).optimizer <= pb + 64


def test_presets_parse_and_are_sized_as_documented():
    names = sweep_presets()
    assert {"doshi-phase-small", "doshi-phase", "kumar-phase-small", "kumar-phase"} <= set(names)
    paper = SweepSpec.parse("doshi-phase")
    assert paper.shape == (17, 17, 4, 1) and paper.base.task.p == 97 and paper.base.model.widths == (500,)
    assert paper.base.train.steps == 2000 and len(paper.groups()) == 4
    small = SweepSpec.parse("doshi-phase-small")
    assert small.base.task.p < 97 and small.n_members <= 128
    k = SweepSpec.parse("kumar-phase")
    assert set(k.axes) >= {"model.alpha", "model.epsilon"} and len(k.groups()) == 1
    assert SweepSpec.parse("kumar-phase-small").n_members <= 128
    gf = SweepSpec.parse("grokfast-small")  # [G]'s optimizer, each method tuned over the weight decay
    assert gf.base.optim.kind == "adam" and 0.0 in gf.axes["optim.weight_decay"] and len(gf.groups()) == 2


# --------------------------------------------------------------------------- training
@pytest.mark.slow
def test_grid_compiles_once_per_static_group_and_members_equal_runs_alone(grid_sweep):
    sw, traces = grid_sweep
    assert sw.shape == (4, 2, 2, 2)
    assert traces == 2 * 2  # two static groups (task.p), each one init + one chunk program
    assert len(list(sw.path.glob("groups/g*/b*/status.json"))) == 2
    before = grok.trace_count()
    for p_i, p in enumerate((11, 13)):
        n_test = sw.config((0, 0, p_i, 0)).task.n_pairs - sw.config((0, 0, p_i, 0)).n_train
        for idx in np.ndindex(4, 2, 1, 2):
            idx = (idx[0], idx[1], p_i, idx[3])
            cfg = sw.config(idx)
            assert (cfg.task.p, cfg.optim.weight_decay, cfg.task.corrupt_fraction) == (
                p,
                WD[idx[0]],
                XI[idx[1]],
            )
            alone = grok.train_members(cfg, [{}], progress=False)
            mine = {
                k: sw.history(k)[idx][None] for k in ("train_loss", "test_loss", "weight_norm", "train_acc", "test_acc")
            }
            assert_same_run(alone.history, mine, n_test, what=str(idx))
    assert grok.trace_count() - before == 4  # the one-member programs: compiled once per group too
    # members really differ along each axis
    loss = sw.metric("train_loss")
    assert not np.allclose(loss[0], loss[-1]) and not np.allclose(loss[:, 0], loss[:, 1])


@pytest.mark.slow
def test_sharded_sweep_equals_unsharded(grid_sweep, tmp_path):
    import jax

    assert jax.device_count() == 4
    sw, _ = grid_sweep
    one = sweep(spec_dict(), tmp_path / "unsharded", progress=False, shard=False)  # the p = 11 group alone
    status = json.loads((sw.path / "groups/g000/b000/status.json").read_text())
    assert status["n_devices"] == 4
    n_test = 121 - sw.config((0, 0, 0, 0)).n_train
    for name in ("train_loss", "test_loss", "weight_norm", "train_acc", "test_acc"):
        a = {name: sw.history(name)[:, :, 0]}
        b = {name: one.history(name)}
        if name.endswith("acc"):
            np.testing.assert_allclose(a[name], b[name], atol=2.0 / n_test + 1e-6, err_msg=name)
        else:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-7, err_msg=name)
    assert (sw.phase[:, :, 0] == one.phase).mean() > 0.9


@pytest.mark.slow
def test_load_sweep_labels_shapes_phases_and_members(grid_sweep):
    sw, _ = grid_sweep
    again = load_sweep(sw.path)
    assert list(again.axes) == ["optim.weight_decay", "task.corrupt_fraction", "task.p", "seed"]
    assert again.axes["seed"].tolist() == [0, 1] and again.axes["task.p"].tolist() == [11, 13]
    assert again.steps.tolist() == [0, 10, 20, 30, 40]
    assert again.metric("test_acc").shape == (4, 2, 2, 2)
    assert again.history("train_loss").shape == (4, 2, 2, 2, 5)
    np.testing.assert_array_equal(again.history("step"), np.broadcast_to(again.steps, (4, 2, 2, 2, 5)))
    np.testing.assert_array_equal(again.metric("test_acc"), again.history("test_acc")[..., -1])
    assert again.phase.shape == (4, 2, 2, 2) and set(again.phase.ravel()) <= set(PHASES)
    expected = classify_phase(
        again.metric("train_acc"),
        again.metric("test_acc"),
        again.history("test_acc").max(-1),
        again.field("task.corrupt_fraction"),
    )
    np.testing.assert_array_equal(again.phase, expected)
    assert again.grokking_delay.shape == (4, 2, 2, 2)
    np.testing.assert_array_equal(again.field("task.corrupt_fraction")[:, 1], 0.3)
    run, j = again.member((2, 1, 1, 1))
    assert run.member_config(j) == again.config((2, 1, 1, 1))
    np.testing.assert_array_equal(run.history["test_loss"][j], again.history("test_loss")[2, 1, 1, 1])
    assert len(again.runs) == 2 and sum(r.n_members for r in again.runs) == 32


@pytest.mark.slow
def test_phase_plots_and_cli_write_pngs(grid_sweep, tmp_path, capsys):
    sw, _ = grid_sweep
    parser = build_parser()
    out = tmp_path / "phase.png"
    args = parser.parse_args(
        ["phase", str(sw.path), "--x", "task.corrupt_fraction", "--panel", "task.p", "--out", str(out)]
    )
    assert args.func(args) == 0
    assert out.stat().st_size > 1000 and (sw.path / "heatmap_grokking_delay.png").is_file()
    args = parser.parse_args(
        ["phase", str(sw.path), "--metric", "test_acc", "--at", "task.p=13", "--out", str(tmp_path / "h.png")]
    )
    assert args.func(args) == 0 and (tmp_path / "h.png").stat().st_size > 1000
    x, y, panel, take = phase_plots.layout(sw, x="optim.weight_decay", y="task.corrupt_fraction")
    assert panel == "task.p" and take(sw.phase).shape == (2, 2, 4, 2)  # [panel, y, x, seeds]
    assert take(sw.phase)[1, 0, 3, 1] == sw.phase[3, 0, 1, 1]
    with pytest.raises(grok.ConfigError, match="--at task.p: got 12"):
        phase_plots.phase_diagram(sw, tmp_path / "x.png", x="optim.weight_decay", at={"task.p": 12})
    with pytest.raises(grok.ConfigError, match="axis: got 'optim.lr'"):
        phase_plots.phase_diagram(sw, tmp_path / "x.png", x="optim.lr")
    with pytest.raises(grok.ConfigError, match="--metric"):
        phase_plots.heatmap(sw, "no_such_metric", tmp_path / "y.png")
    assert "wrote" in capsys.readouterr().out


def test_majority_phase_with_ties_and_agreement():
    phases = np.array([["memorization", "memorization", "confusion"], ["confusion", "coexistence", "missing"]])
    major, agree = phase_plots.majority_phase(phases)
    assert major.tolist() == ["memorization", "coexistence"]  # tie → first in PHASES
    np.testing.assert_allclose(agree, [2 / 3, 1 / 2])


# --------------------------------------------------------------------------- the store: resume
KILL_SPEC = spec_dict(max_members_per_program=4)  # 16 members, 4 batches of 4


def _files(path: Path) -> dict[str, int]:
    return {str(f.relative_to(path)): f.stat().st_mtime_ns for f in sorted(path.rglob("*")) if f.is_file()}


@pytest.mark.slow
def test_killed_sweep_resumes_to_the_uninterrupted_result(tmp_path):
    out = tmp_path / "killed"
    code = textwrap.dedent(
        f"""
        import time
        from grok.sweep import sweep
        sweep({KILL_SPEC!r}, {str(out)!r}, progress=False, on_batch=lambda batch, run: time.sleep(600))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy(), cwd=Path(__file__).parents[1])
    first = out / "groups/g000/b000/status.json"
    deadline = time.time() + 300
    while not first.exists():
        assert proc.poll() is None, "the sweep subprocess died"
        assert time.time() < deadline, "no batch finished within 5 minutes"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # what a kill mid-write leaves behind: a truncated file and a temporary, no status.json
    partial = out / "groups/g000/b001"
    partial.mkdir(parents=True, exist_ok=True)
    (partial / "history.npz").write_bytes(b"PK\x03\x04 truncated")
    (partial / ".params.npz.abc123.tmp").write_bytes(b"half")
    with pytest.raises(RunDirError, match="incomplete: 3 of 4 batches missing"):
        load_sweep(out)
    partial_view = load_sweep(out, allow_partial=True)
    assert partial_view.present.sum() == 4 and (partial_view.phase == "missing").sum() == 12
    finished = _files(out / "groups/g000/b000")
    before = grok.trace_count()
    resumed = sweep(KILL_SPEC, out, progress=False)
    assert grok.trace_count() - before == 2  # compiled once here for the three missing batches
    assert _files(out / "groups/g000/b000") == finished  # finished batch untouched
    assert not list(partial.glob(".*.tmp"))
    whole = sweep(KILL_SPEC, tmp_path / "whole", progress=False)
    for name in ("train_loss", "test_loss", "test_acc", "weight_norm"):
        np.testing.assert_allclose(resumed.history(name), whole.history(name), rtol=1e-6, atol=1e-9, err_msg=name)
    np.testing.assert_array_equal(resumed.phase, whole.phase)
    # the same spec again: nothing to do, nothing touched
    all_files = _files(out)
    before = grok.trace_count()
    sweep(KILL_SPEC, out, progress=False)
    assert _files(out) == all_files and grok.trace_count() == before
    # a different spec in the same directory is a clear error, raised before compiling
    other = KILL_SPEC | {"axes": {"optim.weight_decay": [0.0, 2.0, 5.0, 10.0], "task.corrupt_fraction": XI}}
    with pytest.raises(RunDirError, match=r"different sweep \(differs in axes.optim.weight_decay\)"):
        sweep(other, out, progress=False)
    with pytest.raises(RunDirError, match="differs in seeds"):
        sweep(KILL_SPEC | {"seeds": [0, 2]}, out, progress=False)
    assert grok.trace_count() == before and _files(out) == all_files


def test_out_dir_that_is_not_a_sweep_is_refused(tmp_path):
    (tmp_path / "something.txt").write_text("x")
    with pytest.raises(RunDirError, match="not a sweep directory"):
        sweep(spec_dict(), tmp_path, progress=False)
    with pytest.raises(RunDirError, match="no sweep.json"):
        load_sweep(tmp_path)


def test_cli_sweep_list_and_dry_run(tmp_path, capsys):
    parser = build_parser()
    args = parser.parse_args(["sweep", "--list"])
    assert args.func(args) == 0 and "doshi-phase-small" in capsys.readouterr().out
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC_TOML)
    before = grok.trace_count()
    args = parser.parse_args(["sweep", str(spec), "--dry-run"])
    assert args.func(args) == 0
    assert "8 members" in capsys.readouterr().out and grok.trace_count() == before
    args = parser.parse_args(["sweep", "doshi-phase", "--dry-run"])
    assert args.func(args) == 0 and "1156 members" in capsys.readouterr().out
    with pytest.raises(grok.ConfigError, match="--out"):
        args = parser.parse_args(["sweep", str(spec)])
        args.func(args)
    with pytest.raises(grok.ConfigError, match="--coordinator"):
        args = parser.parse_args(["sweep", str(spec), "--out", str(tmp_path / "o"), "--num-processes", "2"])
        args.func(args)


SPEC_TOML = textwrap.dedent(
    """
    preset = "doshi-coexistence"
    seeds = [0, 1]
    max_members_per_program = 4
    [set]
    "task.p" = 11
    "model.widths" = [32]
    "train.steps" = 40
    "train.log_every" = 10
    [axes]
    "optim.weight_decay" = [0.0, 1.0, 5.0, 10.0]
    """
)


def test_next_group_compiled_ahead_gives_the_same_sweep_and_traces_once(tmp_path, monkeypatch):
    from grok import engine

    spec = GRID | {"set": GRID["set"] | {"train.steps": 30}, "seeds": [0]}  # programs no other test compiled
    calls = []
    real = engine.precompile_group

    def spy(configs, *, shard=True):
        done = real(configs, shard=shard)
        calls.append((configs[0].task.p, len(configs), done))
        return done

    monkeypatch.setattr(engine, "precompile_group", spy)
    monkeypatch.setenv("GROK_PRECOMPILE", "1")
    before = grok.trace_count()
    ahead = sweep(spec, tmp_path / "ahead", progress=False)
    # the second group (p = 13) compiled in the background, while the first trained; run_group then
    # found its programs compiled: each group's init and chunk traced once, as without it
    assert calls == [(13, 8, True)]
    assert grok.trace_count() - before == 2 * 2
    monkeypatch.setenv("GROK_PRECOMPILE", "0")
    plain = sweep(spec, tmp_path / "plain", progress=False)
    assert calls == [(13, 8, True)]
    for name in ("train_loss", "test_loss", "weight_norm", "train_acc", "test_acc"):
        np.testing.assert_array_equal(ahead.history(name), plain.history(name), err_msg=name)


def test_bad_precompile_setting_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("GROK_PRECOMPILE", "yes")
    with pytest.raises(grok.ConfigError, match=r"GROK_PRECOMPILE: got 'yes'; allowed: 1 .*, 0 .*, or unset"):
        sweep(spec_dict(), tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()  # refused before anything is written


def test_a_diverged_member_is_labelled_diverged_not_a_phase(tmp_path):
    spec = {
        "preset": "doshi-coexistence",
        "seeds": [0],
        "set": {"task.p": 7, "model.widths": [16], "train.steps": 20, "train.log_every": 10},
        "axes": {"optim.lr": [0.01, 1e8]},
    }
    sw = sweep(spec, tmp_path / "s", progress=False)
    assert sw.metric("diverged")[:, 0].tolist() == [0, 1]
    phases = sw.phases()
    assert phases[0, 0] in PHASES and phases[1, 0] == "diverged"
    assert sw.phase_summary()["majority"].tolist()[1] == "diverged"
    assert phase_plots.phase_diagram(sw, tmp_path / "p.png").stat().st_size > 0  # drawn dark grey, in the legend


def test_an_overflowing_logspace_axis_is_one_clear_error(recwarn):
    with pytest.raises(grok.ConfigError, match="finite"):
        SweepSpec.parse({"preset": "doshi-coexistence", "axes": {"optim.lr": {"logspace": [-3, 1000, 2]}}})
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
