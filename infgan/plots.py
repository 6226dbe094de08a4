"""Plots of a run: real vs generated paths, marginal histograms, loss/score curves, val/score curve."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

REAL, FAKE = "tab:blue", "tab:orange"


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (files only; never needs a display), imported at first
    use: it costs about 0.35 s of CPU in every process that imports the training loop (each Tune
    trial and Ray Train worker), and most of those never draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> None:
    """Lay out, write (100 dpi) and close `fig`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot().close(fig)


def samples_figure(
    real: torch.Tensor, fake: torch.Tensor, names: Sequence[str], time_unit: str = "time units", n: int = 24
) -> Any:
    """Real (observed points joined) and generated paths, one panel per channel, in data units."""
    channels = real.size(-1) - 1
    fig, axes = pyplot().subplots(channels, 2, figsize=(10, 2.8 * channels), squeeze=False, sharey="row")
    for c in range(channels):
        for ax, paths, colour, title in (
            (axes[c, 0], real, REAL, "real (held out)"),
            (axes[c, 1], fake, FAKE, "generated"),
        ):
            for p in paths[spread(len(paths), n)]:
                t, y = p[:, 0].numpy(), p[:, c + 1].numpy()
                seen = ~np.isnan(y)
                ax.plot(t[seen], y[seen], color=colour, alpha=0.5, lw=0.8)
            ax.set_title(f"{names[c]}: {title}")
            ax.set_xlabel(f"time since the series' start ({time_unit})")
    fig.tight_layout()
    return fig


def spread(total: int, n: int) -> np.ndarray:
    """Up to `n` indices evenly spread over `total` (not the first n: overlapping windows of one
    series sit next to each other)."""
    return np.unique(np.linspace(0, total - 1, min(n, total)).round().astype(int))


def plot_samples(
    real: torch.Tensor, fake: torch.Tensor, path: Path, names: Sequence[str], time_unit: str = "time units", n: int = 24
) -> None:
    """`samples_figure`, saved to `path`."""
    save_figure(samples_figure(real, fake, names, time_unit, n), path)


def plot_marginals(
    real: torch.Tensor,
    fake: torch.Tensor,
    path: Path,
    names: Sequence[str],
    fractions: Sequence[float] = (0.0, 1 / 3, 2 / 3, 1.0),
) -> None:
    """Histograms of real vs generated values at a few fractions of the time range, per channel."""
    channels, t_size = real.size(-1) - 1, real.size(1)
    size = (3.2 * len(fractions), 2.6 * channels)
    fig, axes = pyplot().subplots(channels, len(fractions), figsize=size, squeeze=False)
    for c in range(channels):
        for j, frac in enumerate(fractions):
            i = min(t_size - 1, round(frac * (t_size - 1)))
            r, f = real[:, i, c + 1].numpy(), fake[:, i, c + 1].numpy()
            r = r[~np.isnan(r)]
            bins = np.histogram_bin_edges(np.concatenate([r, f]), bins=40)
            ax = axes[c, j]
            ax.hist(r, bins=bins, density=True, alpha=0.5, color=REAL, label="real", histtype="stepfilled")
            ax.hist(f, bins=bins, density=True, alpha=0.5, color=FAKE, label="generated", histtype="stepfilled")
            ax.set_title(f"{names[c]} at t = {float(real[0, i, 0]):.3g}")
    axes[0, 0].legend()
    save_figure(fig, path)


def _curve(ax: Any, history: list[dict[str, Any]], key: str, label: str | None = None) -> None:
    pts = [(r["step"], r[key]) for r in history if key in r and r[key] is not None]
    if pts:
        x, y = zip(*pts)
        ax.plot(x, y, marker=".", label=label or key)


def plot_training_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Critic and generator losses, and mean real/fake critic scores, against the step."""
    fig, (ax1, ax2) = pyplot().subplots(1, 2, figsize=(11, 3.5))
    for key in ("train/critic_loss", "train/generator_loss"):
        _curve(ax1, history, key)
    ax1.set_title("losses (diagnostic; not comparable across trials)")
    for key in ("train/score_real", "train/score_fake"):
        _curve(ax2, history, key)
    ax2.set_title("mean critic score")
    for ax in (ax1, ax2):
        ax.set_xlabel("step")
        if ax.get_legend_handles_labels()[0]:  # nothing to label before the first training step
            ax.legend()
    save_figure(fig, path)


def plot_score(history: list[dict[str, Any]], path: Path) -> None:
    """val/score and its parts against the step (log scale)."""
    fig, ax = pyplot().subplots(figsize=(7, 3.8))
    for key in ("val/score", "val/marginal_w1", "val/marginal_ks", "val/cov_error"):
        _curve(ax, history, key)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title("held-out quality (lower is better)")
    ax.legend()
    save_figure(fig, path)


def plot_sweep(
    directory: Path,
    sweep: dict[str, Any],
    trials: Sequence[Any],
    progress: Sequence[tuple[float, float, float]],
    importances: dict[str, float],
) -> None:
    """A sweep's plots: best-so-far against steps and wall time, learning curves, importances."""
    from infgan.objective import sign as orientation

    metric = sweep["metric"]
    sign = orientation(sweep["mode"])
    if progress:
        steps, secs, oriented = zip(*progress)
        best = [sign * b for b in oriented]
        for name, x, label in (
            ("best_vs_steps.png", steps, "cumulative training steps (all trials)"),
            ("best_vs_time.png", [s / 60 for s in secs], "wall time since the first evaluation (min)"),
        ):
            fig, ax = pyplot().subplots(figsize=(7, 4))
            ax.step(x, best, where="post")
            ax.set_xlabel(label)
            ax.set_ylabel(f"best {metric} so far")
            ax.set_title(f"{Path(sweep['name']).stem}: best {metric} so far")
            save_figure(fig, directory / name)
    fig, ax = pyplot().subplots(figsize=(8, 4.5))
    for t in trials:
        pts = [(r["step"], sign * s) for r, s in zip(t.records, t.scores) if np.isfinite(s)]
        if pts:
            x, y = zip(*pts)
            ax.plot(x, y, marker=".", lw=1, alpha=0.8, label=f"{t.trial_id} ({t.status})")
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.set_yscale("log" if all(sign * s > 0 for t in trials for s in t.scores if np.isfinite(s)) else "linear")
    ax.set_title("learning curves per trial")
    if len(trials) <= 20:
        ax.legend(fontsize=7, ncol=2)
    save_figure(fig, directory / "learning_curves.png")
    if importances:
        names = list(importances)[::-1]
        fig, ax = pyplot().subplots(figsize=(7, 0.5 * len(names) + 1.5))
        ax.barh(names, [importances[n] for n in names])
        ax.set_xlabel(f"importance for {metric} (fANOVA, Optuna)")
        save_figure(fig, directory / "param_importance.png")


def plot_comparison(
    curves: dict[str, list[tuple[float, float]] | dict[str, list[float]]], metric: str, sign: float, path: Path
) -> None:
    """Best-so-far value of `metric` against cumulative training steps, one line per strategy.

    A strategy with one sweep is its step curve; one with several (a `median_band` of them) is
    their median with the 25th-75th percentile band. Values come lower-is-better; `sign` turns
    them back into the metric's own direction for the axis.
    """
    fig, ax = pyplot().subplots(figsize=(7.5, 4.5))
    for label, pts in curves.items():
        if isinstance(pts, dict):
            x = np.asarray(pts["steps"])
            if not len(x):
                continue
            y = sign * np.asarray(pts["median"])
            line = ax.step(x, y, where="post", label=f"{label} (median best {y[-1]:.3g})")[0]
            lo, hi = sign * np.asarray(pts["q25"]), sign * np.asarray(pts["q75"])
            ax.fill_between(x, lo, hi, step="post", alpha=0.2, color=line.get_color())
            continue
        finite = [(x, sign * y) for x, y in pts if np.isfinite(y)]
        if finite:
            xs, ys = zip(*finite)
            ax.step(xs, ys, where="post", label=f"{label} (best {ys[-1]:.3g})")
    ax.set_xlabel("cumulative training steps (all trials)")
    ax.set_ylabel(f"best {metric} so far")
    ax.set_title(f"best {metric} so far: sweeps compared on one budget axis")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_path_metrics(history: list[dict[str, Any]], path: Path) -> None:
    """Each path-level metric against the step, with its real-data floor as a dashed line."""
    from infgan.objective import PATH_METRICS

    shown = [k for k in PATH_METRICS if any(k in r for r in history)]
    if not shown:
        return
    fig, axes = pyplot().subplots(1, len(shown), figsize=(3.6 * len(shown), 3.4), squeeze=False)
    for ax, key in zip(axes[0], shown):
        _curve(ax, history, key, "generated vs real")
        floor = next((r[f"{key}_floor"] for r in history if f"{key}_floor" in r), None)
        if floor is not None:
            ax.axhline(floor, color="k", ls="--", lw=1, label="floor (real vs real)")
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    save_figure(fig, path)


def plot_evaluation(rows: Sequence[dict[str, Any]], correlations: dict[str, float], path: Path) -> None:
    """val/score against each path-level metric over a sweep's trials, with Spearman's rho and the floors."""
    keys = list(correlations)
    fig, axes = pyplot().subplots(1, len(keys), figsize=(3.6 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        pts = [
            (r["val/score"], r[key]) for r in rows if key in r and np.isfinite(r[key]) and np.isfinite(r["val/score"])
        ]
        if pts:
            x, y = zip(*pts)
            ax.scatter(x, y, s=14)
        floor = next((r[f"{key}_floor"] for r in rows if f"{key}_floor" in r), None)
        if floor is not None:
            ax.axhline(floor, color="k", ls="--", lw=1, label="floor")
            ax.legend(fontsize=7)
        if pts and min(p[0] for p in pts) > 0:
            ax.set_xscale("log")  # trials' val/score spans orders of magnitude
        ax.set_xlabel("val/score")
        ax.set_ylabel(key)
        ax.set_title(f"{key}: Spearman {correlations[key]:+.2f}")
    save_figure(fig, path)
