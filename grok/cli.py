"""The `grok` command line. Bad input exits 2 with one clear line, no traceback."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grok.errors import ConfigError
from grok.store import RunDirError

USER_ERRORS = (ConfigError, RunDirError)


def parse_value(text: str) -> Any:
    """`--set` values: JSON (numbers, true/false, null, [lists]) or else a plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """`["optim.lr=5e-3", ...]` → `{"optim.lr": 0.005}`."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError("--set", item, "KEY=VALUE with a dotted config name, e.g. optim.lr=5e-3")
        out[key.strip()] = parse_value(value.strip())
    return out


def _config_from_args(args) -> Any:
    from grok.config import Config
    from grok.presets import preset

    if args.config and args.preset:
        raise ConfigError("--config", args.config, "either --config or --preset, not both")
    if args.config:
        if not Path(args.config).is_file():
            raise ConfigError("--config", args.config, "an existing TOML file")
        cfg = Config.from_toml(args.config)
    elif args.preset:
        cfg = preset(args.preset)
    else:
        cfg = Config()
    return cfg.override(**parse_sets(args.set or []))


def cmd_train(args) -> int:
    import grok

    cfg = _config_from_args(args)
    seeds = args.seeds if args.seeds else [cfg.seed]
    for s in seeds:
        if s < 0:
            raise ConfigError("--seeds", s, "non-negative integers")
    run = grok.train(cfg, seeds=seeds, progress=not args.quiet)
    print(run.summary())
    if args.out:
        run.save(args.out)
        print(f"saved to {args.out}")
    return 0


def cmd_presets(args) -> int:
    from grok.presets import presets

    names = presets()
    width = max(map(len, names))
    for name, desc in names.items():
        print(f"{name:<{width}}  {desc}")
    return 0


def cmd_demo(args) -> int:
    from grok.demo import run_demo

    run_demo(out=args.out, quick=args.quick)
    return 0


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", help="a preset name (see `grok presets`)")
    p.add_argument("--config", help="a TOML config file (optional `preset = NAME`, then [task]/[model]/... tables)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a dotted field, e.g. optim.lr=5e-3")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grok", description="grok-lab: grokking and training dynamics in JAX")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("train", help="train a config for one or more seeds (one compiled program)")
    _add_config_args(p)
    p.add_argument("--seeds", type=int, nargs="+", help="seeds, trained together as members (default: config seed)")
    p.add_argument("--out", help="run directory to write")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("presets", help="list the named paper settings")
    p.set_defaults(func=cmd_presets)

    p = sub.add_parser("demo", help="softmax CE vs StableMax vs ⊥AdamW on modular addition (about two minutes)")
    p.add_argument("--out", default="runs/demo", help="directory for the runs and demo.png (default runs/demo)")
    p.add_argument("--quick", action="store_true", help="a much shorter run, to check the set-up")
    p.set_defaults(func=cmd_demo)

    from grok.plot_cli import add_commands as add_plot_commands
    from grok.prune_cli import add_commands as add_prune_commands
    from grok.reproduce import add_commands as add_reproduce_commands
    from grok.sweep_cli import add_commands as add_sweep_commands

    add_sweep_commands(sub)
    add_prune_commands(sub)
    add_plot_commands(sub)
    add_reproduce_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as err:
        print(f"grok {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
