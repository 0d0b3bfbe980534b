"""The `grok` command line. Bad input exits 2 with one clear line, no traceback.

One module per command, each with `add_parser(subparsers)` (its arguments and help) and its
handler `cmd_<name>(args) -> exit status`; `args.py` holds the parsing shared by several.
Handlers raise `grok.ConfigError` / `grok.store.RunDirError` for bad input, and `main` turns
those into one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from grok.cli import compare, datafrac, demo, export, llc, phase, plot, presets, probe, prune, reproduce, sweep, train
from grok.errors import ConfigError
from grok.history import MetricNotRecorded
from grok.registry import RegistryError
from grok.store import RunDirError

USER_ERRORS = (ConfigError, RunDirError, RegistryError, MetricNotRecorded)
# in the order `grok --help` lists them
COMMANDS = (train, presets, demo, sweep, phase, datafrac, compare, prune, plot, probe, export, llc, reproduce)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grok", description="grok-lab: grokking and training dynamics in JAX")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as err:
        print(f"grok {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.filename is None:  # not about a path the user named: a real failure, shown in full
            raise
        print(f"grok {args.command}: error: {err.strerror or err}: {err.filename!r}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


__all__ = ["build_parser", "main"]
