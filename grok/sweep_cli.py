"""`grok sweep` and `grok phase` (wired into grok/cli.py by `add_commands(subparsers)`).

    grok sweep SPEC --out DIR [--quiet] [--dry-run]   # SPEC: a TOML file or a sweep preset name
    grok sweep SPEC --out DIR --distributed           # multi-host (or --coordinator, --num-processes, --process-id)
    grok sweep --list                                 # the sweep presets
    grok phase DIR [--x AXIS] [--y AXIS] [--panel AXIS] [--at AXIS=VALUE ...] [--metric NAME] [--out FILE]

Running `grok sweep` again with the same SPEC and DIR resumes it. Bad input raises
`grok.ConfigError` / `grok.store.RunDirError` (the CLI prints one line and exits 2).
"""

from __future__ import annotations

import argparse
from collections import Counter
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


def _init_distributed(args) -> None:
    """`jax.distributed.initialize` from --distributed / --coordinator / --num-processes / --process-id."""
    manual = (args.coordinator, args.num_processes, args.process_id)
    if not args.distributed and all(v is None for v in manual):
        return
    if any(v is None for v in manual) and not all(v is None for v in manual):
        raise ConfigError("--coordinator", args.coordinator, "--coordinator, --num-processes and --process-id together")
    import jax

    if all(v is None for v in manual):
        jax.distributed.initialize()  # cluster auto-detection (SLURM, Open MPI, TPU pods, JAX_* variables)
    else:
        jax.distributed.initialize(args.coordinator, num_processes=args.num_processes, process_id=args.process_id)


def cmd_sweep(args) -> int:
    from grok.sweep import SweepSpec, sweep, sweep_presets

    if args.list:
        names = sweep_presets()
        width = max(map(len, names), default=0)
        for name, desc in names.items():
            print(f"{name:<{width}}  {desc}")
        return 0
    if not args.spec:
        raise ConfigError("SPEC", None, "a sweep TOML file or a sweep preset name (see `grok sweep --list`)")
    spec = SweepSpec.parse(args.spec)
    if args.dry_run:
        print(spec.describe())
        return 0
    if not args.out:
        raise ConfigError("--out", None, "a directory for the sweep's results")
    _init_distributed(args)
    if not args.quiet:
        print(spec.describe())
    sw = sweep(spec, args.out, progress=not args.quiet)
    if sw.classification.any():
        counts = Counter(sw.phase.ravel().tolist())
        print("phases: " + ", ".join(f"{k}={v}" for k, v in counts.most_common()))
    print(f"saved to {args.out}  (draw it: grok phase {args.out})")
    return 0


def cmd_phase(args) -> int:
    from grok import phase_plots
    from grok.sweep import load_sweep

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
        written.append(phase_plots.phase_diagram(sw, args.out or d / "phase.png", **where))
        written.append(phase_plots.heatmap(sw, "grokking_delay", d / "heatmap_grokking_delay.png", **where))
    else:  # regression sweeps [K]: no phases; grokking delay and final test loss
        out = args.out or d / "heatmap_grokking_delay.png"
        written.append(phase_plots.heatmap(sw, "grokking_delay", out, **where))
        written.append(phase_plots.heatmap(sw, "test_loss", d / "heatmap_test_loss.png", log=True, **where))
    for path in written:
        print(f"wrote {path}")
    return 0


def add_commands(subparsers) -> None:
    """Add `sweep` and `phase` to the `grok` CLI's subparsers."""
    p = subparsers.add_parser(
        "sweep",
        help="run (or resume) a phase-diagram sweep: a grid of configs as a few compiled programs",
        description="Run a sweep spec (TOML: preset, seeds, [set], [axes]) or a sweep preset. "
        "Static axes make separate compiled groups; dynamic axes and seeds are vmapped members, "
        "sharded over all JAX devices. Running it again into the same --out resumes it.",
    )
    p.add_argument("spec", nargs="?", help="a sweep TOML file or a sweep preset name (see --list)")
    p.add_argument("--out", help="the sweep directory (results, sweep.json); reuse it to resume")
    p.add_argument("--quiet", action="store_true", help="no plan, no progress bar")
    p.add_argument("--dry-run", action="store_true", help="validate the spec and print the plan; train nothing")
    p.add_argument("--list", action="store_true", help="list the sweep presets")
    p.add_argument(
        "--distributed",
        action="store_true",
        help="multi-host: call jax.distributed.initialize() (cluster auto-detection); each process trains "
        "its share of the batches into the shared --out",
    )
    p.add_argument("--coordinator", metavar="HOST:PORT", help="multi-host without auto-detection: process 0's address")
    p.add_argument("--num-processes", type=int, help="multi-host: number of processes (with --coordinator)")
    p.add_argument("--process-id", type=int, help="multi-host: this process's index (with --coordinator)")
    p.set_defaults(func=cmd_sweep)

    p = subparsers.add_parser(
        "phase",
        help="draw a sweep's phase diagram [D] and heat maps (grokking delay, any final metric)",
        description="Phase diagram of a sweep directory: two axes, a colour per phase, a panel per value of "
        "a third axis, seeds by majority with agreement shown; or heat maps of --metric.",
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
    p.add_argument("--log", action="store_true", help="logarithmic colour scale for --metric heat maps")
    p.add_argument("--out", help="PNG to write (default: DIR/phase.png or DIR/heatmap_<metric>.png)")
    p.set_defaults(func=cmd_phase)


def build_parser() -> argparse.ArgumentParser:
    """A stand-alone parser with just these commands (tests; the real CLI is grok/cli.py)."""
    parser = argparse.ArgumentParser(prog="grok")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_commands(sub)
    return parser
