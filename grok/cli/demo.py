"""`grok demo`: softmax CE vs StableMax vs ⊥AdamW on modular addition [P, Fig 1] (`grok.demo`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from grok.errors import ConfigError


def cmd_demo(args: argparse.Namespace) -> int:
    """Train the three settings, save them under `--out`, write the figure, print the table."""
    from grok.demo import DEMO_FIGURE, DEMO_PRESETS, run_demo, summary_table

    out = Path(args.out)
    if not str(args.out).strip() or (out.exists() and not out.is_dir()):
        raise ConfigError("--out", args.out, "a directory for the demo's runs and figure")
    runs = run_demo(out, quick=args.quick, before=lambda i, name: print(f"[{i + 1}/{len(DEMO_PRESETS)}] {name}"))
    print()
    print(summary_table(runs))
    print(f"\nfigure: {out / DEMO_FIGURE}")
    return 0


def add_parser(subparsers) -> None:
    """Add `demo` to the `grok` subcommands."""
    p = subparsers.add_parser("demo", help="softmax CE vs StableMax vs ⊥AdamW on modular addition (about two minutes)")
    p.add_argument("--out", default="runs/demo", help="directory for the runs and demo.png (default runs/demo)")
    p.add_argument("--quick", action="store_true", help="a much shorter run, to check the set-up")
    p.set_defaults(func=cmd_demo)
