"""`grok presets`: list the named paper settings."""

from __future__ import annotations

import argparse


def cmd_presets(args: argparse.Namespace) -> int:
    from grok.presets import presets

    names = presets()
    width = max(map(len, names))
    for name, desc in names.items():
        print(f"{name:<{width}}  {desc}")
    return 0


def add_parser(subparsers) -> None:
    """Add `presets` to the `grok` subcommands."""
    p = subparsers.add_parser("presets", help="list the named paper settings")
    p.set_defaults(func=cmd_presets)
