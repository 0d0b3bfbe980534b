"""`grok train`: train a config (a preset, a TOML file, `--set` overrides) for one or more seeds."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from grok.cli.args import parse_sets
from grok.errors import ConfigError
from grok.run import check_seeds


def config_from_args(args: argparse.Namespace) -> Any:
    """The config of `--preset` or `--config` (or the default), with the `--set` overrides."""
    from grok.config import Config
    from grok.presets import config_from_toml, preset

    name = getattr(args, "name", None)
    if name is not None:
        if args.preset and args.preset != name:
            raise ConfigError("NAME", name, f"one preset: NAME or --preset, not both (--preset {args.preset})")
        args.preset = name
    if args.config and args.preset:
        raise ConfigError("--config", args.config, "either --config or --preset, not both")
    if args.config:
        if not Path(args.config).is_file():
            raise ConfigError("--config", args.config, "an existing TOML file")
        cfg = config_from_toml(args.config)
    elif args.preset:
        cfg = preset(args.preset)
    else:
        cfg = Config()
    return cfg.override(**parse_sets(args.set or []))


def cmd_train(args: argparse.Namespace) -> int:
    import grok

    cfg = config_from_args(args)
    seeds = check_seeds(args.seeds if args.seeds else [cfg.seed], "--seeds")
    if args.out is not None and not str(args.out).strip():
        raise ConfigError("--out", args.out, "a directory path to write the run to")
    run = grok.train(cfg, seeds=seeds, progress=not args.quiet, out=args.out, overwrite=args.overwrite)
    print(run.summary())
    if args.out is not None:
        print(f"saved to {args.out}")
    return 0


def add_parser(subparsers) -> None:
    """Add `train` to the `grok` subcommands."""
    p = subparsers.add_parser("train", help="train a config for one or more seeds (one compiled program)")
    p.add_argument("name", nargs="?", metavar="NAME", help="a preset name (see `grok presets`); same as --preset NAME")
    p.add_argument("--preset", help="a preset name (see `grok presets`)")
    p.add_argument("--config", help="a TOML config file (optional `preset = NAME`, then [task]/[model]/... tables)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a dotted field, e.g. optim.lr=5e-3")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds, trained together as members (default: config seed)")
    p.add_argument(
        "--out", help="run directory to write (checked before training; checkpointed while training: rerun to resume)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace a run (or another run's checkpoint) in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)
