"""Data: the OU process against its closed form, split, missing entries, normalisation, gap filling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchcde

from infgan.config import DataConfig
from infgan.data import build_dataset, ou
from infgan.data.dataset import interpolation_coeffs
from infgan.data.noise import increment_correlation, white_noise


def ou_moments(t: np.ndarray, t_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form mean and variance of dY = (mu t - theta Y) dt + sigma (2t/T) dW, Y0 ~ U(-1, 1).

    mean' = mu t - theta mean, mean(0) = 0  =>  mean(t) = (mu/theta)(t - 1/theta) + (mu/theta^2) e^{-theta t}.
    var(t) = e^{-2 theta t} / 3 + int_0^t e^{-2 theta (t-u)} (2 sigma u / T)^2 du, integrated exactly below.
    """
    mu, th, s = ou.MU, ou.THETA, ou.SIGMA
    mean = mu / th * (t - 1 / th) + mu / th**2 * np.exp(-th * t)
    a, c = 2 * th, (2 * s / t_size) ** 2
    # int_0^t e^{-a(t-u)} u^2 du = t^2/a - 2t/a^2 + 2/a^3 - 2 e^{-a t}/a^3
    integral = t**2 / a - 2 * t / a**2 + 2 / a**3 - 2 * np.exp(-a * t) / a**3
    return mean, np.exp(-a * t) / 3 + c * integral


@pytest.mark.slow
def test_ou_matches_closed_form_mean_and_variance():
    n, t_size = 20000, 64
    ys = ou.sample_ou(n, t_size, torch.Generator().manual_seed(1))[..., 0].double().numpy()
    t = ou.times(t_size).double().numpy()
    mean, var = ou_moments(t, t_size)
    # Standard errors at n = 20000: mean ~ sqrt(var/n) <= 0.005; tolerances are ~5 of them.
    assert np.abs(ys.mean(0) - mean).max() < 0.03
    assert np.abs(ys.var(0) / var - 1).max() < 0.06
    assert ys.mean(0)[-1] > 0.1  # the drift mu*t has visibly pushed the mean up by t = 63


def test_ou_paths_are_solved_once_then_read_back_and_the_generator_moves_on_alike(monkeypatch, tmp_path):
    monkeypatch.setenv("INFGAN_CACHE_DIR", str(tmp_path))
    first, second = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    solved = ou.sample_ou(30, 8, first)

    def no_solver(*args):
        raise AssertionError("solved again: the cache was not read")

    monkeypatch.setattr(ou, "solve", no_solver)
    assert torch.equal(ou.sample_ou(30, 8, second), solved)
    assert torch.equal(torch.rand(4, generator=first), torch.rand(4, generator=second))  # what follows draws alike
    with pytest.raises(AssertionError, match="solved again"):  # other starts are another entry
        ou.sample_ou(30, 8, torch.Generator().manual_seed(4))


def test_split_missing_and_normalisation_are_fixed_by_seed():
    cfg = DataConfig(size=200, t_size=16, missing_rate=0.3, val_fraction=0.25)
    a, b, c = build_dataset(cfg, 0), build_dataset(cfg, 0), build_dataset(cfg, 1)
    assert torch.equal(a.train.nan_to_num(), b.train.nan_to_num()) and torch.equal(
        a.val.nan_to_num(), b.val.nan_to_num()
    )
    assert not torch.equal(a.train.nan_to_num(), c.train.nan_to_num())
    assert a.val.size(0) == 50 and a.train.size(0) == 150
    values = torch.cat([a.train, a.val])[..., 1:]
    assert abs(torch.isnan(values).float().mean().item() - 0.3) < 0.01
    assert not torch.isnan(a.train[..., 0]).any()  # time is never missing
    first = a.train[:, 0, 1]
    first = first[~torch.isnan(first)]
    assert abs(first.mean().item()) < 1e-5 and abs(first.std(unbiased=False).item() - 1) < 1e-4
    # train and held-out series are different series
    rows = {tuple(r.nan_to_num(99).flatten().tolist()) for r in a.train}
    assert not any(tuple(r.nan_to_num(99).flatten().tolist()) in rows for r in a.val)


def test_denormalise_inverts_normalisation():
    d = build_dataset(DataConfig(size=50, t_size=8, missing_rate=0.0), 0)
    raw = ou.sample_ou(50, 8, torch.Generator().manual_seed(0))
    back = d.denormalise(torch.cat([d.train, d.val]))[..., 1:]
    assert torch.allclose(torch.sort(back.flatten()).values, torch.sort(raw.flatten()).values, atol=1e-5)


def test_gap_filling_equals_torchcde():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 12, 3, generator=g)
    x[torch.rand(x.shape, generator=g) < 0.5] = float("nan")
    x[0, :, 1] = float("nan")  # all missing
    x[1, :4, 2] = float("nan")  # leading gap
    x[2, -5:, 0] = float("nan")  # trailing gap
    assert torch.equal(interpolation_coeffs(x), torchcde.linear_interpolation_coeffs(x))
    clean = torch.randn(3, 5, 2)
    assert interpolation_coeffs(clean) is clean


def test_white_noise_level_tells_a_smooth_channel_from_white_noise(tmp_path):
    """infgan.data.noise: the white-noise level about 0 for a smooth channel, its spread for white noise,
    in between for a smooth channel with noise on top (normalised units); the noises' correlation."""
    import pandas as pd

    g = np.random.default_rng(0)
    n = 3000
    smooth = np.sin(np.arange(n) / 40)
    frame = pd.DataFrame(
        {
            "t": np.arange(n),
            "smooth": smooth,
            "white": g.standard_normal(n),
            "both": smooth + 0.3 * g.standard_normal(n),
        }
    )
    frame.to_csv(tmp_path / "d.csv", index=False)
    cfg = DataConfig(
        dataset="csv", path=str(tmp_path / "d.csv"), time_column="t", t_size=24, stride=4, normalise="whole"
    )
    ds = build_dataset(cfg, 0)
    level = dict(zip(ds.names, white_noise(ds.train[..., 1:]).tolist()))
    assert level["smooth"] < 0.02
    assert 0.9 < level["white"] < 1.1
    both = 0.3 / float(np.std(smooth + 0.3 * g.standard_normal(n)))  # the noise's share in normalised units
    assert abs(level["both"] - both) < 0.05
    corr = increment_correlation(ds.train[..., 1:])
    assert torch.equal(corr.diagonal(), torch.ones(3)) and float(corr.abs().max()) <= 1
    assert float(corr[ds.names.index("white"), ds.names.index("both")].abs()) < 0.1  # independent noises
