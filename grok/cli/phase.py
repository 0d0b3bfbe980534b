"""`grok phase DIR`: a sweep's phase diagram [D] and heat maps (a sweep written by `grok sweep`).

    grok phase DIR [--x AXIS] [--y AXIS] [--panel AXIS] [--at AXIS=VALUE ...] [--metric NAME] [--out FILE]
                   [--rule doshi|corrupted_subset] [--quiet]

It prints the phase table (per cell: majority phase, k/n seeds, Wilson 95% interval, the phases of
seeds that disagree) unless --quiet.

Bad input raises `grok.ConfigError` / `grok.store.RunDirError` (the CLI prints one line and exits 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from grok.errors import ConfigError


def _parse_at(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError("--at", item, "AXIS=VALUE, e.g. task.train_fraction=0.5")
        out[key.strip()] = value.strip()
    return out


def cmd_phase(args: argparse.Namespace) -> int:
    from grok.phases import PHASE_RULES
    from grok.plots import phase as phase_plots
    from grok.sweep import load_sweep
    from grok.sweep.refine import load_refinement
    from grok.sweep.report import phase_table

    if args.rule not in PHASE_RULES:
        raise ConfigError("--rule", args.rule, "one of " + ", ".join(PHASE_RULES))
    sw = load_sweep(args.dir)
    at = _parse_at(args.at)
    d = Path(args.dir)
    where = dict(x=args.x, y=args.y, panel=args.panel, at=at)
    written = []
    if args.metric:
        for i, metric in enumerate(args.metric):
            out = args.out if args.out and len(args.metric) == 1 else None
            out = out or d / f"heatmap_{metric}.png"
            if args.out and len(args.metric) > 1 and i == 0:
                raise ConfigError("--out", args.out, "one --metric with --out (or no --out for several)")
            written.append(phase_plots.heatmap(sw, metric, out, log=args.log, **where))
    elif sw.classification.any():
        if not args.quiet:
            print(phase_table(sw, args.rule))
        ref = load_refinement(d, args.rule)
        out = args.out or d / "phase.png"
        written.append(phase_plots.phase_diagram(sw, out, rule=args.rule, refinement=ref, **where))
        written.append(phase_plots.heatmap(sw, "grokking_delay", d / "heatmap_grokking_delay.png", **where))
    else:  # regression sweeps [K]: no phases; grokking delay and final test loss
        out = args.out or d / "heatmap_grokking_delay.png"
        written.append(phase_plots.heatmap(sw, "grokking_delay", out, **where))
        written.append(phase_plots.heatmap(sw, "test_loss", d / "heatmap_test_loss.png", log=True, **where))
    for path in written:
        print(f"wrote {path}")
    return 0


def add_parser(subparsers) -> None:
    """Add `phase` to the `grok` subcommands."""
    p = subparsers.add_parser(
        "phase",
        help="draw a sweep's phase diagram [D] and heat maps (grokking delay, any final metric)",
        description="Phase diagram of a sweep directory: two axes, a colour per phase, a panel per value of "
        "a third axis, cells where seeds disagree striped; prints the per-cell phase table with Wilson "
        "intervals; or heat maps of --metric.",
    )
    p.add_argument("dir", help="a sweep directory written by `grok sweep`")
    p.add_argument("--x", help="axis along x (default: the first axis with several values)")
    p.add_argument("--y", help="axis along y (default: the next one)")
    p.add_argument("--panel", help="one panel per value of this axis (default: the next one)")
    p.add_argument("--at", action="append", metavar="AXIS=VALUE", help="fix an axis that is not drawn")
    p.add_argument(
        "--metric",
        action="append",
        help="heat map of this final metric (e.g. test_acc, train_acc_corrupted) or grokking_delay; repeatable",
    )
    p.add_argument(
        "--rule",
        default="doshi",
        help="phase rule: doshi ([D]'s, on total train accuracy; the default) or corrupted_subset "
        "(by the corrupted labels' accuracies, recognises inversion at any corruption fraction)",
    )
    p.add_argument("--quiet", action="store_true", help="no phase table, only the files written")
    p.add_argument("--log", action="store_true", help="logarithmic colour scale for --metric heat maps")
    p.add_argument("--out", help="PNG to write (default: DIR/phase.png or DIR/heatmap_<metric>.png)")
    p.set_defaults(func=cmd_phase)
