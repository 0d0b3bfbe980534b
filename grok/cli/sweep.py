"""`grok sweep`: run (or resume) a phase-diagram sweep; `grok phase` draws it (grok/cli/phase.py).

    grok sweep SPEC --out DIR [--quiet] [--dry-run]   # SPEC: a TOML file or a sweep preset name
    grok sweep SPEC --out DIR --distributed           # multi-host (or --coordinator, --num-processes, --process-id)
                                                      # [--heartbeat-timeout SECONDS]
    grok sweep --list                                 # the sweep presets
    grok sweep SPEC --out DIR --refine ROUNDS [--rule RULE | --refine-metric NAME=THRESHOLD]
                                                      # then bisect between cells whose phase differs

Running `grok sweep` again with the same SPEC and DIR resumes it. Bad input raises
`grok.ConfigError` / `grok.store.RunDirError` (the CLI prints one line and exits 2).
"""

from __future__ import annotations

import argparse
from collections import Counter

from grok.errors import ConfigError


def _init_distributed(args) -> None:
    """`jax.distributed.initialize` from --distributed / --coordinator / --num-processes / --process-id.

    The processes share fate: when one dies, the others end once its heartbeats have been missing for
    --heartbeat-timeout seconds (finished batches are on disk; the same command resumes). JAX's
    preemption service is switched off: a sweep has no preemption sync points, and the service
    would swallow SIGTERM (`kill`, `timeout`, a scheduler's stop), leaving the process running.
    """
    manual = (args.coordinator, args.num_processes, args.process_id)
    if not args.distributed and all(v is None for v in manual):
        if args.heartbeat_timeout is not None:
            raise ConfigError("--heartbeat-timeout", args.heartbeat_timeout, "only with --distributed or --coordinator")
        return
    if any(v is None for v in manual) and not all(v is None for v in manual):
        raise ConfigError("--coordinator", args.coordinator, "--coordinator, --num-processes and --process-id together")
    timeout = {}
    if args.heartbeat_timeout is not None:
        if args.heartbeat_timeout < 1:
            raise ConfigError("--heartbeat-timeout", args.heartbeat_timeout, "a whole number of seconds >= 1")
        timeout = {"heartbeat_timeout_seconds": args.heartbeat_timeout}
    import jax

    jax.config.update("jax_enable_preemption_service", False)
    if all(v is None for v in manual):
        jax.distributed.initialize(**timeout)  # cluster auto-detection (SLURM, Open MPI, TPU pods, JAX_* variables)
    else:
        jax.distributed.initialize(
            args.coordinator, num_processes=args.num_processes, process_id=args.process_id, **timeout
        )


def cmd_sweep(args: argparse.Namespace) -> int:
    from grok.sweep import SweepSpec, sweep, sweep_presets
    from grok.sweep.refine import check_refine, refine
    from grok.sweep.runner import precompile_setting

    if args.list:
        names = sweep_presets()
        width = max(map(len, names), default=0)
        for name, desc in names.items():
            print(f"{name:<{width}}  {desc}")
        return 0
    if not args.spec:
        raise ConfigError("SPEC", None, "a sweep TOML file or a sweep preset name (see `grok sweep --list`)")
    spec = SweepSpec.parse(args.spec)
    metric, threshold = _parse_refine_metric(args.refine_metric)
    if args.refine is not None:
        check_refine(spec, args.refine, rule=args.rule, metric=metric, threshold=threshold)
    elif args.refine_metric or args.rule != "doshi":
        raise ConfigError("--refine", None, "--refine ROUNDS with --rule or --refine-metric")
    if args.dry_run:
        print(spec.describe())
        return 0
    if not args.out:
        raise ConfigError("--out", None, "a directory for the sweep's results")
    precompile_setting()  # $GROK_PRECOMPILE checked before anything is printed (no backend started yet)
    _init_distributed(args)
    if not args.quiet:
        print(spec.describe())
    if args.refine is not None:
        ref = refine(
            spec, args.out, args.refine, rule=args.rule, metric=metric, threshold=threshold, progress=not args.quiet
        )
        grid = sum(r == 0 for r in ref.rounds)
        print(
            f"refined ({ref.label_name}): {len(ref.points) - grid} points added to {grid} in "
            f"{max(ref.rounds)} round(s); {ref.n_runs} members in all; {len(ref.boundaries())} boundary crossings"
        )
    sw = sweep(spec, args.out, progress=not args.quiet)
    if sw.classification.any():
        counts = Counter(sw.phases(args.rule).ravel().tolist())
        print("phases: " + ", ".join(f"{k}={v}" for k, v in counts.most_common()))
    print(f"saved to {args.out}  (draw it: grok phase {args.out})")
    return 0


def _parse_refine_metric(text: str | None) -> tuple[str | None, float | None]:
    if text is None:
        return None, None
    name, sep, value = text.partition("=")
    try:
        threshold = float(value)
    except ValueError:
        threshold = None
    if not sep or not name.strip() or threshold is None:
        raise ConfigError("--refine-metric", text, "NAME=THRESHOLD, e.g. test_loss=0.1")
    return name.strip(), threshold


def add_parser(subparsers) -> None:
    """Add `sweep` to the `grok` subcommands."""
    p = subparsers.add_parser(
        "sweep",
        help="run (or resume) a phase-diagram sweep: a grid of configs as a few compiled programs",
        description="Run a sweep spec (TOML: preset, seeds, [set], [axes]) or a sweep preset. "
        "Static axes make separate compiled groups; dynamic axes and seeds are vmapped members, "
        "sharded over all JAX devices. Running it again into the same --out resumes it.",
    )
    p.add_argument("spec", nargs="?", help="a sweep TOML file or a sweep preset name (see --list)")
    p.add_argument("--out", help="the sweep directory (results, sweep.json); reuse it to resume")
    p.add_argument("--quiet", action="store_true", help="no plan, no progress bar")
    p.add_argument("--dry-run", action="store_true", help="validate the spec and print the plan; train nothing")
    p.add_argument("--list", action="store_true", help="list the sweep presets")
    p.add_argument(
        "--refine",
        type=int,
        metavar="ROUNDS",
        help="after the grid, ROUNDS rounds of bisection between neighbouring points whose phase differs "
        "(along each numeric axis, geometric on log axes); resumable like the grid",
    )
    p.add_argument("--rule", default="doshi", help="phase rule for --refine: doshi (default) or corrupted_subset")
    p.add_argument(
        "--refine-metric",
        metavar="NAME=THRESHOLD",
        help="for sweeps without phases: refine where the seed mean of this final metric crosses THRESHOLD",
    )
    p.add_argument(
        "--distributed",
        action="store_true",
        help="multi-host: call jax.distributed.initialize() (cluster auto-detection); each process trains "
        "its share of the batches into the shared --out",
    )
    p.add_argument("--coordinator", metavar="HOST:PORT", help="multi-host without auto-detection: process 0's address")
    p.add_argument("--num-processes", type=int, help="multi-host: number of processes (with --coordinator)")
    p.add_argument("--process-id", type=int, help="multi-host: this process's index (with --coordinator)")
    p.add_argument(
        "--heartbeat-timeout",
        type=int,
        metavar="SECONDS",
        help="multi-host: how long the other processes wait for a dead process's heartbeats before they "
        "stop too (default: jax.distributed's, 100 s); finished batches stay on disk",
    )
    p.set_defaults(func=cmd_sweep)
