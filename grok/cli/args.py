"""Argument parsing shared by several commands: `--set KEY=VALUE` overrides."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from grok.errors import ConfigError


def parse_value(text: str, *, is_list: bool = False) -> Any:
    """`--set` values: JSON (numbers, true/false, null, [lists]) or else a plain string.

    For a list field (`train.probes`, `optim.transforms`, `model.widths`, …) the shell's way of
    writing a list works too: `[neurons, collapse]`, `neurons,collapse`, or one bare name.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    if is_list:
        inner = text[1:-1] if text.startswith("[") and text.endswith("]") else text
        if inner.startswith("[") or inner.endswith("]") or (inner == text and "," not in text):
            return text  # unbalanced brackets or a single bare name: left for the config to judge
        return [parse_value(part.strip()) for part in inner.split(",") if part.strip()]
    return text


def is_list_field(name: str) -> bool:
    """Whether dotted config field `name` holds a list (its annotation names a tuple)."""
    from grok.config import SECTIONS

    section, _, leaf = name.partition(".")
    cls = SECTIONS.get(section)
    if cls is None or "." in leaf:
        return False
    return any(f.name == leaf and "tuple" in str(f.type) for f in dataclasses.fields(cls))


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """`["optim.lr=5e-3", "train.probes=[neurons,collapse]"]` → `{"optim.lr": 0.005, "train.probes": [...]}`."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError("--set", item, "KEY=VALUE with a dotted config name, e.g. optim.lr=5e-3")
        key = key.strip()
        out[key] = parse_value(value.strip(), is_list=is_list_field(key))
    return out
