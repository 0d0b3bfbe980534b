"""Nothing lost, nothing silently wrong: whole run directories, locks, checks before training, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import grok
from grok import store
from grok.cli import main
from grok.sizing import check_group_memory

FAST = {"task.p": 7, "task.train_fraction": 0.5, "model.widths": [8, 8], "train.steps": 4, "train.log_every": 2}
ROOT = Path(__file__).resolve().parents[1]
TRAIN_FAST = [
    "train",
    "--preset",
    "prieto-perpgrad-small",
    "--quiet",
    "--set",
    "train.steps=4",
    "--set",
    "train.log_every=2",
]


def tiny(**extra) -> grok.Config:
    return grok.preset("prieto-perpgrad-small").override(**(FAST | extra))


@pytest.fixture(scope="module")
def small_run():
    return grok.train(tiny(), seeds=(0, 1), progress=False)


def _one_line_exit_2(argv, capsys, expected: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err


# --------------------------------------------------------------------------- whole run directories
def test_a_run_directory_records_hashes_and_a_changed_file_reads_as_corrupt(small_run, tmp_path):
    small_run.save(tmp_path / "r")
    status = json.loads((tmp_path / "r" / "status.json").read_text())
    assert set(status["files"]) == {"config.json", "history.npz", "params.npz"}
    assert oct((tmp_path / "r" / "history.npz").stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    data = (tmp_path / "r" / "params.npz").read_bytes()
    (tmp_path / "r" / "params.npz").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(store.RunDirError, match="corrupt: params.npz does not match"):
        grok.load_run(tmp_path / "r")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_stale_status_cannot_describe_other_files(small_run, tmp_path):
    """The attempt of the issue: new config and history beside old parameters and an old finished status."""
    small_run.save(tmp_path / "r")
    other = grok.train(tiny(**{"train.steps": 8}), seeds=(0, 1), progress=False)
    other.save(tmp_path / "s")
    for name in ("config.json", "history.npz"):  # what a kill between writes left before
        (tmp_path / "r" / name).write_bytes((tmp_path / "s" / name).read_bytes())
    with pytest.raises(store.RunDirError, match="corrupt: config.json"):
        grok.load_run(tmp_path / "r")


KILL_LOOP = textwrap.dedent(
    """
    import sys, grok
    a = grok.load_run(sys.argv[1] + "/a")
    b = grok.load_run(sys.argv[1] + "/b")
    print("ready", flush=True)
    i = 0
    while True:
        (a if i % 2 else b).save(sys.argv[1] + "/target", overwrite=True)
        i += 1
    """
)


@pytest.mark.slow
def test_kill_9_while_saving_over_a_run_leaves_one_whole_run(tmp_path):
    """A real `kill -9` at random moments of saving a run over another: either one is there, whole."""
    a = grok.train(tiny(), seeds=(0,), progress=False)
    b = grok.train(tiny(**{"train.steps": 8}), seeds=(1,), progress=False)
    a.save(tmp_path / "a")
    b.save(tmp_path / "b")
    a.save(tmp_path / "target")
    env = os.environ | {"GROK_CPU_DEVICES": "1", "PYTHONPATH": str(ROOT)}
    rng = np.random.default_rng(0)
    for trial in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", KILL_LOOP, str(tmp_path)], stdout=subprocess.PIPE, env=env, cwd=tmp_path
        )
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(float(rng.uniform(0.05, 0.6)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # a kill between the two renames leaves the old run beside the target: the next save restores order
        run = grok.load_run(tmp_path / "target") if (tmp_path / "target").exists() else None
        if run is None:
            (old,) = tmp_path.glob(".target.old-*")
            run = grok.load_run(old)
            os.rename(old, tmp_path / "target")
        assert run.config.train.steps in (4, 8), trial
        want = a if run.config.train.steps == 4 else b
        for name in ("test_acc", "train_loss"):
            np.testing.assert_array_equal(run.history[name], want.history[name])
        for name, arr in want.state.items():
            np.testing.assert_array_equal(run.state[name], arr)


# --------------------------------------------------------------------------- never overwritten silently
def test_save_refuses_an_existing_run_unless_asked(small_run, tmp_path):
    small_run.save(tmp_path / "r")
    with pytest.raises(store.RunDirError, match="already holds a run; pass --overwrite"):
        small_run.save(tmp_path / "r")
    small_run.save(tmp_path / "r", overwrite=True)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("a user's file")
    with pytest.raises(store.RunDirError, match="non-empty directory that is not a run"):
        small_run.save(tmp_path / "notes", overwrite=True)
    assert (tmp_path / "notes" / "mine.txt").read_text() == "a user's file"
    (tmp_path / "file").write_text("x")
    with pytest.raises(store.RunDirError, match="is a file"):
        small_run.save(tmp_path / "file")


def test_train_checks_out_before_training(small_run, tmp_path, capsys):
    small_run.save(tmp_path / "r")
    traces = grok.trace_count()
    _one_line_exit_2([*TRAIN_FAST, "--out", str(tmp_path / "r")], capsys, "already holds a run; pass --overwrite")
    (tmp_path / "f").write_text("x")
    _one_line_exit_2([*TRAIN_FAST, "--out", str(tmp_path / "f")], capsys, "is a file")
    _one_line_exit_2([*TRAIN_FAST, "--out", ""], capsys, "--out: got ''")
    assert grok.trace_count() == traces  # nothing was trained
    assert main([*TRAIN_FAST, "--out", str(tmp_path / "r"), "--overwrite"]) == 0
    assert grok.load_run(tmp_path / "r").config.train.steps == 4


def test_a_run_may_not_be_written_inside_a_sweep(small_run, tmp_path, capsys):
    spec = {"preset": "prieto-perpgrad-small", "seeds": [0], "set": FAST, "axes": {"optim.lr": [0.01, 0.02]}}
    sw = grok.sweep(spec, out=tmp_path / "s", progress=False)
    batch_dir = sw.path / sw._batches[0].path  # noqa: SLF001
    before = (batch_dir / "params.npz").read_bytes()
    with pytest.raises(store.RunDirError, match="belongs to the sweep"):
        small_run.save(batch_dir, overwrite=True)
    _one_line_exit_2([*TRAIN_FAST, "--out", str(batch_dir), "--overwrite"], capsys, "belongs to the sweep")
    assert (batch_dir / "params.npz").read_bytes() == before
    assert grok.sweep(spec, out=tmp_path / "s", progress=False).metric("test_acc").shape == (2, 1)  # still resumes


# --------------------------------------------------------------------------- locks
def test_a_second_writer_is_refused_naming_the_holder_and_a_stale_lock_is_taken_over(tmp_path):
    target = tmp_path / "s"
    with store.dir_lock(target):
        spec = {"preset": "prieto-perpgrad-small", "seeds": [0], "set": FAST, "axes": {"optim.lr": [0.01]}}
        with pytest.raises(store.LockedError, match=f"process {os.getpid()} on {socket.gethostname()}"):
            grok.sweep(spec, out=target, progress=False)
    assert not (tmp_path / ".s.lock").exists()  # released
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / ".s.lock").write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    with store.dir_lock(target) as lock:  # its holder is gone: taken over
        assert json.loads(lock.read_text())["pid"] == os.getpid()


LOCK_HOLDER = textwrap.dedent(
    """
    import sys, time
    from grok import store
    with store.dir_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(60)
    """
)


@pytest.mark.slow
def test_two_processes_one_sweep_directory(tmp_path):
    """A second `grok sweep` into a directory another live process writes is one line and exit 2;
    after that process is killed with -9, its lock is stale and the sweep runs."""
    env = os.environ | {"GROK_CPU_DEVICES": "1", "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(tmp_path / "s")], stdout=subprocess.PIPE, env=env)
    assert holder.stdout.readline().strip() == b"locked"
    argv = [sys.executable, "-m", "grok.cli", "sweep", str(ROOT / "tests" / "data" / "tiny_sweep.toml")]
    second = subprocess.run([*argv, "--out", str(tmp_path / "s"), "--quiet"], capture_output=True, text=True, env=env)
    assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
    assert f"being written by process {holder.pid}" in second.stderr
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    third = subprocess.run([*argv, "--out", str(tmp_path / "s"), "--quiet"], capture_output=True, text=True, env=env)
    assert third.returncode == 0, third.stderr


# --------------------------------------------------------------------------- one line, exit 2
def test_bad_seeds_are_config_errors():
    cfg = tiny()
    for seeds, match in [
        ([0, 0], "distinct"),
        ([1.5], "seed: got 1.5"),
        ("01", "a list of distinct integers"),
        ([], "one or more"),
        ([2**31], "seed: got 2147483648"),
        ([True], "seed: got True"),
    ]:
        with pytest.raises(grok.ConfigError, match=match):
            grok.train(cfg, seeds=seeds, progress=False)


@pytest.mark.parametrize(
    "content, expected",
    [
        (b'preset = "prieto-perpgrad-small"\n[optim\nlr = 1\n', "TOMLDecodeError"),
        (b"\xff\xfe\x00", "UnicodeDecodeError"),
    ],
    ids=["syntax", "not-utf8"],
)
def test_a_bad_toml_file_is_one_line(tmp_path, capsys, content, expected):
    (tmp_path / "c.toml").write_bytes(content)
    _one_line_exit_2(["train", "--config", str(tmp_path / "c.toml")], capsys, expected)


@pytest.mark.parametrize("name", ["history.npz", "params.npz", "config.json", "status.json"])
@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_damaged_run_files_are_one_line_in_every_command(small_run, tmp_path, capsys, name, damage):
    small_run.save(tmp_path / "r")
    data = (tmp_path / "r" / name).read_bytes()
    (tmp_path / "r" / name).write_bytes(data[: len(data) // 3] if damage == "truncated" else b"")
    for argv in (["plot", str(tmp_path / "r")], ["prune", str(tmp_path / "r")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and ("corrupt" in err or "not readable" in err or "incomplete" in err), err


def test_a_history_without_its_metrics_and_parameters_of_the_wrong_shape(tmp_path, capsys):
    cfg = grok.preset("doshi-coexistence-small").override(**{"train.steps": 4, "train.log_every": 2, "task.p": 7})
    run = grok.train(cfg, seeds=(0,), progress=False)
    bad = grok.Run(
        run.config, run.members, {k: v for k, v in run.history.items() if k != "test_acc"}, run.state, run.status
    )
    bad.save(tmp_path / "h")
    _one_line_exit_2(["plot", str(tmp_path / "h")], capsys, "'test_acc' has shape None")
    wrong = {k: (v[:, :-1] if k.endswith("kernel") and v.ndim == 3 else v) for k, v in run.state.items()}
    grok.Run(run.config, run.members, run.history, wrong, run.status).save(tmp_path / "p")
    _one_line_exit_2(["prune", str(tmp_path / "p")], capsys, "saved parameters do not fit its model")


def test_out_paths_that_are_files_or_empty(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    _one_line_exit_2(["sweep", "doshi-phase-small", "--out", str(tmp_path / "f")], capsys, "is a file")
    _one_line_exit_2(["demo", "--quick", "--out", str(tmp_path / "f")], capsys, "--out: got")
    _one_line_exit_2(["sweep", "doshi-phase-small", "--out", ""], capsys, "--out")
    with pytest.raises(store.RunDirError, match="is a file, not a run directory"):
        grok.load_run(tmp_path / "f")


# --------------------------------------------------------------------------- checks before training
def test_absurd_step_counts_and_models_are_refused_before_compiling(monkeypatch):
    def trained(*args, **kwargs):
        raise AssertionError("an absurd run reached training")  # fail at once, not after hours

    monkeypatch.setattr(grok.engine, "run_group", trained)
    traces = grok.trace_count()
    start = time.perf_counter()
    for over, match in [
        ({"train.steps": 10**10, "train.log_every": 1}, "train.log_every: got 1; .*at most 1000000 evaluation points"),
        ({"train.steps": 999_999, "train.log_every": 1, "model.widths": [4096, 4096]}, "memory: .*GiB per member"),
        ({"model.widths": [100_000, 100_000]}, "memory: .*GiB per member"),
    ]:
        with pytest.raises(grok.ConfigError, match=match):
            grok.train(tiny(**over), progress=False)
    with pytest.raises(grok.ConfigError, match="seeds: .*members of"):
        check_group_memory(tiny(), 10**6, memory_bytes=2**30)
    assert grok.trace_count() == traces and time.perf_counter() - start < 5


def test_chunking_a_huge_run_needs_no_loop_over_its_intervals():
    from grok.schedule import _divisor_near, divisors

    assert divisors(36) == [1, 2, 3, 4, 6, 9, 12, 18, 36]
    assert divisors(97) == [1, 97]
    start = time.perf_counter()
    assert _divisor_near(10**12, 5 * 10**10) == 5 * 10**10
    assert time.perf_counter() - start < 1


# --------------------------------------------------------------------------- divergence
@pytest.mark.parametrize(
    "base, over",
    [({}, {"optim.lr": 1e9}), ({"optim.kind": "sgd", "optim.lr": 0.1}, {"optim.lr": 1e6})],
    ids=["adamw", "sgd"],
)
def test_a_blow_up_is_divergence_and_freezes_the_member(base, over):
    """The issue's attempts: AdamW at lr 1e9 (loss 1.3e32) and SGD at lr 1e6 (7e29) ran on unflagged."""
    cfg = tiny(**{"train.steps": 20, "train.log_every": 2, "optim.transforms": []} | base)
    run = grok.train_members(cfg, [{"seed": 0}, {"seed": 1} | over], progress=False)
    assert run.status["diverged"] == [False, True]
    step = run.status["diverged_step"][1]
    assert 0 <= step < 20
    loss = run.history["train_loss"][1]
    assert np.all(np.isfinite(loss)) and loss.max() > cfg.train.divergence_factor * loss[0]
    after = run.history["step"] > step + 1
    assert np.all(loss[after] == loss[after][0])  # frozen
    healthy = grok.train_members(cfg, [{"seed": 0}, {"seed": 1}], progress=False)  # the same group, no blow-up
    np.testing.assert_array_equal(run.history["train_loss"][0], healthy.history["train_loss"][0])


def test_a_hyperparameter_that_rounds_away_in_the_parameter_dtype_is_refused():
    with pytest.raises(grok.ConfigError, match="optim.eps: got 1e-25; allowed: .*float16 \\(it rounds to 0.0\\)"):
        grok.preset("prieto-stablemax-small").override(**{"train.param_dtype": "float16", "loss.dtype": "float16"})
    with pytest.raises(grok.ConfigError, match="model.alpha: got 1000000.0; .*float16 \\(it rounds to inf\\)"):
        grok.preset("kumar-fig1").override(**{"train.param_dtype": "float16", "model.alpha": 1e6})


# --------------------------------------------------------------------------- checkpoints
CKPT_ARGS = [
    "--preset", "prieto-perpgrad-small", "--seeds", "0", "1", "2", "--quiet",
    "--set", "train.steps=400", "--set", "train.log_every=10", "--set", "train.checkpoint_every=20",
    "--set", "train.probes=[\"collapse\"]",
]  # fmt: skip


@pytest.mark.slow
def test_grok_train_killed_with_9_resumes_bit_identical(tmp_path):
    """`grok train --out DIR`, killed -9 after some checkpoints, run again: the same run as uninterrupted."""
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "grok.cli", "train", *CKPT_ARGS]
    whole = subprocess.run([*cmd, "--out", str(tmp_path / "whole")], capture_output=True, text=True, env=env)
    assert whole.returncode == 0, whole.stderr
    killed = subprocess.Popen([*cmd, "--out", str(tmp_path / "k")], env=env, stderr=subprocess.DEVNULL)
    meta = tmp_path / "k" / "checkpoint" / "meta.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (meta.is_file() and json.loads(meta.read_text())["chunks_done"] >= 3):
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    done = json.loads(meta.read_text())["chunks_done"]
    assert 3 <= done < 20 and not (tmp_path / "k" / "status.json").exists()
    again = subprocess.run([*cmd, "--out", str(tmp_path / "k")], capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stderr
    a, b = grok.load_run(tmp_path / "whole"), grok.load_run(tmp_path / "k")
    assert not (tmp_path / "k" / "checkpoint").exists()
    for name in a.history:
        np.testing.assert_array_equal(a.history[name], b.history[name], err_msg=name)
    for name in a.state:
        np.testing.assert_array_equal(a.state[name], b.state[name], err_msg=name)


def _train_until_the_first_checkpoint(cfg: grok.Config, out: Path, monkeypatch) -> list[int]:
    """`grok.train(cfg, out=out)` stopped right after its first checkpoint (as a kill would); the
    chunks each checkpoint saved."""
    from grok import checkpoint

    saves, original = [], checkpoint.RunCheckpoint.save

    def save_and_stop(self, resume, layout, steps_done):
        original(self, resume, layout, steps_done)
        saves.append(resume.chunks_done)
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.RunCheckpoint, "save", save_and_stop)
    with pytest.raises(KeyboardInterrupt):
        grok.train(cfg, seeds=(0,), progress=False, out=out)
    monkeypatch.undo()
    return saves


def test_a_checkpoint_of_another_config_is_an_error_naming_the_difference(tmp_path, monkeypatch):
    cfg = tiny(**{"train.steps": 20, "train.checkpoint_every": 2})
    saves = _train_until_the_first_checkpoint(cfg, tmp_path / "r", monkeypatch)
    assert saves == [1] and (tmp_path / "r" / "checkpoint" / "meta.json").is_file()
    with pytest.raises(grok.ConfigError, match="differs in config.optim.lr.*--overwrite"):
        grok.train(cfg.override(**{"optim.lr": 0.02}), seeds=(0,), progress=False, out=tmp_path / "r")
    run = grok.train(cfg.override(**{"optim.lr": 0.02}), seeds=(0,), progress=False, out=tmp_path / "r", overwrite=True)
    assert grok.load_run(tmp_path / "r").config.optim.lr == 0.02 == run.config.optim.lr


def _interrupted_rename(path: Path, *, moved_aside: bool) -> None:
    """The state a kill -9 inside `store.write_dir_whole(path)` leaves: a half-written new copy beside
    `path`, and with `moved_aside` the old directory renamed away but the new one not yet in place."""
    new = path.parent / f".{path.name}.new-x1"
    new.mkdir()
    (new / "meta.json").write_text("{")  # cut off mid-write
    if moved_aside:
        path.rename(path.parent / f".{path.name}.old-x2")


@pytest.mark.parametrize("moved_aside", [False, True], ids=["new-copy-left", "between-renames"])
def test_a_run_killed_while_writing_its_checkpoint_resumes_bit_identical(tmp_path, moved_aside, monkeypatch):
    """The CI-found race: `grok train --out` killed while it wrote a checkpoint, then run again."""
    cfg = tiny(**{"train.steps": 20, "train.checkpoint_every": 2})
    _train_until_the_first_checkpoint(cfg, tmp_path / "r", monkeypatch)
    _interrupted_rename(tmp_path / "r" / "checkpoint", moved_aside=moved_aside)
    resumed = grok.train(cfg, seeds=(0,), progress=False, out=tmp_path / "r")
    whole = grok.train(cfg, seeds=(0,), progress=False)
    for name in whole.history:
        np.testing.assert_array_equal(resumed.history[name], whole.history[name], err_msg=name)
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [
        "config.json",
        "history.npz",
        "params.npz",
        "status.json",
    ]


def test_a_save_killed_between_its_renames_keeps_the_old_run(tmp_path, small_run):
    path = tmp_path / "run"
    small_run.save(path)
    _interrupted_rename(path, moved_aside=True)
    with pytest.raises(store.RunDirError, match="already holds a run"):  # the old run is back, not overwritten
        small_run.save(path)
    assert grok.load_run(path).n_members == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# --------------------------------------------------------------------------- a member's run is its own
@pytest.mark.parametrize("preset", ["prieto-perpgrad-small", "doshi-coexistence-small", "kumar-fig1"])
def test_a_member_trained_alone_in_a_group_or_sharded_is_bit_identical(preset, monkeypatch):
    """float32, default CPU path: alone = unsharded in a group (any position) = sharded over the 4 test devices."""
    monkeypatch.delenv("GROK_MEMBER_BLOCK", raising=False)
    cfg = grok.preset(preset).override(**{"train.steps": 60, "train.schedule": "linear", "train.log_every": 20})
    alone = grok.train(cfg, seeds=(3,), progress=False)
    grouped = grok.train(cfg, seeds=(1, 3, 2), progress=False, shard=False)
    sharded = grok.train(cfg, seeds=(5, 6, 3, 7, 8), progress=False)  # padded to 8, 2 per device
    for run, i in ((grouped, 1), (sharded, 2)):
        for name, value in alone.history.items():
            np.testing.assert_array_equal(
                run.history[name][i] if name != "step" else run.history[name],
                value[0] if name != "step" else value,
                err_msg=name,
            )
        for name, value in alone.state.items():
            np.testing.assert_array_equal(run.state[name][i], value[0], err_msg=name)


def test_a_resumed_run_keeps_the_snapshots_taken_before_the_kill(tmp_path):
    from grok import checkpoint

    cfg = tiny(**{"train.steps": 40, "train.log_every": 2, "train.checkpoint_every": 10, "train.snapshots": 5})
    whole = grok.train(cfg, seeds=(0, 1), progress=False)
    original = checkpoint.RunCheckpoint.save

    def save_and_stop(self, resume, layout, steps_done):
        original(self, resume, layout, steps_done)
        raise KeyboardInterrupt  # a kill right after the first checkpoint

    checkpoint.RunCheckpoint.save = save_and_stop
    try:
        with pytest.raises(KeyboardInterrupt):
            grok.train(cfg, seeds=(0, 1), progress=False, out=tmp_path / "r")
    finally:
        checkpoint.RunCheckpoint.save = original
    resumed = grok.train(cfg, seeds=(0, 1), progress=False, out=tmp_path / "r")
    assert resumed.steps_with_snapshots == whole.steps_with_snapshots and len(whole.steps_with_snapshots) == 5
    loaded = grok.load_run(tmp_path / "r")
    for step in whole.steps_with_snapshots:
        for name, value in whole.params_at(step, 1).items():
            np.testing.assert_array_equal(loaded.params_at(step, 1)[name], value, err_msg=f"{step} {name}")
    for name in whole.history:
        np.testing.assert_array_equal(resumed.history[name], whole.history[name], err_msg=name)


def test_a_gradient_whose_square_overflows_counts_as_divergence():
    """g = 1e20 in float32: g² is inf, so Adam's second moment would be inf and its update 0, with
    finite parameters; the step is flagged instead of freezing that coordinate silently."""
    import jax.numpy as jnp

    from grok.engine import _step_finite

    params = {"w": jnp.ones((3,), jnp.float32)}
    assert bool(_step_finite(params, {"w": jnp.asarray([1.0, 1e10, -1e18], jnp.float32)}))
    assert not bool(_step_finite(params, {"w": jnp.asarray([1.0, 1e20, 0.0], jnp.float32)}))
    assert not bool(_step_finite({"w": jnp.asarray([1.0, jnp.nan, 0.0])}, {"w": jnp.zeros((3,))}))
