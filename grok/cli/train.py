"""`grok train`: train a config (a preset, a TOML file, `--set` overrides) for one or more seeds."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from grok.cli.args import parse_sets
from grok.errors import ConfigError


def config_from_args(args: argparse.Namespace) -> Any:
    """The config of `--preset` or `--config` (or the default), with the `--set` overrides."""
    from grok.config import Config
    from grok.presets import config_from_toml, preset

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
    seeds = args.seeds if args.seeds else [cfg.seed]
    for s in seeds:
        if s < 0:
            raise ConfigError("--seeds", s, "non-negative integers")
    run = grok.train(cfg, seeds=seeds, progress=not args.quiet, out=args.out)
    print(run.summary())
    if args.out:
        print(f"saved to {args.out}")
    return 0


def add_parser(subparsers) -> None:
    """Add `train` to the `grok` subcommands."""
    p = subparsers.add_parser("train", help="train a config for one or more seeds (one compiled program)")
    p.add_argument("--preset", help="a preset name (see `grok presets`)")
    p.add_argument("--config", help="a TOML config file (optional `preset = NAME`, then [task]/[model]/... tables)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a dotted field, e.g. optim.lr=5e-3")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds, trained together as members (default: config seed)")
    p.add_argument("--out", help="run directory to write")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)
