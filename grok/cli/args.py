"""Argument parsing shared by several commands: `--set KEY=VALUE` overrides."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from grok.errors import ConfigError


def parse_value(text: str) -> Any:
    """`--set` values: JSON (numbers, true/false, null, [lists]) or else a plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """`["optim.lr=5e-3", ...]` → `{"optim.lr": 0.005}`."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError("--set", item, "KEY=VALUE with a dotted config name, e.g. optim.lr=5e-3")
        out[key.strip()] = parse_value(value.strip())
    return out
