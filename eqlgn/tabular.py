"""A plain table ``X [n_samples, n_features]``, ``y [n_samples]`` (or ``[n_samples, k]``) checked at the boundary:
every fault (not numeric, wrong shape, NaN/inf, a target without variance, a bad variable name) a one-line error
that names the problem and the fix. :class:`eqlgn.regressor.EQLRegressor` reads its input through here."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import ConfigError, DatasetError


def variable_names_of(names: Sequence[str] | None, count: int) -> list[str]:
    if names is None:
        return [f"x{i}" for i in range(count)]
    names = [str(n) for n in names]
    if len(names) != count:
        raise ConfigError(f"variable_names has {len(names)} names for {count} columns of X")
    for name in names:
        if not name.isidentifier() or name.startswith("_"):
            raise ConfigError(f"variable name {name!r} is not a plain identifier (letters, digits, _)")
    if len(set(names)) != len(names):
        raise ConfigError(f"variable_names repeat a name: {names}")
    return names


def check_table(X, y, features: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``X`` as float64 ``[n, d]`` and ``y`` as ``[n, k]``, each fault a one-line error."""
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetError("X must be numeric: an array [n_samples, n_features] of numbers") from None
    if X.ndim != 2:
        raise DatasetError(f"X must be 2D [n_samples, n_features], got shape {X.shape}. Reshape your data: "
                           "X.reshape(-1, 1) for a single feature, X.reshape(1, -1) for a single sample")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise DatasetError(f"X needs at least one sample and one feature, got shape {X.shape}")
    if features is not None and X.shape[1] != features:
        raise DatasetError(f"X has {X.shape[1]} features, but the regressor was fitted with {features}")
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise DatasetError(f"X contains NaN or inf ({int(bad.sum())} values; first at row {row}, column {col}); "
                           "drop or impute those rows")
    if y is None:
        return X, None
    try:
        Y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetError("y must be numeric: an array [n_samples] or [n_samples, n_targets]") from None
    if Y.ndim not in (1, 2) or len(Y) != len(X):
        raise DatasetError(f"y has shape {Y.shape} but X has {len(X)} samples; y must be [n_samples] or "
                           "[n_samples, n_targets]")
    Y = Y.reshape(len(X), -1)
    if not np.isfinite(Y).all():
        row = int(np.argwhere(~np.isfinite(Y))[0][0])
        raise DatasetError(f"y contains NaN or inf (first at row {row}); drop those rows")
    if len(X) < 2 or (Y.std(axis=0) == 0).any():
        raise DatasetError("y has no variance (every value the same): there is no formula to learn beyond a constant")
    return X, Y
