"""Synthetic path families: random walks whose increments follow a chosen distribution.

`data.dataset: gauss | trunc_gauss | cauchy | uniform` makes `data.size` paths of `data.t_size`
points in `data.dims` dimensions. Point k of a path is the sum of k + 1 independent increments
(so the first point is one increment, not a constant 0 that no normalisation could scale):

- `gauss`: N(0, scale²);
- `trunc_gauss`: N(0, scale²) truncated to ±`data.truncation` × scale (bounded increments);
- `cauchy`: Cauchy(0, scale) — no mean, no variance: heavy tails at every time;
- `uniform`: U(-scale, scale) (bounded, flat).

With `data.correlation` = rho the dimensions of one increment are dependent through a Gaussian
copula: correlated standard normals (every pair at rho) pushed through the normal CDF and the
family's quantile function, so each dimension keeps its family exactly. SDE-GANs are driven by
Brownian motion; these families show which increments they can learn (Gaussian, bounded) and which
they cannot (Cauchy's tails) — docs/quality.md.

Reference statistics (`reference_quantiles`): the quantiles of every point, in closed form where
they exist — a sum of k Gaussian increments is N(0, k scale²), of k Cauchy ones Cauchy(0, k scale)
— and by Monte Carlo (a fixed-seed sample of 200 000 paths) for the truncated Gaussian and the
uniform, whose sums have no simple closed form.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from infgan.config import DataConfig

FAMILIES = ("gauss", "trunc_gauss", "cauchy", "uniform")
MONTE_CARLO_PATHS = 200_000


def _standard_normals(n: int, t_size: int, dims: int, rho: float, g: torch.Generator) -> torch.Tensor:
    """(n, t_size, dims) standard normals, the dims of each (path, time) pairwise correlated at rho."""
    z = torch.randn(n, t_size, dims, generator=g, dtype=torch.float64)
    if rho == 0 or dims == 1:
        return z
    cov = torch.full((dims, dims), rho, dtype=torch.float64)
    cov.fill_diagonal_(1.0)
    return z @ torch.linalg.cholesky(cov).T


def increments(cfg: DataConfig, n: int, g: torch.Generator) -> torch.Tensor:
    """(n, t_size, dims) increments of the family `cfg.dataset`, float64."""
    z = _standard_normals(n, cfg.t_size, cfg.dims, cfg.correlation, g)
    s = cfg.scale
    if cfg.dataset == "gauss":
        return s * z
    u = torch.special.ndtr(z).clamp(1e-15, 1 - 1e-15)  # uniform on (0, 1), dependent as z is
    if cfg.dataset == "uniform":
        return s * (2 * u - 1)
    if cfg.dataset == "cauchy":
        return s * torch.tan(math.pi * (u - 0.5))
    a = cfg.truncation  # trunc_gauss: the normal's quantile function restricted to [-a, a]
    lo = float(torch.special.ndtr(torch.tensor(-a, dtype=torch.float64)))
    return s * torch.special.ndtri(lo + u * (1 - 2 * lo))


def sample(cfg: DataConfig, g: torch.Generator) -> torch.Tensor:
    """`cfg.size` paths (n, t_size, dims) of the family, in data units (float32 by default dtype)."""
    return increments(cfg, cfg.size, g).cumsum(dim=1).to(torch.get_default_dtype())


def channel_names(dims: int) -> list[str]:
    return [f"x{i + 1}" for i in range(dims)]


def reference_quantiles(
    cfg: DataConfig, qs: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)
) -> tuple[np.ndarray, str]:
    """Quantiles (t_size, len(qs)) of every point of one dimension of the family's walk, and how
    they were found ("closed form" or "Monte Carlo")."""
    from scipy import stats  # here, not at import: scipy.stats costs 15 MB of every process that loads data

    k = np.arange(1, cfg.t_size + 1)[:, None]  # increments summed at each point
    q = np.asarray(qs)[None, :]
    if cfg.dataset == "gauss":
        return cfg.scale * np.sqrt(k) * stats.norm.ppf(q), "closed form"
    if cfg.dataset == "cauchy":
        return cfg.scale * k * np.tan(np.pi * (q - 0.5)), "closed form"
    mc = dataclasses.replace(cfg, dims=1, correlation=0.0)
    paths = increments(mc, MONTE_CARLO_PATHS, torch.Generator().manual_seed(0)).cumsum(1)[..., 0].numpy()
    return np.quantile(paths, qs, axis=0).T, "Monte Carlo"
