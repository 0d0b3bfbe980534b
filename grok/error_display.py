"""How grok's input errors are shown: in IPython and Jupyter (by default) as their one-line message
and the user's own frame, not the library's; in a script as Python's full traceback unless asked."""

from __future__ import annotations

from grok.errors import ConfigError
from grok.history import MetricNotRecorded
from grok.registry import RegistryError
from grok.store import RunDirError

_LIBRARY_DIRS: tuple[str, ...] = ()


def _library_dirs() -> tuple[str, ...]:
    """Directories whose frames are the library's, not the user's: grok, tasks, probes, installed packages."""
    global _LIBRARY_DIRS
    if not _LIBRARY_DIRS:
        import os
        import sysconfig

        import probes
        import tasks

        here = os.path.dirname(os.path.abspath(__file__))
        dirs = [
            here,
            os.path.dirname(os.path.abspath(tasks.__file__)),
            os.path.dirname(os.path.abspath(probes.__file__)),
        ]
        dirs += [sysconfig.get_paths()[k] for k in ("purelib", "platlib", "stdlib")]
        _LIBRARY_DIRS = tuple(os.path.join(d, "") for d in dirs)
    return _LIBRARY_DIRS


def short_error_lines(value: BaseException, tb) -> list[str]:
    """The error's one-line message and the user's own frame (the innermost frame outside the library)."""
    import traceback

    frames = [f for f in traceback.extract_tb(tb) if not f.filename.startswith(_library_dirs())]
    lines = [f"{type(value).__name__}: {value}"]
    if frames:
        f = frames[-1]
        where = (
            f"line {f.lineno}"
            if f.filename.startswith("<") or "ipykernel" in f.filename
            else f"{f.filename}:{f.lineno}"
        )
        lines.append(f"  at {where}: {(f.line or '').strip()}")
    lines.append("  (grok.show_full_tracebacks() shows the library's frames)")
    return lines


def short_error_types() -> tuple[type[BaseException], ...]:
    """The errors about a user's input that are shown short: config, registry, run directory, history."""

    return (ConfigError, RegistryError, RunDirError, MetricNotRecorded)


def show_short_errors(enable: bool = True) -> bool:
    """Show grok's input errors as their one-line message and the user's frame (True) or in full.

    On by default in IPython and Jupyter (set GROK_FULL_TRACEBACKS=1 to keep it off); a plain
    Python script keeps the full traceback unless it calls this. Returns whether it is now on.

    >>> grok.show_short_errors()       # in a script: short errors from here on
    >>> grok.show_full_tracebacks()    # back to Python's full tracebacks
    """
    import sys

    types = short_error_types()
    shell = _ipython()
    if shell is not None:
        if enable:

            def handler(self, etype, value, tb, tb_offset=None):
                stb = short_error_lines(value, tb)
                self._showtraceback(etype, value, stb)  # IPython's run_code ignores what the handler returns
                return stb

            shell.set_custom_exc(types, handler)
        else:
            shell.set_custom_exc((), None)
        return enable
    if enable:
        previous = sys.excepthook

        def hook(etype, value, tb):
            if issubclass(etype, types):
                print("\n".join(short_error_lines(value, tb)), file=sys.stderr)
            else:
                previous(etype, value, tb)

        hook.grok_previous = previous  # type: ignore[attr-defined]
        sys.excepthook = hook
    else:
        sys.excepthook = getattr(sys.excepthook, "grok_previous", sys.excepthook)
    return enable


def show_full_tracebacks() -> None:
    """Show grok's errors with Python's (or IPython's) full traceback again.

    >>> grok.show_full_tracebacks()
    """
    show_short_errors(False)


def _ipython():
    """The running IPython shell, or None (IPython not imported, or a plain interpreter)."""
    import sys

    if "IPython" not in sys.modules:
        return None
    try:
        return sys.modules["IPython"].get_ipython()
    except AttributeError:
        return None


def install_notebook_errors() -> None:
    """At `import grok`: short errors in IPython/Jupyter unless GROK_FULL_TRACEBACKS is set."""
    import os

    if os.environ.get("GROK_FULL_TRACEBACKS", "") in ("", "0") and _ipython() is not None:
        show_short_errors(True)
