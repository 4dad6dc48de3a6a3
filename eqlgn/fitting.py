"""Least squares with an intercept and its R²: the one fit behind message analysis and the judge.

``y ≈ x @ A + b`` with optional weights per row: the message analysis fits messages to
the force unweighted (:func:`eqlgn.analysis.linear_fit_r2`), the judge fits equations to
the law with weights ``1 / size²`` (:func:`eqlgn.judging.scale_free_fit`). Columns are
scaled to unit norm before solving (the judge's states span many decades).
"""

from __future__ import annotations

import numpy as np


def linear_fit(y: np.ndarray, x: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, list[float]]:
    """Weighted least squares ``y ≈ x @ A + b``.

    Args:
        y: ``[N]`` or ``[N, K]`` targets.
        x: ``[N, P]`` regressors.
        weights: ``[N]`` positive weights (default: all 1).

    Returns:
        ``coef [P + 1, K]`` (the last row is the intercept ``b``) and the weighted R² of
        each target column (``1 - Σ w·res² / Σ w·(y - mean_w y)²``; 0 for a constant column).
    """
    y = y[:, None] if y.ndim == 1 else y
    w = np.ones(len(x)) if weights is None else weights
    root = np.sqrt(w)
    design = np.column_stack([x, np.ones(len(x))])
    weighted = design * root[:, None]
    norms = np.linalg.norm(weighted, axis=0)
    norms[norms == 0] = 1.0
    coef, *_ = np.linalg.lstsq(weighted / norms, y * root[:, None], rcond=None)
    coef = coef / norms[:, None]
    residual = y - design @ coef
    r2 = []
    for c in range(y.shape[1]):
        mean = (w * y[:, c]).sum() / w.sum()
        total = (w * (y[:, c] - mean) ** 2).sum()
        r2.append(float(1.0 - (w * residual[:, c] ** 2).sum() / total) if total > 0 else 0.0)
    return coef, r2
