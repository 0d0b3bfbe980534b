"""'Did you mean …?': the closest of a set of names to a misspelled one (preset, field, probe, …)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: object, choices: Iterable[str]) -> str | None:
    """The choice nearest to `name` by spelling, or None when nothing is close.

    Dotted names are also matched on their last part within the same section, so `optim.lrr`
    finds `optim.lr` among hundreds of fields.

    >>> closest("optim.lrr", ["optim.lr", "optim.b1", "task.p"])
    'optim.lr'
    """
    if not isinstance(name, str) or not name:
        return None
    choices = [c for c in choices if isinstance(c, str)]
    if name in choices:
        return None
    lowered = {c.lower(): c for c in choices}
    if name.lower() in lowered:
        return lowered[name.lower()]
    found = difflib.get_close_matches(name, choices, n=1, cutoff=0.75)
    if found:
        return found[0]
    section, _, leaf = name.rpartition(".")
    if section:
        same = {c.rpartition(".")[2]: c for c in choices if c.rpartition(".")[0] == section}
        found = difflib.get_close_matches(leaf, list(same), n=1, cutoff=0.6)
        if found:
            return same[found[0]]
    found = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return found[0] if found else None
