"""Quality metrics: zero for identical samples, the right size for known differences, NaNs ignored."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from infgan.metrics import lags, quality_metrics
from infgan.metrics.marginal import w1_and_ks


def paths(values: torch.Tensor) -> torch.Tensor:
    n, t, c = values.shape
    return torch.cat([torch.arange(t, dtype=values.dtype).view(1, t, 1).expand(n, t, 1), values], dim=2)


def test_identical_samples_score_zero():
    x = paths(torch.randn(500, 10, 2, generator=torch.Generator().manual_seed(0)))
    m = quality_metrics(x, x.clone())
    assert m["val/score"] == m["val/marginal_w1"] + m["val/marginal_ks"] + m["val/cov_error"]
    assert m["val/score"] < 1e-9


def test_known_shift_and_scale():
    g = torch.Generator().manual_seed(1)
    base = torch.randn(4000, 6, 1, generator=g)
    real, other = paths(base), paths(torch.randn(4000, 6, 1, generator=g))
    shifted = quality_metrics(real, paths(base + 1.0))
    assert abs(shifted["val/marginal_w1"] - 1.0) < 1e-6  # W1 of a pure shift is the shift
    assert 0.3 < shifted["val/marginal_ks"] < 0.45  # KS of N(0,1) vs N(1,1) is 0.383
    assert shifted["val/cov_error"] < 1e-6  # covariances are shift-invariant
    scaled = quality_metrics(real, paths(base * 2.0))
    # Variance x4 at lag 0 (error 3 var), lagged covariances ~0 for independent steps: mean over the lags.
    assert abs(scaled["val/cov_error"] - 3.0 * base.var().item() / len(lags(6))) < 0.05
    same_law = quality_metrics(real, other)
    assert same_law["val/score"] < 0.15 < shifted["val/score"]


def test_missing_real_values_are_ignored():
    x = paths(torch.randn(3000, 8, 1, generator=torch.Generator().manual_seed(2)))
    holes = x.clone()
    holes[..., 1][torch.rand(3000, 8, generator=torch.Generator().manual_seed(3)) < 0.3] = float("nan")
    m = quality_metrics(holes, x)
    assert math.isfinite(m["val/score"]) and m["val/score"] < 0.1


def test_non_finite_fakes_give_nan_score():
    x = paths(torch.randn(50, 4, 1))
    bad = x.clone()
    bad[0, 1, 1] = float("inf")
    assert math.isnan(quality_metrics(x, bad)["val/score"])


def test_lags_are_powers_of_two_below_length():
    assert lags(64) == [0, 1, 2, 4, 8, 16, 32]
    assert lags(2) == [0, 1]


def test_w1_and_ks_match_scipy_on_unequal_sizes_and_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for i in range(100):
        n, m = rng.integers(1, 200, size=2)
        a, b = rng.normal(size=n), rng.standard_t(3, size=m) + rng.normal()
        if i % 3 == 0:  # ties within and across the samples
            a, b = np.round(a, 1), np.round(b, 1)
        w1, ks = w1_and_ks(a, b)
        assert w1 == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9, abs=1e-12)
        assert ks == pytest.approx(stats.ks_2samp(a, b).statistic, rel=1e-9)
