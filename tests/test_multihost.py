"""Multi-host sweeps with real processes: two `grok sweep` processes under `jax.distributed` on CPU
share one directory; one is killed with -9 mid-sweep and a single plain process finishes the sweep,
bit-identical to a one-process sweep (the `grok.sweep` package docstring, "Multi-host")."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import grok
from grok.cli import build_parser, main
from grok.cli.sweep import _init_distributed
from grok.store import RunDirError

ROOT = Path(__file__).resolve().parents[1]
SPEC = textwrap.dedent(
    """
    preset = "prieto-perpgrad-small"
    seeds = [0, 1]
    max_members_per_program = 1
    [set]
    "task.p" = 7
    "task.train_fraction" = 0.5
    "model.widths" = [8, 8]
    "train.steps" = 8
    "train.log_every" = 2
    [axes]
    "optim.lr" = [0.01, 0.02]
    """
)  # 4 batches of one member: process 0 trains b000 and b002, process 1 b001 and b003
ENV = os.environ | {"PYTHONPATH": str(ROOT)}

# process 1 of the killed job: its first batch is renamed into place; at the rename of its second
# batch (all files written in the temporary directory, status.json included) it stops, to be killed
HOLD_SECOND_BATCH = textwrap.dedent(
    """
    import os, sys, time
    from grok.cli import main
    rename, renamed = os.rename, []
    def held(src, dst):
        if ".new-" in os.path.basename(str(src)):
            renamed.append(dst)
            if len(renamed) == 2:
                print("holding", dst, flush=True)
                time.sleep(600)
        rename(src, dst)
    os.rename = held
    sys.exit(main(sys.argv[1:]))
    """
)


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "sweep.toml"
    path.write_text(SPEC)
    return path


@pytest.fixture(scope="module")
def one_process(spec_file, tmp_path_factory) -> grok.Sweep:
    """The same sweep trained by one process (this one, members sharded over the 4 test devices)."""
    return grok.sweep(spec_file, tmp_path_factory.mktemp("one") / "sweep", progress=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sweep_argv(spec: Path, out: Path, *extra: str) -> list[str]:
    return ["sweep", str(spec), "--out", str(out), "--quiet", *extra]


def _distributed(port: int, i: int, *extra: str) -> list[str]:
    return ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i), *extra]


def _cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "grok.cli", *argv]


def _line(proc: subprocess.Popen, prefix: str, timeout: float) -> str:
    """The first stdout line of `proc` starting with `prefix`, or fail after `timeout` seconds."""
    lines: queue.Queue = queue.Queue()

    def read():
        for raw in proc.stdout:
            lines.put(raw.decode())
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    while True:
        line = lines.get(timeout=timeout)
        assert line is not None, f"the process ended (rc {proc.wait()}) before printing {prefix!r}"
        if line.startswith(prefix):
            return line


def _files(path: Path) -> dict[str, tuple[int, bytes]]:
    return {str(f.relative_to(path)): (f.stat().st_mtime_ns, f.read_bytes()) for f in path.rglob("*") if f.is_file()}


def _complete(out: Path) -> set[str]:
    partial = grok.load_sweep(out, allow_partial=True)
    return {b.path for b in partial._batches} - set(partial.missing)  # noqa: SLF001


def _assert_bit_identical(a: grok.Sweep, b: grok.Sweep) -> None:
    runs_a, runs_b = a.runs, b.runs
    assert len(runs_a) == len(runs_b) == len(a._batches)  # noqa: SLF001
    for ra, rb in zip(runs_a, runs_b, strict=True):
        assert ra.members == rb.members
        for name, value in ra.history.items():
            np.testing.assert_array_equal(rb.history[name], value, err_msg=name)
        assert ra.state.keys() == rb.state.keys()
        for name, value in ra.state.items():
            np.testing.assert_array_equal(rb.state[name], value, err_msg=name)


def _kill(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
def test_two_processes_give_the_one_process_sweep(spec_file, one_process, tmp_path):
    out, port = tmp_path / "two", _free_port()
    procs = [
        subprocess.Popen(_cli(*_sweep_argv(spec_file, out, *_distributed(port, i))), env=ENV, stderr=subprocess.PIPE)
        for i in (0, 1)
    ]
    try:
        errors = [p.communicate(timeout=240)[1].decode() for p in procs]
    finally:
        _kill(*procs)
    assert [p.returncode for p in procs] == [0, 0], errors
    two = grok.load_sweep(out)
    for b in two._batches:  # noqa: SLF001
        assert json.loads((out / b.path / "status.json").read_text())["process"] == b.index % 2
    _assert_bit_identical(one_process, two)


@pytest.mark.slow
@pytest.mark.parametrize("killed", [1, 0], ids=["peer-killed", "coordinator-killed"])
def test_a_process_killed_mid_sweep_and_one_plain_process_finishes_it(spec_file, one_process, tmp_path, killed):
    """One process is killed with -9 with one batch saved and its second one written but not yet in
    place. The other cannot finish the sweep: jax.distributed ends it once the dead one's heartbeats
    (or, when the coordinator, process 0, was killed, the coordination service) are missing, without
    hanging. Then one process without --coordinator resumes into the same directory: nothing finished
    is retrained, and the result is the one-process sweep, bit for bit."""
    out, port, heartbeat = tmp_path / "killed", _free_port(), 5
    extra = ("--heartbeat-timeout", str(heartbeat))
    argv = [_sweep_argv(spec_file, out, *_distributed(port, i, *extra)) for i in (0, 1)]
    survivor_id = 1 - killed
    survivor = subprocess.Popen(_cli(*argv[survivor_id]), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    victim = subprocess.Popen([sys.executable, "-c", HOLD_SECOND_BATCH, *argv[killed]], env=ENV, stdout=subprocess.PIPE)
    first, second = f"groups/g000/b{killed:03d}", f"groups/g000/b{killed + 2:03d}"  # the victim's two batches
    try:
        held = _line(victim, "holding", timeout=240)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        assert held.split()[1] == str(out / second)
        try:
            log = survivor.communicate(timeout=heartbeat + 120)[0].decode()
        except subprocess.TimeoutExpired:
            pytest.fail(f"process {survivor_id} hangs after process {killed} was killed")
    finally:
        _kill(survivor, victim)
    assert survivor.returncode != 0 and "saved to" not in log, log  # the sweep cannot be whole: no success claimed

    # what the two processes finished is whole and recorded as theirs; the held batch is not read
    done = _complete(out)
    assert first in done and done <= {f"groups/g000/b{b:03d}" for b in range(4)} - {second}
    (half,) = (out / "groups/g000").glob(f".b{killed + 2:03d}.new-*")  # the killed rename: every file, status.json too
    assert (half / "status.json").is_file() and not (out / second).exists()
    with pytest.raises(RunDirError, match="incomplete"):
        grok.load_sweep(out)
    finished = {path: _files(out / path) for path in done}
    for path in done:
        assert json.loads((out / path / "status.json").read_text())["process"] == int(path[-1]) % 2

    plain = subprocess.run(_cli(*_sweep_argv(spec_file, out)), env=ENV, capture_output=True, text=True, timeout=240)
    assert plain.returncode == 0, plain.stderr
    for path, files in finished.items():  # not retrained, not rewritten
        assert _files(out / path) == files, path
    assert not list(out.rglob(".*.new-*"))
    resumed = grok.load_sweep(out)
    for b in resumed._batches:  # noqa: SLF001
        if b.path not in done:  # trained by the plain process, the only one of its job
            assert json.loads((out / b.path / "status.json").read_text())["process"] == 0
    _assert_bit_identical(one_process, resumed)


def test_the_distributed_options_reach_jax(monkeypatch, spec_file, tmp_path, capsys):
    """--heartbeat-timeout is passed on; JAX's preemption service, which would swallow SIGTERM, is off."""
    import jax

    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda *a, **k: calls.append((a, k)))
    before = jax.config.jax_enable_preemption_service
    try:
        args = build_parser().parse_args(
            _sweep_argv(spec_file, tmp_path / "s", *_distributed(1234, 1, "--heartbeat-timeout", "7"))
        )
        _init_distributed(args)
        assert calls == [(("127.0.0.1:1234",), {"num_processes": 2, "process_id": 1, "heartbeat_timeout_seconds": 7})]
        assert jax.config.jax_enable_preemption_service is False
    finally:
        jax.config.update("jax_enable_preemption_service", before)
    for extra, expected in [
        (("--heartbeat-timeout", "5"), "--heartbeat-timeout: got 5; allowed: only with --distributed"),
        (("--distributed", "--heartbeat-timeout", "0"), "--heartbeat-timeout: got 0; allowed: a whole number"),
    ]:
        assert main(_sweep_argv(spec_file, tmp_path / "s", *extra)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err, err
    assert len(calls) == 1 and not (tmp_path / "s").exists()


def test_a_process_done_first_waits_on_disk_for_the_others_batches(spec_file, one_process, tmp_path, monkeypatch):
    """Process 0 of 2 (faked in this process) trains b000 and b002, then waits until the peer's
    batches appear whole in the directory — however late: no collective with a timeout is involved."""
    from grok.sweep import runner

    monkeypatch.setattr(runner.jax, "process_count", lambda: 2)
    monkeypatch.setattr(runner.jax, "process_index", lambda: 0)
    out, delay = tmp_path / "s", 3.0

    def peer():  # writes its batches like a process would: a whole directory renamed into place
        time.sleep(delay)
        for name in ("b001", "b003"):
            tmp = out / "groups/g000" / f".{name}.new-peer"
            shutil.copytree(one_process.path / "groups/g000" / name, tmp)
            os.rename(tmp, out / "groups/g000" / name)

    writer = threading.Thread(target=peer)
    start = time.perf_counter()
    writer.start()
    try:
        sw = grok.sweep(spec_file, out, progress=False)
    finally:
        writer.join()
    assert time.perf_counter() - start >= delay and not sw.missing
    for name in ("b001", "b003"):  # the peer's, read as written, not retrained here
        ref = one_process.path / "groups/g000" / name / "status.json"
        assert (out / "groups/g000" / name / "status.json").read_bytes() == ref.read_bytes()
    _assert_bit_identical(one_process, sw)
