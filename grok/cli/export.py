"""`grok export RUN_OR_SWEEP_DIR --tensorboard LOGDIR [--wandb]`: histories as TensorBoard scalars
and W&B runs (`grok.export`); the run or sweep directory is only read."""

from __future__ import annotations

import argparse

from grok.errors import ConfigError


def cmd_export(args: argparse.Namespace) -> int:
    from grok.export import _load, export_tensorboard, export_wandb

    if not args.tensorboard and not args.wandb:
        raise ConfigError("grok export", args.dir, "at least one target: --tensorboard LOGDIR and/or --wandb")
    source = _load(args.dir)  # a bad directory is refused before anything is written
    if args.tensorboard:
        written = export_tensorboard(source, args.tensorboard, overwrite=args.overwrite)
        print(f"tensorboard: {len(written)} member run(s) under {args.tensorboard} (open: tensorboard --logdir DIR)")
    if args.wandb:
        ids = export_wandb(
            source, project=args.wandb_project, group=args.dir.rstrip("/").split("/")[-1], mode=args.wandb_mode
        )
        print(f"wandb: {len(ids)} run(s) in project {args.wandb_project}")
    return 0


def add_parser(subparsers) -> None:
    """Add `export` to the `grok` subcommands."""
    p = subparsers.add_parser("export", help="write a run's or sweep's histories as TensorBoard scalars / W&B runs")
    p.add_argument("dir", metavar="RUN_OR_SWEEP_DIR", help="a run directory (grok train --out) or a sweep directory")
    p.add_argument("--tensorboard", metavar="LOGDIR", help="write event files here, one sub-directory per member")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty LOGDIR")
    p.add_argument("--wandb", action="store_true", help="log one W&B run per member (needs wandb, configured)")
    p.add_argument("--wandb-project", default="grok-lab", help="W&B project (default grok-lab)")
    p.add_argument("--wandb-mode", choices=("online", "offline", "disabled"), help="W&B mode (default: your set-up)")
    p.set_defaults(func=cmd_export)
