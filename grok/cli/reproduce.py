"""`grok reproduce NAME`: run a paper-size preset and write its figure, the paper's claim in the title.

The reproductions, their checks and `reproduce` itself are in `grok.reproduce`. The exit status is
0 when the run shows the claim and 1 when it finished without showing it.
"""

from __future__ import annotations

import argparse
from typing import Any

from grok.cli.args import parse_sets


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Handler of `grok reproduce`: 0 if the run shows the claim, 1 if not; ConfigError for bad input."""
    from grok.reproduce import REPRODUCTIONS, build_config, check_llc_settings, reproduce

    overrides: dict[str, Any] = {}
    if args.set:
        overrides = parse_sets(args.set)
    cfg = build_config(args.name, args.steps, overrides)  # validate everything before any compilation
    llc_settings = {k: v for k, v in (("chains", args.chains), ("draws", args.draws)) if v is not None}
    settings = check_llc_settings(args.name, llc_settings)
    rep = REPRODUCTIONS[args.name]
    print(f"{rep.paper}: {rep.claim}")
    print(f"preset {rep.preset}: {cfg.train.steps} steps" + (f", {rep.sweep}" if rep.sweep else ""))
    if settings is not None:
        print("then λ̂ over its snapshots: grok.llc(" + ", ".join(f"{k}={v}" for k, v in settings.items()) + ")")
    result = reproduce(
        args.name,
        args.out,
        steps=args.steps,
        seeds=args.seeds,
        overrides=overrides,
        progress=not args.quiet,
        llc_settings=llc_settings,
    )
    print(result.run.summary())
    print(("shown: " if result.shown else "NOT shown: ") + result.message)
    print(f"run saved to {result.out}; figure: {result.figure}")
    return 0 if result.shown else 1


def add_parser(subparsers) -> None:
    """Add `reproduce` to the `grok` subcommands."""
    from grok.reproduce import reproductions

    listing = "\n".join(f"  {name:<24} {text}" for name, text in reproductions().items())
    p = subparsers.add_parser(
        "reproduce",
        help="run a paper-size preset and write its figure with the paper's claim in the title",
        description=(
            "Train a paper's setting at its size, save the run, write figure.png (the paper's claim in the title, "
            "and whether this run shows it) and reproduce.json. Exit status 0 when the run shows the claim, 1 "
            "when it does not (expected with a much shortened --steps). The paper sizes are meant for a GPU.\n\n"
            "NAME is one of:\n" + listing
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", metavar="NAME", help="the reproduction (see the list above)")
    p.add_argument("--out", metavar="DIR", help="run directory to write (default: runs/reproduce/NAME)")
    p.add_argument("--steps", type=int, metavar="N", help="train N steps instead of the paper's (a quick check)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="S", help="seeds, trained together (default 0)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a dotted config field")
    p.add_argument("--chains", type=int, metavar="N", help="LLC reproductions: SGLD chains per snapshot")
    p.add_argument("--draws", type=int, metavar="N", help="LLC reproductions: draws per chain")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_reproduce)
