"""Helpers shared by several test modules (importable because tests/ is on pytest's sys.path)."""

from __future__ import annotations

from pathlib import Path

from grok.cli import build_parser

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# overrides that make a modular preset train in a second (p = 13, 8 hidden units, 8 steps)
TINY = {
    "task.p": 13,
    "task.train_fraction": 0.5,
    "model.widths": [8],
    "train.steps": 8,
    "train.log_every": 4,
    "train.schedule": "linear",
}


def run_command(argv: list[str]) -> int:
    """Run a `grok` subcommand through the real parser, letting its errors propagate (no exit-2 handling)."""
    args = build_parser().parse_args(argv)
    return args.func(args)


def assert_png(path: Path, min_bytes: int = 10_000) -> None:
    """A PNG file with at least `min_bytes` (a figure with content, not an empty canvas)."""
    data = Path(path).read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > min_bytes, len(data)
