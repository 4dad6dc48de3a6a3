"""Matplotlib figures: message sparsity, message-vs-force scatter, loss curves, judge coverage, learned properties.

Every function writes a PNG (atomically) and returns its path; the Agg backend is used,
so no display is needed.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from ._io import atomic_write
from .analysis import MessageAnalysis, MessageSample, linear_fit_r2


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    _figure().close(fig)
    return atomic_write(path, lambda handle: handle.write(buffer.getvalue()))


def plot_sparsity(analysis: MessageAnalysis, path: str | os.PathLike, title: str = "") -> Path:
    """Bar chart of the spread of the 15 most significant message components (log scale)."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    k = len(analysis.components)
    colors = ["tab:red" if i < k else "tab:gray" for i in range(len(analysis.spread))]
    ax.bar(range(len(analysis.spread)), analysis.spread, color=colors)
    ax.set_yscale("log")
    ax.set_xticks(range(len(analysis.spread)), [str(c) for c in analysis.ranking], fontsize=7)
    ax.set_xlabel("message component (ranked)")
    ax.set_ylabel("std" if analysis.criterion == "std" else "mean KL")
    ax.set_title(title or f"message sparsity (ratio {analysis.sparsity_ratio:.3g})")
    return _save(fig, path)


def plot_message_scatter(sample: MessageSample, analysis: MessageAnalysis, path: str | os.PathLike,
                         max_points: int = 3000) -> Path:
    """Each significant message component against its best linear fit of the true force."""
    plt = _figure()
    target = sample.force if analysis.target == "F" else sample.force / sample.m1[:, None]
    k = len(analysis.components)
    fig, axes = plt.subplots(1, k, figsize=(3.6 * k, 3.4), squeeze=False)
    pick = np.random.default_rng(0).choice(len(target), size=min(max_points, len(target)), replace=False)
    for ax, comp, r2 in zip(axes[0], analysis.components, analysis.r2):
        y = sample.messages[:, comp]
        _, coef = linear_fit_r2(y, target)
        fitted = target @ coef[:-1] + coef[-1]
        ax.scatter(fitted[pick], y[pick], s=3, alpha=0.4)
        lo, hi = np.percentile(fitted, [1, 99])
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        if hi > lo:  # a constant (dead) message has no range to zoom on
            ax.set_xlim(lo, hi)
        y_lo, y_hi = np.percentile(y, [1, 99])
        if y_hi > y_lo:
            ax.set_ylim(y_lo, y_hi)
        ax.set_xlabel(f"linear fit of {analysis.target}")
        ax.set_ylabel(f"message {comp}")
        ax.set_title(f"R² = {r2:.3f}")
    fig.tight_layout()
    return _save(fig, path)


def plot_loss_curves(histories: dict[str, list[dict]], path: str | os.PathLike, title: str = "") -> Path:
    """Training (solid) and validation (dashed) MAE per epoch, one colour per run."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for i, (name, history) in enumerate(histories.items()):
        color = f"C{i}"
        epochs = [h["epoch"] for h in history]
        ax.plot(epochs, [h["train_loss"] for h in history], color=color, label=f"{name} train")
        if history and "val_loss" in history[0]:
            ax.plot(epochs, [h["val_loss"] for h in history], "--", color=color, label=f"{name} val")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MAE of accelerations")
    ax.set_title(title)
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_route_comparison(rows: list[dict], path: str | os.PathLike, title: str = "") -> Path:
    """Complexity against out-of-distribution error (1 - worst R²), one marker per route.

    Args:
        rows: :func:`eqlgn.comparison.comparison_rows` output.
    """
    plt = _figure()
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    routes = sorted({row["route"] for row in rows})
    for i, route in enumerate(routes):
        mine = [row for row in rows if row["route"] == route and row["ood_r2"] is not None]
        error = [max(1.0 - row["ood_r2"], 1e-6) for row in mine]
        ax.scatter([row["complexity"] for row in mine], error, color=f"C{i}", label=route, s=30)
        for row, e in zip(mine, error):
            ax.annotate(f"{row['law']} {row['dim']}D n{row['n']}", (row["complexity"], e), fontsize=6,
                        xytext=(3, 3), textcoords="offset points")
    from .judging import R2_THRESHOLD

    ax.axhline(1.0 - R2_THRESHOLD, color="k", ls="--", lw=1, label=f"judge threshold (scale-free R² {R2_THRESHOLD})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("complexity (expression-tree nodes, all components)")
    ax.set_ylabel("1 - scale-free out-of-distribution R² (worst component)")
    ax.set_title(title or "routes: simplicity vs extrapolation")
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_judge_coverage(data, path: str | os.PathLike, title: str = "") -> Path:
    """Histograms of a dataset's pair separations and masses, with the judge's sampling ranges shaded."""
    from .judging import LOG_MASS_RANGE, R_RANGE, training_pairs

    plt = _figure()
    r, masses = training_pairs(data)
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.4, 3.0))
    bins = np.geomspace(min(R_RANGE[0], r.min()) / 1.5, max(R_RANGE[1], r.max()) * 1.5, 60)
    left.hist(r, bins=bins, color="tab:blue", label="training pairs")
    left.axvspan(*R_RANGE, color="tab:orange", alpha=0.2, label="judge: log-uniform")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("pair separation r")
    left.legend(fontsize=7)
    log_mass = np.log(masses)
    right.hist(log_mass, bins=np.linspace(min(LOG_MASS_RANGE[0], log_mass.min()) - 0.5,
                                          max(LOG_MASS_RANGE[1], log_mass.max()) + 0.5, 50), color="tab:blue")
    right.axvspan(*LOG_MASS_RANGE, color="tab:orange", alpha=0.2)
    right.set_xlabel("ln m")
    fig.suptitle(title or f"where the data lie relative to the judge's states ({data.meta.law} {data.dim}D)")
    return _save(fig, path)


def plot_learned_properties(values: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]],
                            path: str | os.PathLike, title: str = "") -> Path:
    """Learned against true values, one panel per property, up to what the law leaves free.

    ``values`` maps ``"m"``/``"q"`` to ``(learned, truth, groups)``. Masses: ``log m`` after the one global
    factor (the mean log ratio). Charges: after the best common factor, the truth's sign flipped per group
    (simulation; ``None``: one sign for all) where the learned ones are flipped."""
    from .properties import agreement, flipped_to

    plt = _figure()
    fig, axes = plt.subplots(1, len(values), figsize=(4.2 * len(values), 4), squeeze=False)
    for ax, (name, (learned, truth, groups)) in zip(axes[0], values.items()):
        learned, truth = np.asarray(learned, dtype=np.float64), np.asarray(truth, dtype=np.float64)
        if name == "m":
            x, y = np.log(truth), np.log(learned)
            y = y - (y - x).mean()
            label, score = "log m", f"log-R² {agreement(learned, truth, 'm'):.4f}"
        else:
            x = flipped_to(learned, truth, groups if groups is not None else np.zeros(len(truth)))
            y = learned * (x @ x) / max(float(learned @ x), 1e-300)
            label, score = "q", f"R² {agreement(learned, truth, 'q', groups):.4f}"
        ax.plot(x, y, ".", markersize=3, alpha=0.5)
        low, high = min(x.min(), y.min()), max(x.max(), y.max())
        ax.plot([low, high], [low, high], "k--", linewidth=0.8)
        ax.set_xlabel(f"true {label}")
        ax.set_ylabel(f"learned {label} (up to the law's symmetry)")
        ax.set_title(f"{len(x)} identities: {score}")
    fig.suptitle(title or "learned properties against the truth")
    return _save(fig, path)
