"""`grok llc RUN_DIR [--chains 8 --draws 400 --out FILE.npz]`: the local learning coefficient of every
member at every snapshot (`grok.llc`), saved beside the run (`RUN_DIR/llc.npz`, `llc.json`) or to FILE."""

from __future__ import annotations

import argparse
from pathlib import Path

from grok.errors import ConfigError


def _step_size(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise ConfigError("--step-size", text, '"auto" or a number > 0') from None


def cmd_llc(args: argparse.Namespace) -> int:
    import numpy as np

    import grok
    from grok.llc import result_files

    out = Path(args.out) if args.out else Path(args.run_dir)
    if args.out and not args.out.endswith(".npz"):
        raise ConfigError("--out", args.out, "a file name ending in .npz")
    existing = [str(p) for p in result_files(out) if p.exists()]
    if existing and not args.overwrite:
        raise ConfigError(
            "--out", str(out), f"a place without an LLC result ({existing[0]} exists; --overwrite replaces it)"
        )
    run = grok.load_run(args.run_dir)
    res = grok.llc(
        run,
        chains=args.chains,
        draws=args.draws,
        burnin=args.burnin,
        step_size=_step_size(args.step_size),
        nbeta=args.nbeta,
        localization=args.localization,
        batch_size=args.batch_size,
        seed=args.seed,
        steps=args.steps,
        progress=True,
    )
    path = res.save(out)
    flagged = int(res.flagged.sum())
    with np.errstate(all="ignore"):
        print(
            f"{len(res.steps)} step(s) x {run.n_members} member(s) x {args.chains} chains: "
            f"λ̂ from {np.nanmin(res.mean):.3g} to {np.nanmax(res.mean):.3g}, "
            f"ε {np.min(res.step_size):.3g}–{np.max(res.step_size):.3g}, {flagged} chain(s) flagged"
        )
    print(f"saved to {path}")
    return 0


def add_parser(subparsers) -> None:
    """Add `llc` to the `grok` subcommands."""
    p = subparsers.add_parser("llc", help="local learning coefficient (SGLD) at every snapshot of a run")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (its snapshots, or its final parameters)")
    p.add_argument("--chains", type=int, default=8, help="SGLD chains per member and step (default 8)")
    p.add_argument("--draws", type=int, default=400, help="draws per chain, burn-in included (default 400)")
    p.add_argument("--burnin", type=int, default=None, help="draws discarded first (default draws // 4)")
    p.add_argument("--step-size", default="auto", help='ε, or "auto" (default): chosen from a log grid')
    p.add_argument("--nbeta", type=float, default=None, help="nβ (default batch size / log batch size)")
    p.add_argument("--localization", type=float, default=1.0, help="γ (default 1)")
    p.add_argument("--batch-size", type=int, default=None, help="minibatch size (default: full batch)")
    p.add_argument("--seed", type=int, default=0, help="seed of the chains (default 0)")
    p.add_argument("--steps", type=int, nargs="+", help="snapshot steps (default: all)")
    p.add_argument("--out", help="an .npz file (and its .json) instead of RUN_DIR/llc.npz")
    p.add_argument("--overwrite", action="store_true", help="replace an existing LLC result")
    p.set_defaults(func=cmd_llc)
