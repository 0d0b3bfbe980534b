"""`grok prune RUN_DIR`: prune a trained run's first-layer neurons by IPR, print the table, plot the curves [D].

Bad input raises `grok.ConfigError` or `grok.store.RunDirError`; the CLI turns those into one line
on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from grok.errors import ConfigError

ORDER_CHOICES = ("low", "high", "random", "all")


def cmd_prune(args: argparse.Namespace) -> int:
    from grok import store
    from grok.plots.prune import plot_prune_curves
    from grok.prune import ORDERS, check_fraction, prune
    from grok.run import load_run

    if args.order not in ORDER_CHOICES:
        raise ConfigError("--order", args.order, "one of " + ", ".join(ORDER_CHOICES))
    if args.save_pruned and (args.order == "all" or args.save_fraction is None):
        raise ConfigError(
            "--save-pruned",
            args.save_pruned,
            "with one --order (low, high or random) and --save-fraction F in [0, 1]",
        )
    if args.save_fraction is not None:
        check_fraction(args.save_fraction, "--save-fraction")
    run = load_run(args.run_dir)
    orders = ORDERS if args.order == "all" else (args.order,)
    results = {o: prune(run, o, fractions=args.fractions, member=args.member, seed=args.seed) for o in orders}
    for i, res in enumerate(results.values()):
        if i:
            print()
        print(res.describe())
        print(res.table())
    out = Path(args.out) if args.out else Path(args.run_dir) / "prune.png"
    if out.is_dir() or not out.parent.is_dir():
        raise ConfigError("--out", args.out, "a PNG file path in an existing directory")
    plot_prune_curves(results, out)
    print(f"\nplot written to {out}")
    if args.json:
        store.atomic_write_json(args.json, {o: r.to_dict() for o, r in results.items()})
        print(f"table written to {args.json}")
    if args.save_pruned:
        res = results[args.order]
        res.save_pruned(args.save_fraction, args.save_pruned)
        k = int(res.mask(args.save_fraction).size - res.mask(args.save_fraction).sum())
        print(f"pruned run ({k}/{res.n_neurons} neurons, {res.order} order) saved to {args.save_pruned}")
    return 0


def add_parser(subparsers) -> None:
    """Add `prune` to the `grok` subcommands."""
    p = subparsers.add_parser(
        "prune",
        help="prune a run's first-layer neurons by Fourier IPR and report accuracy after each step [D]",
        description=(
            "Rank the first hidden layer's neurons by Fourier IPR and zero them cumulatively (no retraining): "
            "lowest IPR first, highest first, or in a random order. Prints accuracy on train (noisy labels), "
            "clean train, corrupted train (noisy and true labels), test and all p² pairs after each step, "
            "and plots the curves."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `grok train --out`")
    p.add_argument(
        "--order",
        default="all",
        choices=ORDER_CHOICES,
        help="low: lowest IPR first; high: highest first; random: seeded control; all: the three (default)",
    )
    p.add_argument(
        "--fractions",
        type=float,
        nargs="+",
        metavar="F",
        help="fractions of neurons to prune, each in [0, 1] (default: min(N, 40)+1 evenly spaced from 0 to 1)",
    )
    p.add_argument("--member", type=int, default=0, help="which member of the run (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random order (default 0)")
    p.add_argument("--out", help="PNG for the curves (default RUN_DIR/prune.png)")
    p.add_argument("--json", metavar="FILE", help="also write the tables as JSON")
    p.add_argument("--save-pruned", metavar="DIR", help="save the pruned network as a new run directory")
    p.add_argument("--save-fraction", type=float, metavar="F", help="the fraction pruned in --save-pruned's run")
    p.set_defaults(func=cmd_prune)
