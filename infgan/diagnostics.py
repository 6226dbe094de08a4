"""Distribution diagnostics of generated paths against real ones, as numbers and as plots.

- `correlations`: the cross-time (and cross-channel) correlation matrix of a set of paths, every
  (time, channel) pair a variable; real, generated and their difference side by side show which
  dependence across time the generator misses (`plots/correlation.png`).
- `path_norms`: each path's L2 norm over time per channel, as a root mean square over the times it
  is observed (so a real path with gaps is comparable with a complete generated one);
  histograms real vs generated (`plots/norms.png`).
- `ks_by_time`: the two-sample Kolmogorov-Smirnov statistic and p-value of real vs generated
  values at every time and channel, and the same statistic between two halves of the real set
  (its floor: what sampling noise alone gives); against time (`plots/ks.png`).

Paths are (n, time, 1 + channels), time as channel 0, NaN where unobserved; real and generated
on the same time grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from infgan.plots import FAKE, REAL, pyplot, save_figure

# Variables (time points x channels) beyond which the correlation matrix takes every k-th time
# point: a 64 x 10 path gives 640 variables, and a 640 x 640 image is still readable; more is not.
MAX_VARIABLES = 640


def _values(paths: torch.Tensor) -> np.ndarray:
    return paths[..., 1:].double().numpy()


def correlation_times(t_size: int, channels: int) -> np.ndarray:
    """Indices of the time points the correlation matrix uses (every one while few enough)."""
    step = max(1, -(-t_size * channels // MAX_VARIABLES))
    return np.arange(0, t_size, step)


def correlations(paths: torch.Tensor) -> np.ndarray:
    """Correlation matrix of the values at every (channel, time) pair, channel-major, pairwise over
    the paths observed at both; NaN where a variable is constant or observed in fewer than 3 paths."""
    import pandas as pd

    v = _values(paths)
    times = correlation_times(v.shape[1], v.shape[2])
    flat = v[:, times, :].transpose(0, 2, 1).reshape(v.shape[0], -1)  # (n, channels * times)
    return pd.DataFrame(flat).corr(min_periods=3).to_numpy()


def path_norms(paths: torch.Tensor) -> np.ndarray:
    """(n, channels): each path's root mean square over the times it is observed (NaN: never)."""
    v = _values(paths)
    seen = ~np.isnan(v)
    count = seen.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(np.square(np.where(seen, v, 0.0)).sum(axis=1) / count)


def ks_by_time(real: torch.Tensor, fake: torch.Tensor, seed: int = 0) -> dict[str, np.ndarray]:
    """Per (time, channel): `ks` and `p` of real vs generated, and `floor`, the statistic between
    two random halves of the real set (NaN where a side has fewer than 2 observations)."""
    from scipy import stats  # here: scipy.stats takes about 0.5 s to import, and only the final plots need it

    r, f = _values(real), _values(fake)
    order = np.random.default_rng(seed).permutation(r.shape[0])
    half_a, half_b = r[order[: len(order) // 2]], r[order[len(order) // 2 :]]
    shape = r.shape[1:]
    out = {k: np.full(shape, np.nan) for k in ("ks", "p", "floor")}
    for i in range(shape[0]):
        for c in range(shape[1]):
            x, y = r[:, i, c], f[:, i, c]
            x, y = x[~np.isnan(x)], y[~np.isnan(y)]
            if len(x) >= 2 and len(y) >= 2:
                res = stats.ks_2samp(x, y)
                out["ks"][i, c], out["p"][i, c] = res.statistic, res.pvalue
            a, b = half_a[:, i, c], half_b[:, i, c]
            a, b = a[~np.isnan(a)], b[~np.isnan(b)]
            if len(a) >= 2 and len(b) >= 2:
                out["floor"][i, c] = stats.ks_2samp(a, b).statistic
    return out


def plot_correlation(real: torch.Tensor, fake: torch.Tensor, path: Path, names: Sequence[str]) -> None:
    """Real and generated correlation matrices and their difference, channel blocks marked."""
    cr, cf = correlations(real), correlations(fake)
    times = correlation_times(real.size(1), real.size(-1) - 1)
    fig, axes = pyplot().subplots(1, 3, figsize=(15, 4.6))
    panels = (
        (cr, "real (held out)", "coolwarm", (-1, 1)),
        (cf, "generated", "coolwarm", (-1, 1)),
        (cf - cr, "generated - real", "PuOr", (-1, 1)),
    )
    for ax, (m, title, cmap, (lo, hi)) in zip(axes, panels):
        im = ax.imshow(m, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(title)
        fig.colorbar(im, ax=ax, fraction=0.046)
        ticks = [c * len(times) + len(times) / 2 for c in range(len(names))]
        for c in range(1, len(names)):  # channel block edges
            ax.axhline(c * len(times) - 0.5, color="k", lw=0.6)
            ax.axvline(c * len(times) - 0.5, color="k", lw=0.6)
        ax.set_xticks(ticks, names, rotation=90 if len(names) > 4 else 0, fontsize=7)
        ax.set_yticks(ticks, names, fontsize=7)
    fig.suptitle(f"correlation across time and channels ({len(times)} time points per channel, time runs down/right)")
    save_figure(fig, path)


def plot_norms(real: torch.Tensor, fake: torch.Tensor, path: Path, names: Sequence[str]) -> None:
    """Histograms of each path's L2 norm over time (root mean square), per channel."""
    nr, nf = path_norms(real), path_norms(fake)
    fig, axes = pyplot().subplots(1, len(names), figsize=(3.4 * len(names), 3), squeeze=False)
    for c, ax in enumerate(axes[0]):
        r, f = nr[:, c][np.isfinite(nr[:, c])], nf[:, c][np.isfinite(nf[:, c])]
        both = np.concatenate([r, f])
        bins = np.histogram_bin_edges(both, bins=30) if len(both) else 10
        ax.hist(r, bins=bins, density=True, alpha=0.5, color=REAL, label="real", histtype="stepfilled")
        ax.hist(f, bins=bins, density=True, alpha=0.5, color=FAKE, label="generated", histtype="stepfilled")
        ax.set_title(f"{names[c]}: path norm")
        ax.set_xlabel("root mean square over time")
    axes[0, 0].legend(fontsize=7)
    save_figure(fig, path)


def plot_ks(real: torch.Tensor, fake: torch.Tensor, path: Path, names: Sequence[str]) -> None:
    """KS statistic (with its real-vs-real floor) and p-value against time, one line per channel."""
    found = ks_by_time(real, fake)
    t = real[0, :, 0].numpy()
    fig, (top, bottom) = pyplot().subplots(2, 1, figsize=(8, 5.5), sharex=True)
    for c, name in enumerate(names):
        line = top.plot(t, found["ks"][:, c], lw=1.2, label=name)[0]
        top.plot(t, found["floor"][:, c], lw=0.8, ls="--", color=line.get_color())
        bottom.plot(t, np.clip(found["p"][:, c], 1e-300, 1), lw=1.2, color=line.get_color())
    top.set_ylabel("KS statistic")
    top.set_title("real vs generated at each time (dashed: two halves of the real set, the floor)")
    top.legend(fontsize=7, ncol=min(4, len(names)))
    bottom.set_yscale("log")
    bottom.axhline(0.05, color="k", lw=0.8, ls=":")
    bottom.set_ylabel("p-value (dotted: 0.05)")
    bottom.set_xlabel("time since the series' start")
    save_figure(fig, path)


def plot_diagnostics(real: torch.Tensor, fake: torch.Tensor, directory: Path, names: Sequence[str]) -> list[Path]:
    """correlation.png, norms.png and ks.png in `directory`; returns their paths."""
    out = [directory / "correlation.png", directory / "norms.png", directory / "ks.png"]
    for plot, path in zip((plot_correlation, plot_norms, plot_ks), out):
        plot(real, fake, path, names)
    return out
