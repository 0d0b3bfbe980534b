"""`grok export`: histories as TensorBoard scalars (read back with the event protobuf) and W&B runs
(offline); the run or sweep directory is never changed."""

from __future__ import annotations

import hashlib
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY

import grok
from grok.cli import main


def read_scalars(member_dir: Path) -> dict[str, dict[int, float]]:
    """Every scalar in a TensorBoard run directory: TFRecord frames decoded with the Event protobuf."""
    from tensorboardX.proto.event_pb2 import Event

    out: dict[str, dict[int, float]] = {}
    for path in member_dir.glob("events.out.tfevents.*"):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            record = data[pos + 12 : pos + 12 + length]
            pos += 12 + length + 4
            event = Event.FromString(record)
            for value in event.summary.value:
                out.setdefault(value.tag, {})[event.step] = value.simple_value
    return out


def tree_digest(path: Path) -> dict[str, str]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "run"
    cfg = grok.preset("prieto-perpgrad-small").override(**(TINY | {"train.probes": ["collapse"]}))
    grok.train(cfg, seeds=(3, 5), progress=False, out=out)
    return out


def test_tensorboard_holds_every_scalar_of_every_member_and_the_run_is_unchanged(saved_run, tmp_path, capsys):
    pytest.importorskip("tensorboardX")
    before = tree_digest(saved_run)
    logdir = tmp_path / "tb"
    assert main(["export", str(saved_run), "--tensorboard", str(logdir)]) == 0
    assert "2 member run(s)" in capsys.readouterr().out
    run = grok.load_run(saved_run)
    assert sorted(p.name for p in logdir.iterdir()) == ["seed=3", "seed=5"]
    for i, seed in enumerate((3, 5)):
        scalars = read_scalars(logdir / f"seed={seed}")
        for metric in ("test_acc", "train_loss", "sc_fraction"):
            want = dict(zip(run.history["step"].tolist(), run.history[metric][i].tolist(), strict=True))
            assert scalars[metric].keys() == want.keys()
            np.testing.assert_allclose(list(scalars[metric].values()), list(want.values()), rtol=1e-6)
        assert "ipr" not in scalars and any(k.startswith("weight_norm/") for k in scalars)
    assert tree_digest(saved_run) == before
    # a second export into the same place is refused unless asked
    assert main(["export", str(saved_run), "--tensorboard", str(logdir)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["export", str(saved_run), "--tensorboard", str(logdir), "--overwrite"]) == 0


def test_a_sweep_exports_one_run_per_member_named_by_its_axes(tmp_path):
    pytest.importorskip("tensorboardX")
    spec = {"preset": "prieto-perpgrad-small", "set": TINY, "axes": {"optim.lr": [0.01, 0.02]}, "seeds": [0]}
    grok.sweep(spec, out=tmp_path / "sw", progress=False)
    written = grok.export_tensorboard(tmp_path / "sw", tmp_path / "tb")
    assert sorted(p.name for p in written) == ["optim.lr=0.01,seed=0", "optim.lr=0.02,seed=0"]
    sw = grok.load_sweep(tmp_path / "sw")
    got = read_scalars(tmp_path / "tb" / "optim.lr=0.02,seed=0")["test_acc"]
    np.testing.assert_allclose([got[int(s)] for s in sw.steps], sw.history("test_acc")[1, 0], rtol=1e-6)
    pd = pytest.importorskip("pandas")
    df = sw.frame()
    assert isinstance(df, pd.DataFrame) and len(df) == 2 * len(sw.steps)
    assert df[(df["optim.lr"] == 0.02) & (df.step == sw.steps[-1])].test_acc.item() == pytest.approx(
        sw.metric("test_acc")[1, 0]
    )


def test_wandb_offline_gets_every_member_with_its_config(saved_run, tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    before = tree_digest(saved_run)
    logged: list[tuple[str, dict, int]] = []
    real_init = wandb.init

    def spying_init(**kwargs):
        run = real_init(**kwargs)
        real_log = run.log

        def log(row, step=None):
            logged.append((kwargs["name"], dict(row), step))
            return real_log(row, step=step)

        run.log = log
        assert kwargs["config"]["task"]["p"] == 13 and kwargs["config"]["seed"] in (3, 5)
        return run

    monkeypatch.setattr(wandb, "init", spying_init)
    ids = grok.export_wandb(saved_run, project="grok-test", mode="offline")
    assert len(ids) == 2
    files = sorted(tmp_path.rglob("run-*.wandb"))
    assert len(files) == 2
    deadline = time.monotonic() + 30  # W&B's service may still be writing the offline record files
    while not all(b"test_acc" in f.read_bytes() for f in files) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert all(b"test_acc" in f.read_bytes() and b"grok-test" in f.read_bytes() for f in files)
    run = grok.load_run(saved_run)
    seed5 = [(row, step) for name, row, step in logged if name.endswith("seed=5")]
    assert [s for _, s in seed5] == run.history["step"].tolist()
    assert [r["test_acc"] for r, _ in seed5] == pytest.approx(run.history["test_acc"][1].tolist())
    assert tree_digest(saved_run) == before
