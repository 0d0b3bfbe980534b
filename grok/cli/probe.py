"""`grok probe RUN_DIR --probes neurons --out FILE.npz`: registered probes evaluated after the fact on
a run's snapshots (`grok.probe_history`)."""

from __future__ import annotations

import argparse

from grok.errors import ConfigError


def cmd_probe(args: argparse.Namespace) -> int:
    import grok
    from grok.store import atomic_write_npz

    if not args.out.endswith(".npz"):
        raise ConfigError("--out", args.out, "a file name ending in .npz")
    run = grok.load_run(args.run_dir)
    values = grok.probe_history(run, args.probes, steps=args.steps)
    atomic_write_npz(args.out, values)
    shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in values.items() if k != "step")
    print(f"{len(values['step'])} snapshots x {run.n_members} member(s): {shapes}")
    print(f"saved to {args.out}")
    return 0


def add_parser(subparsers) -> None:
    """Add `probe` to the `grok` subcommands."""
    p = subparsers.add_parser("probe", help="evaluate registered probes on a run's snapshots, after training")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory saved with train.snapshots")
    p.add_argument("--probes", nargs="+", required=True, help="registered probe names, e.g. neurons ntk")
    p.add_argument("--steps", type=int, nargs="+", help="snapshot steps (default: all)")
    p.add_argument(
        "--out", required=True, help="an .npz file: one [members, snapshots, ...] array per metric, and step"
    )
    p.set_defaults(func=cmd_probe)
