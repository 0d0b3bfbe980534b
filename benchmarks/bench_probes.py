"""Probe overhead (docs/formulas.md §5): each family's cost as a fraction of training time.

All figures are ratios of times measured in this one process, compile time excluded
(every program runs once before it is timed). The machine these run on is shared, so
each program is timed in many short trials, interleaved with the others, and keeps its
*best* trial (bursts of load from other processes only ever make a trial slower).

The pieces are the engine's own compiled functions, `jit(vmap(·))` over one member:
`train` = `log_every` training steps (the inner `lax.scan`), `eval` = the end-of-interval
evaluation (losses, accuracies and the chosen probes). The overhead of a probe family at
its default interval (every `log_every` steps) is

    (eval[probes] − eval[none]) / (train + eval[none]),

the fraction by which it lengthens one log interval. Tables:

1. [P]-like (MLP 200-200 no bias, add mod 53, softmax CE, log_every 20) and [D]-like
   (quadratic MLP N=256, add mod 47, MSE, log_every 20): `collapse`, `neurons`, both,
   and `ntk` at the default subset of 64 (kernel over 64 train + 64 test examples).
2. NTK cost against the subset size n (the kernel is 2n × 2n), in units of one training
   step: the [K] α-net (D=100, N=500, P=450; one output) and the [P]-like MLP (53 logits,
   so 53 backward passes per example).
3. End to end, as a check of table 1: whole `grok.train` runs of the [P]-like config.
4. A user-registered probe against the built-in: `bench_user_collapse`, registered here with
   `grok.register_probe`, computes exactly what the built-in `collapse` computes (the same
   `probes.collapse` functions, the same metrics). The ratio of their evaluation times is what
   a probe pays for being a user's rather than a built-in (target: within 10%). Their compiled
   evaluation programs are also compared, instruction by instruction: when they are identical,
   a ratio away from 1 is the machine's noise.
"""

from __future__ import annotations

import functools
import re
import time

import jax
import jax.numpy as jnp

import grok
from grok import engine
from grok.probing.collapse import collapse_probe

TRIALS = 7  # interleaved rounds; each keeps its best
FEW_TRIALS = 2  # for calls that take longer than a trial
MIN_TRIAL_S = 0.2  # a trial repeats the call until it has run this long

P_LIKE = grok.preset("prieto-softmax-collapse").override(**{"task.p": 53, "train.steps": 400, "train.log_every": 20})
D_LIKE = grok.preset("doshi-coexistence-small").override(
    **{"task.p": 47, "model.widths": [256], "train.steps": 400, "train.log_every": 20}
)
K_LIKE = grok.preset("kumar-fig3a").override(**{"train.steps": 600, "train.schedule": "linear", "train.log_every": 300})


def _pieces(cfg: grok.Config):
    """(train_interval, evaluate, state, dyn): the engine's compiled pieces for a one-member group."""
    static, dyn_np = engine.stack_dynamic([cfg])
    engine.ensure_precision(static)
    program = engine.member_program(static)
    dyn = {k: jnp.asarray(v) for k, v in dyn_np.items()}
    state, _ = jax.jit(jax.vmap(program.init))(dyn)
    train = jax.jit(jax.vmap(program.train_interval))
    evaluate = jax.jit(jax.vmap(program.evaluate))
    return train, evaluate, state, dyn


def _best_times(calls: dict[str, callable], trials: int = TRIALS) -> dict[str, float]:
    """Best seconds per call of each zero-argument callable, over interleaved trials."""
    reps = {}
    for name, fn in calls.items():
        jax.block_until_ready(fn())  # compile / warm up
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < MIN_TRIAL_S:
            jax.block_until_ready(fn())
            n += 1
        reps[name] = n
    best = dict.fromkeys(calls, float("inf"))
    for trial in range(trials):
        for name, fn in calls.items():
            if trial >= FEW_TRIALS and reps[name] == 1:
                continue  # calls slower than MIN_TRIAL_S: a few trials are enough
            start = time.perf_counter()
            for _ in range(reps[name]):
                out = fn()
            jax.block_until_ready(out)
            best[name] = min(best[name], (time.perf_counter() - start) / reps[name])
    return best


def _calls(configs: dict[str, grok.Config]) -> dict[str, callable]:
    calls = {}
    for label, cfg in configs.items():
        train, evaluate, state, dyn = _pieces(cfg)
        if label == "none":
            calls["train"] = functools.partial(train, state, dyn)
        calls[label] = functools.partial(evaluate, state, dyn)
    return calls


def _overheads(name: str, cfg: grok.Config, out: dict[str, float]) -> None:
    variants = {"collapse": ["collapse"], "neurons": ["neurons"], "collapse+neurons": ["collapse", "neurons"]}
    variants["ntk"] = ["ntk"]
    configs = {"none": cfg} | {k: cfg.override(**{"train.probes": v}) for k, v in variants.items()}
    t = _best_times(_calls(configs))
    interval = t["train"] + t["none"]
    print(
        f"{name}: {cfg.train.log_every} train steps {1e3 * t['train']:.1f} ms, "
        f"evaluation without probes {1e3 * t['none']:.2f} ms"
    )
    for label in variants:
        frac = (t[label] - t["none"]) / interval
        out[f"{name}/{label}_overhead"] = frac
        print(f"  {label:<17} evaluation {1e3 * t[label]:8.2f} ms   overhead {100 * frac:7.1f} % of training")


def _ntk_scaling(name: str, cfg: grok.Config, subsets: tuple[int, ...], out: dict[str, float]) -> None:
    configs = {"none": cfg} | {n: cfg.override(**{"train.probes": ["ntk"], "train.ntk_subset": n}) for n in subsets}
    t = _best_times(_calls(configs))
    per_step = t["train"] / cfg.train.log_every
    print(f"{name}: one train step {1e3 * per_step:.2f} ms")
    for n in subsets:
        steps = (t[n] - t["none"]) / per_step
        out[f"{name}/ntk_{n}_cost_in_train_steps"] = steps
        print(f"  subset {n:>4} (kernel {2 * n}x{2 * n}): one NTK evaluation = {steps:9.1f} train steps")


def _end_to_end(name: str, cfg: grok.Config, out: dict[str, float]) -> None:
    both = cfg.override(**{"train.probes": ["collapse", "neurons"]})
    runs = {"none": lambda: grok.train(cfg, progress=False).history["train_loss"]}
    runs["collapse+neurons"] = lambda: grok.train(both, progress=False).history["train_loss"]
    t = _best_times(runs)
    frac = t["collapse+neurons"] / t["none"] - 1
    out[f"{name}/end_to_end_collapse+neurons_overhead"] = frac
    print(f"{name} end to end ({cfg.train.steps} steps): {t['none']:.2f} s → {t['collapse+neurons']:.2f} s with")
    print(f"  collapse+neurons: overhead {100 * frac:.1f} %")


USER_PROBE = "bench_user_collapse"  # unique: registering it again from this module replaces it
USER_PROBE_TRIALS = 3 * TRIALS  # a ratio of two equal times: more rounds, so both reach their best


def _evaluation_program(cfg: grok.Config) -> list[str]:
    """The compiled evaluation's instructions, without source locations (which name the probe's file)."""
    _, evaluate, state, dyn = _pieces(cfg)
    text = evaluate.lower(state, dyn).compile().as_text()
    text = re.sub(r", stack_frame_id=\d+|, metadata=\{[^}]*\}", "", text)
    return [line for line in text.splitlines() if " = " in line]


def _user_probe(name: str, cfg: grok.Config, out: dict[str, float]) -> None:
    # the built-in's own function, registered from this module like a user's probe: what the
    # measurement compares is the registry path (a user probe) against the built-in one
    grok.register_probe(USER_PROBE, collapse_probe)
    configs = {"none": cfg} | {p: cfg.override(**{"train.probes": [p]}) for p in ("collapse", USER_PROBE)}
    same = _evaluation_program(configs["collapse"]) == _evaluation_program(configs[USER_PROBE])
    out[f"{name}/user_collapse_same_program"] = float(same)
    t = _best_times(_calls(configs), trials=USER_PROBE_TRIALS)
    interval = t["train"] + t["none"]
    builtin, user = t["collapse"], t[USER_PROBE]
    ratio = user / builtin
    overhead_ratio = (user - t["none"]) / (builtin - t["none"])
    out[f"{name}/user_collapse_eval_ratio"] = ratio
    out[f"{name}/user_collapse_overhead_ratio"] = overhead_ratio
    print(f"{name}: the built-in `collapse` against a user-registered copy of it ({USER_PROBE})")
    print(f"  compiled evaluation programs identical (source locations aside): {same}")
    for label, value in (("built-in", builtin), ("user copy", user)):
        frac = (value - t["none"]) / interval
        print(f"  {label:<17} evaluation {1e3 * value:8.2f} ms   overhead {100 * frac:7.1f} % of training")
    print(f"  user / built-in: evaluation {ratio:.3f}, probe overhead {overhead_ratio:.3f} (target: within 10%)")


def run() -> dict[str, float]:
    out: dict[str, float] = {}
    _overheads("P-like", P_LIKE, out)
    _overheads("D-like", D_LIKE, out)
    _ntk_scaling("K-like", K_LIKE, (32, 64, 128, 256), out)
    _ntk_scaling("P-like", P_LIKE, (16, 32, 64), out)
    _end_to_end("P-like", P_LIKE, out)
    _user_probe("P-like", P_LIKE, out)
    _user_probe("D-like", D_LIKE, out)
    return out


if __name__ == "__main__":
    run()
