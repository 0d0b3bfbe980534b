"""The four registries: probes, optimizer transforms, tasks and models (docs/architecture.md, "Extending the lab").

Every kind of thing that varies is looked up here by name, and the built-ins are registered
through the same calls a notebook uses (`register_probe`, `register_transform`,
`register_task`, `register_model`). This module knows nothing about the config, the engine or
the built-ins: it stores entries and answers look-ups.

Ownership: an entry belongs to the module that registered it. Registering a name again from
the same module (a notebook cell run twice, always `__main__`) replaces the entry; taking over
a name that another module owns (a built-in, say) needs `replace=True`. Every registration gets
a fresh `token`; the engine keys its compiled programs on the tokens of what a config uses,
so the next run after a re-registration uses the new function.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import itertools
import keyword
import marshal
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, Generic, NamedTuple, TypeVar

from grok.errors import ConfigError

T = TypeVar("T")
_TOKENS = itertools.count(1)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class RegistryError(ValueError):
    """A registration that would silently take over someone else's name, or a malformed one.

    >>> grok.register_probe("collapse", my_fn)  # a built-in's name: RegistryError (pass replace=True)
    """


@dataclasses.dataclass(frozen=True)
class Registered(Generic[T]):
    """One entry: its name, what was registered, the module that owns it, a unique token."""

    name: str
    entry: T
    owner: str
    token: int
    fingerprint: str = ""  # what the entry computes: a hash of its functions' code and its settings


class Registry(Generic[T]):
    """Named entries of one kind; look-ups of unknown names are `ConfigError`s naming the choices."""

    def __init__(self, kind: str, field: str, register_call: str):
        self.kind, self.field, self.register_call = kind, field, register_call
        self._items: dict[str, Registered[T]] = {}

    def add(self, name: str, entry: T, *, owner: str, replace: bool = False) -> Registered[T]:
        check_name(self.kind, name)
        old = self._items.get(name)
        if old is not None and old.owner != owner and not replace:
            raise RegistryError(
                f"{self.kind} {name!r} is registered by module {old.owner!r}; registering it from {owner!r} "
                f"would take it over: pass replace=True to {self.register_call} to do that on purpose"
            )
        item = Registered(name, entry, owner, next(_TOKENS), fingerprint(entry))
        self._items[name] = item
        return item

    def get(self, name: str, field: str | None = None) -> T:
        return self.item(name, field).entry

    def item(self, name: str, field: str | None = None) -> Registered[T]:
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise ConfigError(field or self.field, name, self.allowed(), choices=self._items) from None

    def allowed(self) -> str:
        names = ", ".join(self._items) or "(none)"
        return f"a registered {self.kind}: {names} (add one with {self.register_call})"

    def names(self) -> tuple[str, ...]:
        return tuple(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def token(self, name: str) -> int:
        return self._items[name].token if name in self._items else 0


def fingerprint(entry: Any) -> str:
    """A short hash of what a registration computes: the source (or bytecode) of its functions and
    its other settings. A notebook cell run twice gives the same one; an edited formula another.
    Runs record it, so that a probe re-registered with another formula is noticed later."""
    digest = hashlib.sha256()
    values = dataclasses.astuple(entry) if dataclasses.is_dataclass(entry) else (entry,)
    for value in values:
        digest.update(_code_text(value))
    return digest.hexdigest()[:16]


def _code_text(value: Any) -> bytes:
    """Bytes that identify `value`: a function's source (or, without one, its bytecode), else its repr."""
    if callable(value) and hasattr(value, "__code__"):
        try:
            return inspect.getsource(value).encode()
        except (OSError, TypeError):
            return marshal.dumps(value.__code__)
    if callable(value):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', repr(value))}".encode()
    if isinstance(value, Mapping):
        return repr(sorted(value.items(), key=repr)).encode()
    return repr(value).encode()


def check_name(kind: str, name: object) -> None:
    """Registered names become parts of dotted config names: lower-case identifiers."""
    if not isinstance(name, str) or not _NAME.match(name) or keyword.iskeyword(name):
        raise RegistryError(f"{kind} name {name!r}: use a lower-case identifier such as 'my_{kind}'")


def caller_module(depth: int = 2) -> str:
    """The `__name__` of the module that called the registering function (`depth` frames up)."""
    frame = sys._getframe(depth)
    return frame.f_globals.get("__name__", "__main__")


# --------------------------------------------------------------------------- options
OptionValue = int | float | bool | str


def check_options(kind: str, name: str, defaults: Mapping[str, Any]) -> dict[str, OptionValue]:
    """A registration's own config fields: identifiers with int, float, bool or str defaults."""
    out = {}
    for key, value in defaults.items():
        check_name(f"{kind} option", key)
        if not isinstance(value, (int, float, bool, str)):
            raise RegistryError(
                f"{kind} {name!r}: option {key}={value!r} must default to an int, float, bool or str "
                "(it becomes a config field)"
            )
        out[key] = value
    return out


# --------------------------------------------------------------------------- probes
class ProbeInputs(NamedTuple):
    """What a probe sees of one member at one evaluation (everything traced, on device).

    `apply(params, x)` evaluates the network in evaluation mode (no dropout, BatchNorm running
    statistics, the member's logit scale). `outputs_train` / `loss_train` are the outputs and
    per-example losses on the (noisy) training set at the current parameters; `train_loss(params)`
    is their mean as a function of the parameters, for gradients. `dyn` holds the member's
    dynamic numbers by dotted name; `config` and `spec` are the group's static config and task
    facts. `params0` is θ₀ when the probe asked for it (`initial_params=True`), else None;
    `ref` is what the probe's own `init` returned at step 0 (None without one). `model()` merges
    the current state into the Flax module.

    >>> @grok.register_probe("logit_max")
    ... def logit_max(x: grok.ProbeInputs):
    ...     return {"logit_max": x.outputs_train.max()}
    """

    params: Any
    params0: Any
    apply: Callable[[Any, Any], Any]
    train_loss: Callable[[Any], Any]
    data: Any
    outputs_train: Any
    loss_train: Any
    step: Any
    dyn: Mapping[str, Any]
    config: Any
    spec: Any
    rest: Any
    graphdef: Any
    ref: Any

    def model(self):
        """The member's network (a Flax NNX module) at the current parameters."""
        from flax import nnx

        return nnx.merge(self.graphdef, self.params, self.rest)


@dataclasses.dataclass(frozen=True)
class ProbeEntry:
    """A probe family: `fn(ProbeInputs) -> {metric: array}`, evaluated on device, vmapped over members.

    - `init(ProbeInputs) -> pytree`: reference quantities measured at step 0 (`inputs.ref` later).
    - `every`: None (every log interval), an int (steps), or a dotted config field holding the
      steps (e.g. "train.ntk_every"); a coarser interval runs at the end of each compiled chunk.
    - `requires(config) -> str | None`: why the probe cannot run on a config (None: it can).
    - `fields`: config fields that only matter when the probe is chosen.
    - `initial_params`: keep θ₀ for it.
    - `memory(config, param_bytes) -> int`: extra bytes per member (large temporaries).
    - `lapack`: it calls LAPACK (`jnp.linalg.solve`, `svd`, `eigh`, …): on a CPU its groups then
      run on one device, since XLA:CPU's batched LAPACK kernels deadlock when several devices share
      a small thread pool.
    - `metrics`: the names it returns (optional; a name ending in `/` stands for a prefix such as
      `weight_norm/`): a missing history key then names the probe that records it.
    """

    fn: Callable[[ProbeInputs], Mapping[str, Any]]
    init: Callable[[ProbeInputs], Any] | None = None
    every: int | str | None = None
    requires: Callable[[Any], str | None] | None = None
    fields: tuple[str, ...] = ()
    initial_params: bool = False
    memory: Callable[[Any, int], int] | None = None
    lapack: bool = False
    metrics: tuple[str, ...] = ()


PROBES: Registry[ProbeEntry] = Registry("probe", "train.probes", "grok.register_probe")


def register_probe(
    name: str | Callable[[ProbeInputs], Mapping[str, Any]],
    fn: Callable[[ProbeInputs], Mapping[str, Any]] | None = None,
    *,
    init: Callable[[ProbeInputs], Any] | None = None,
    every: int | str | None = None,
    requires: Callable[[Any], str | None] | None = None,
    fields: tuple[str, ...] = (),
    initial_params: bool = False,
    memory: Callable[[Any, int], int] | None = None,
    lapack: bool = False,
    metrics: tuple[str, ...] = (),
    replace: bool = False,
):
    """Register a probe family; its metrics are the dict it returns (docs/extending.md).

    `grok.register_probe("rank", fn)`, or as a decorator: `@grok.register_probe("rank", lapack=True)`,
    or bare, `@grok.register_probe`, which registers the function under its own name.

    >>> grok.register_probe("top_logit", lambda x: {"top_logit": x.outputs_train.max()})
    """
    owner = caller_module()
    if callable(name) and fn is None:  # the bare decorator: @register_probe
        fn, name = name, _own_name("probe", name)
    _check_registered_name("probe", name, "register_probe")

    def add(f):
        if not callable(f):
            raise RegistryError(f"probe {name!r}: needs a function ProbeInputs -> dict, got {f!r}")
        entry = ProbeEntry(f, init, every, requires, tuple(fields), initial_params, memory, lapack, tuple(metrics))
        PROBES.add(name, entry, owner=owner, replace=replace)
        return f

    return add if fn is None else add(fn)


def _own_name(kind: str, f: Any) -> str:
    """The name a bare decorator registers `f` under: its `__name__`, which must be a valid name."""
    name = getattr(f, "__name__", None)
    if not isinstance(name, str) or not _NAME.match(name) or keyword.iskeyword(name):
        raise RegistryError(
            f"{kind} {f!r}: its name {name!r} is not a lower-case identifier; "
            f"give one: @grok.register_{kind}('my_{kind}')"
        )
    return name


def _check_registered_name(kind: str, name: Any, call: str) -> None:
    """A registration's name must be a string (a function here is a misplaced argument)."""
    if not isinstance(name, str):
        raise RegistryError(
            f"{call}: the first argument is the {kind}'s name, a lower-case string such as 'my_{kind}'; got {name!r}"
        )
    check_name(kind, name)


# --------------------------------------------------------------------------- optimizer transforms
@dataclasses.dataclass(frozen=True)
class TransformEntry:
    """An optax `GradientTransformation` factory and its hyperparameters.

    `options`: the factory's own keyword arguments with their defaults; they become config
    fields `optim.<name>.<option>`. Numbers are dynamic (per member, sweepable, no recompile)
    unless listed in `static`; bools and strings are static. `shared`: `optim.*` fields passed
    by their own name (the base optimizers' lr, b1, …). `ranges`: option → (low, high), both
    inclusive; `check(values)` for anything else: `values` holds the options and the shared fields
    by name, and it raises `ConfigError` (or returns a reason string) for a combination it refuses.
    `after_base`: chained after the base optimizer `optim.kind` (it transforms the step the base
    produces, e.g. a projection of the new parameters) instead of before it.
    """

    factory: Callable[..., Any]
    options: Mapping[str, OptionValue]
    static: frozenset[str]
    shared: tuple[str, ...] = ()
    ranges: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    check: Callable[[Mapping[str, Any]], str | None] | None = None
    after_base: bool = False

    def is_dynamic(self, option: str) -> bool:
        value = self.options[option]
        return isinstance(value, (int, float)) and not isinstance(value, bool) and option not in self.static


TRANSFORMS: Registry[TransformEntry] = Registry("transform", "optim.transforms", "grok.register_transform")


def register_transform(
    name: str,
    factory: Callable[..., Any] | None = None,
    *,
    shared: tuple[str, ...] = (),
    static: tuple[str, ...] = (),
    ranges: Mapping[str, tuple[float, float]] | None = None,
    check: Callable[[Mapping[str, Any]], str | None] | None = None,
    after_base: bool = False,
    replace: bool = False,
    **options: Any,
):
    """Register an optax transform factory (usable as `@register_transform("name", alpha=0.98)`).

    Keyword options are the factory's hyperparameters with their defaults (`optim.<name>.<key>`).
    Name it in `optim.transforms` to chain it before the base optimizer `optim.kind` (after it
    with `after_base=True`).

    >>> grok.register_transform("clip", lambda max_norm: optax.clip_by_global_norm(max_norm), max_norm=1.0)
    """
    owner = caller_module()
    if callable(name) and factory is None:  # the bare decorator: @register_transform
        factory, name = name, _own_name("transform", name)
    _check_registered_name("transform", name, "register_transform")
    opts = check_options("transform", name, options)
    unknown = set(static) - set(opts)
    if unknown:
        raise RegistryError(f"transform {name!r}: static names {sorted(unknown)} are not among its options")

    def add(f):
        if not callable(f):
            raise RegistryError(f"transform {name!r}: needs a factory returning an optax GradientTransformation")
        _check_factory_takes(name, f, [*opts, *shared])
        entry = TransformEntry(f, opts, frozenset(static), tuple(shared), dict(ranges or {}), check, after_base)
        TRANSFORMS.add(name, entry, owner=owner, replace=replace)
        return f

    return add if factory is None else add(factory)


def _check_factory_takes(name: str, factory: Callable[..., Any], keywords: list[str]) -> None:
    """A RegistryError naming the transform when its factory cannot take an option it is registered with."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    takes = {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    missing = [k for k in keywords if k not in takes]
    if missing:
        raise RegistryError(
            f"transform {name!r}: its factory {getattr(factory, '__name__', factory)!r} has no keyword "
            f"argument {', '.join(map(repr, missing))}, which it is registered with (it takes: "
            f"{', '.join(sorted(takes)) or 'nothing'}); add it to the factory's signature or drop the option"
        )


# --------------------------------------------------------------------------- tasks
@dataclasses.dataclass(frozen=True)
class TaskEntry:
    """A task: `spec(task_cfg) -> tasks.TaskSpec` (static sizes) and
    `build(task_cfg, key, corrupt_fraction, dtype) -> tasks.Dataset` (pure, jit/vmap-able).

    `fields`: the `task.*` fields it reads, or a function of the task config giving them (the
    others have no effect on it: a sweep refuses them as axes); `options`: its own static fields
    `task.<name>.<option>`; `check(task_cfg)` raises `ConfigError` (naming the field) for a
    config it cannot serve.
    """

    spec: Callable[[Any], Any]
    build: Callable[..., Any]
    fields: tuple[str, ...] | Callable[[Any], tuple[str, ...]] = ()
    options: Mapping[str, OptionValue] = dataclasses.field(default_factory=dict)
    check: Callable[[Any], None] | None = None


TASKS: Registry[TaskEntry] = Registry("task", "task.kind", "grok.register_task")


def register_task(
    name: str,
    *,
    build: Callable[..., Any],
    spec: Callable[[Any], Any],
    fields: tuple[str, ...] | Callable[[Any], tuple[str, ...]] = (),
    check: Callable[[Any], None] | None = None,
    replace: bool = False,
    **options: Any,
) -> None:
    """Register a task kind (`task.kind = name`); keyword options become fields `task.<name>.<key>`.

    >>> grok.register_task("my_task", spec=my_spec, build=my_build, n=10)  # task.my_task.n
    """
    opts = check_options("task", name, options)
    entry = TaskEntry(spec, build, fields if callable(fields) else tuple(fields), opts, check)
    TASKS.add(name, entry, owner=caller_module(), replace=replace)


# --------------------------------------------------------------------------- models
@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """A model: `build(model_cfg, spec, *, rngs, init_scale, dropout, alpha, epsilon, param_dtype)`
    returns a Flax NNX module whose `__call__(x, train=...)` gives outputs [n, C] (or [n] for
    regression).

    `fields`: the `model.*` fields it reads; `options`: its own static fields
    `model.<name>.<option>`; `check(config) -> None` raises `ConfigError` for a config it cannot
    serve (a task it does not fit, say). `neurons(module) -> (U [N, p], V [N, p], W [C, N] or None)`
    gives the first hidden layer's neurons for the Fourier IPR, and `prune(params, mask, model_cfg)`
    zeroes neurons where mask == 0: a model with both is prunable. `loss_over_alpha2`: the training
    loss is divided by α² (the α-scaled net of [K]). `activations(config) -> int`: values one
    example holds in the model (for the memory estimate; default 3 per unit of `model.widths`).
    """

    build: Callable[..., Any]
    fields: tuple[str, ...] = ()
    options: Mapping[str, OptionValue] = dataclasses.field(default_factory=dict)
    check: Callable[[Any], None] | None = None
    neurons: Callable[[Any], tuple] | None = None
    prune: Callable[..., Any] | None = None
    loss_over_alpha2: bool = False
    activations: Callable[[Any], int] | None = None

    @property
    def prunable(self) -> bool:
        return self.neurons is not None and self.prune is not None


MODELS: Registry[ModelEntry] = Registry("model", "model.kind", "grok.register_model")


def register_model(
    name: str,
    *,
    build: Callable[..., Any],
    fields: tuple[str, ...] = (),
    check: Callable[[Any], None] | None = None,
    neurons: Callable[[Any], tuple] | None = None,
    prune: Callable[..., Any] | None = None,
    loss_over_alpha2: bool = False,
    activations: Callable[[Any], int] | None = None,
    replace: bool = False,
    **options: Any,
) -> None:
    """Register a model kind (`model.kind = name`); keyword options become fields `model.<name>.<key>`.

    >>> grok.register_model("my_mlp", build=build_my_mlp, depth=2)  # model.my_mlp.depth
    """
    opts = check_options("model", name, options)
    entry = ModelEntry(build, tuple(fields), opts, check, neurons, prune, loss_over_alpha2, activations)
    MODELS.add(name, entry, owner=caller_module(), replace=replace)


SECTION_REGISTRIES: dict[str, Registry] = {"task": TASKS, "model": MODELS, "optim": TRANSFORMS}
