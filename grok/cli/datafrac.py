"""`grok datafrac DIR`: Power et al.'s data-fraction study of a sweep (steps to 99% validation accuracy
against the training fraction, one line per operation; docs/formulas.md §7.5).

    grok datafrac DIR [--threshold 0.99] [--out FILE] [--quiet]

Prints the table (per operation and fraction: seeds that reached the threshold, median, range,
censored) and writes DIR/datafrac.png. Bad input is one line and exit 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from grok.errors import ConfigError


def cmd_datafrac(args: argparse.Namespace) -> int:
    from grok.datafrac import data_fraction_figure, data_fraction_points, data_fraction_table
    from grok.sweep import load_sweep

    if not 0 < args.threshold <= 1:
        raise ConfigError("--threshold", args.threshold, "an accuracy in (0, 1]")
    sw = load_sweep(args.dir)
    points = data_fraction_points(sw, args.threshold)
    if not args.quiet:
        print(data_fraction_table(points, args.threshold))
    out = data_fraction_figure(points, args.out or Path(args.dir) / "datafrac.png", args.threshold)
    print(f"wrote {out}")
    return 0


def add_parser(subparsers) -> None:
    """Add `datafrac` to the `grok` subcommands."""
    p = subparsers.add_parser(
        "datafrac",
        help="Power et al.'s data-fraction figure of a sweep: steps to 99%% validation accuracy vs training fraction",
        description="Steps until the test (validation) accuracy first reaches --threshold, against "
        "task.train_fraction, one line per operation, seeds as bands; members that never reach it are "
        "censored: drawn at the budget and counted.",
    )
    p.add_argument("dir", help="a sweep directory with a task.train_fraction axis (e.g. power-data-fraction-small)")
    p.add_argument("--threshold", type=float, default=0.99, help="validation accuracy to reach (default 0.99)")
    p.add_argument("--out", help="PNG to write (default DIR/datafrac.png)")
    p.add_argument("--quiet", action="store_true", help="no table, only the file written")
    p.set_defaults(func=cmd_datafrac)
