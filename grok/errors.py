"""The one error type users see for bad input, and the one warning type."""

from __future__ import annotations

from collections.abc import Iterable

from grok.suggest import closest


class ConfigError(ValueError):
    """Bad input: names the field, the value given and what is allowed (and the closest valid name).

    >>> raise grok.ConfigError("optim.lr", -1.0, "a number > 0")
    ConfigError: optim.lr: got -1.0; allowed: a number > 0
    """

    def __init__(
        self,
        field: str,
        value: object,
        allowed: str,
        *,
        choices: Iterable[str] | None = None,
        misspelt: object = None,
    ):
        self.field, self.value, self.allowed = field, value, allowed
        self.suggestion = closest(value if misspelt is None else misspelt, choices) if choices is not None else None
        hint = f" (did you mean {self.suggestion!r}?)" if self.suggestion else ""
        super().__init__(f"{field}: got {value!r}{hint}; allowed: {allowed}")


class GrokWarning(UserWarning):
    """Something a user may mean but should know about (e.g. a probe registered anew since a run).

    >>> warnings.simplefilter("error", grok.GrokWarning)  # make them errors
    """
