"""Error types that the library raises at its boundaries.

Every user-facing error derives from :class:`EqlgnError`, so the CLI can turn
it into one line and exit code 2 while real bugs still show a traceback. The
concrete classes also derive from ``ValueError`` so that ordinary Python code
that catches ``ValueError`` keeps working.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EqlgnError(Exception):
    """Base class of every error eqlgn raises on purpose (bad input, bad state)."""


class ConfigError(EqlgnError, ValueError):
    """A configuration value or a name (law, variant, engine, ...) is invalid."""


class DatasetError(EqlgnError, ValueError):
    """A dataset file or array does not follow the dataset contract."""


class MissingDependencyError(EqlgnError, ImportError):
    """An optional dependency that the requested feature needs is not installed."""


def unknown_name(kind: str, name: object, valid: Iterable[str]) -> ConfigError:
    """Build the error for a registry miss: list the valid names, suggest the closest.

    Args:
        kind: what was looked up, e.g. ``"force law"``.
        name: the name the user gave.
        valid: the names the registry knows.
    """
    valid = sorted(valid)
    message = f"unknown {kind} {name!r}; valid: {', '.join(valid)}"
    close = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.5)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    return ConfigError(message)


def require(module: str, extra: str, purpose: str):
    """Import an optional dependency inside the function that needs it.

    Args:
        module: importable module name, e.g. ``"pyoperon"``.
        extra: the ``pip install eqlgn[extra]`` extra that provides it.
        purpose: what the caller wanted it for (goes into the message).

    Returns:
        The imported module.

    Raises:
        MissingDependencyError: with the install command when the import fails.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, or a broken install raising anything
        raise MissingDependencyError(
            f"{purpose} needs the optional package {module!r}, which could not be imported "
            f"({type(exc).__name__}: {exc}); install it with: pip install 'eqlgn[{extra}]'"
        ) from exc
