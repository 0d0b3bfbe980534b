"""Text reports of a sweep: the per-cell phase table that `grok phase` prints (docs/formulas.md §7.2)."""

from __future__ import annotations

import numpy as np

from grok.phases import PHASES


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    if isinstance(v, (tuple, list)):
        return ",".join(map(str, v))
    return str(v)


def phase_table(sw, rule: str = "doshi") -> str:
    """One row per grid cell: its axis values, the majority phase, k/n seeds, the Wilson 95%
    interval of the majority's share, and every phase present with its count (seeds that disagree).
    `print(phase_table(grok.load_sweep("runs/phase")))`."""
    s = sw.phase_summary(rule)
    names = [n for n in sw.axes if n != "seed"]
    heads = [n.split(".")[-1] for n in names] + ["majority", "k/n", "95% (Wilson)", "seeds by phase"]
    rows = []
    for cell in np.ndindex(*sw.shape[:-1]):
        n = int(s["n"][cell])
        counts = s["fractions"][cell] * n if n else np.zeros(len(PHASES))
        mix = ", ".join(f"{p} {round(c)}" for p, c in zip(PHASES, counts, strict=True) if round(c) > 0)
        interval = f"[{s['lo'][cell]:.2f}, {s['hi'][cell]:.2f}]" if n else "—"
        values = [_fmt(sw.axes[a][i]) for a, i in zip(names, cell, strict=True)]
        rows.append(values + [str(s["majority"][cell]), f"{int(s['k'][cell])}/{n}", interval, mix or "—"])
    widths = [max(len(r[i]) for r in [heads, *rows]) for i in range(len(heads))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
    mixed = int(np.sum((s["n"] > 0) & (s["k"] < s["n"])))
    cells = int(np.prod(sw.shape[:-1]))
    foot = f"{cells} cells, {len(sw.axes['seed'])} seed(s) each, rule {rule}: {mixed} cell(s) where seeds disagree"
    return "\n".join([line(heads), *map(line, rows), foot])
