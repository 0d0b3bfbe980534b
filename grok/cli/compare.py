"""`grok compare SWEEP_DIR`: steps to a test-accuracy threshold per method of a sweep, each at its
own best learning rate and at the baseline's, with the effective step size (`grok.compare`).

    grok compare DIR [--threshold 0.9] [--lr-axis optim.lr] [--baseline LABEL] [--out FILE]

Bad input raises `grok.ConfigError` / `grok.store.RunDirError` (the CLI prints one line and exits 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_compare(args: argparse.Namespace) -> int:
    from grok.compare import compare
    from grok.plots.compare import comparison_figure
    from grok.sweep import load_sweep

    sw = load_sweep(args.dir)
    cmp = compare(sw, threshold=args.threshold, lr_axis=args.lr_axis, baseline=args.baseline)
    print(cmp.table())
    out = comparison_figure(cmp, args.out or Path(args.dir) / "compare.png", last_step=float(sw.steps[-1]))
    print(f"wrote {out}")
    return 0


def add_parser(subparsers) -> None:
    """Add `compare` to the `grok` subcommands."""
    p = subparsers.add_parser(
        "compare",
        help="compare the methods of a sweep: steps to 90%% test accuracy at each one's best lr",
        description="Every grid point of the sweep's axes other than the learning rate and the seeds is a "
        "method. Prints, per method, the steps to the threshold at its own best lr of the grid (median, "
        "range over seeds, never-reached count) and at the baseline's best lr, with the mean ‖Δθ‖ per "
        "step; draws a strip plot per method.",
    )
    p.add_argument("dir", help="a sweep directory written by `grok sweep`")
    p.add_argument("--threshold", type=float, default=0.9, help="test accuracy to reach (default 0.9)")
    p.add_argument(
        "--lr-axis",
        default="optim.lr",
        help="the axis each method is tuned over (default optim.lr; e.g. optim.weight_decay)",
    )
    p.add_argument("--baseline", help="the baseline method's label (default: the first method)")
    p.add_argument("--out", help="PNG to write (default: DIR/compare.png)")
    p.set_defaults(func=cmd_compare)
