"""`grok plot RUN_DIR`: a multi-panel figure of a saved run and its probes (docs/architecture.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from grok.errors import ConfigError


def add_parser(subparsers) -> None:
    """Add `plot` to the `grok` subcommands."""
    p = subparsers.add_parser(
        "plot",
        help="draw a saved run: accuracy, loss, collapse/NLM, NTK, IPR histogram, weight norms",
        description=(
            "Write a multi-panel PNG of a run directory: accuracy, loss, and the probes it recorded "
            "(softmax collapse and NLM [P], NTK alignment and movement [K], IPR histogram and mean [D], "
            "weight norms), then a panel for each other metric the run recorded as a number per interval "
            "(a probe of your own, say)."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `grok train --out`")
    p.add_argument("--out", metavar="FILE", help="PNG to write (default: RUN_DIR/plot.png)")
    p.add_argument(
        "--steps",
        type=int,
        nargs="+",
        metavar="STEP",
        help="steps for the IPR histogram (the nearest logged ones; default: 0 and three log-spaced steps)",
    )
    p.add_argument(
        "--member",
        type=int,
        action="append",
        metavar="I",
        help="draw member I only (repeat for several; default: all members)",
    )
    p.add_argument("--title", default="", help="figure title (default: the run's description)")
    p.set_defaults(func=cmd_plot)


def cmd_plot(args: argparse.Namespace) -> int:
    """Handler of `grok plot`; ConfigError / RunDirError for bad input."""
    from grok.plots.run import plot_run
    from grok.run import load_run

    run = load_run(args.run_dir)
    members = args.member
    if members is not None:
        for i in members:
            if not 0 <= i < run.n_members:
                raise ConfigError("--member", i, f"a member index 0..{run.n_members - 1}")
    steps = args.steps
    if steps is not None:
        last = int(run.history["step"][-1])
        for s in steps:
            if not 0 <= s <= last:
                raise ConfigError("--steps", s, f"steps between 0 and {last}")
    out = Path(args.out) if args.out else Path(args.run_dir) / "plot.png"
    if out.suffix.lower() != ".png":
        raise ConfigError("--out", str(out), "a .png file name")
    path = plot_run(run, out, steps=steps, members=members, title=args.title)
    print(f"wrote {path}")
    return 0
