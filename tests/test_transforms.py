"""`data.transform`: each kind inverts exactly on data with gaps, anchored kinds start windows at 0,
the forms of the setting, and a run whose samples come back in data units, positive under a log."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from infgan.cli import main
from infgan.data import transforms
from infgan.data.dataset import build_dataset
from infgan.data.files import DataError

from conftest import tiny


def positive_paths(seed: int = 0) -> torch.Tensor:
    """(20, 9, 2) positive values on very different levels, a fifth of entries missing."""
    g = torch.Generator().manual_seed(seed)
    x = torch.exp(torch.randn(20, 9, 2, generator=g).cumsum(1) * 0.1) * torch.tensor([50.0, 1e6])
    x[torch.rand(x.shape, generator=g) < 0.2] = float("nan")
    return x.double()


@pytest.mark.parametrize("kind", [k for k in transforms.KINDS if k not in transforms.BAR])
def test_each_transform_inverts_exactly_where_observed(kind):
    x = positive_paths()
    table = transforms.fit(x, [kind, kind])
    y = transforms.forward(x, [kind, kind], ["p", "v"], "test", table)
    assert torch.equal(torch.isnan(y), torch.isnan(x))
    back = transforms.inverse(y, [kind, kind], transforms.first_observed(x), ["p", "v"], table)
    assert torch.allclose(back.nan_to_num(), x.nan_to_num(), rtol=1e-9)
    if kind in transforms.ANCHORED:  # every window starts at 0 at its first observation
        assert torch.allclose(transforms.first_observed(y), torch.zeros(20, 2, dtype=y.dtype))


def test_bars_invert_exactly_and_any_generated_bar_is_ordered():
    g = torch.Generator().manual_seed(0)
    close = 100 * torch.exp(0.02 * torch.randn(30, 12, generator=g).cumsum(1))
    open_ = close * torch.exp(0.01 * torch.randn(30, 12, generator=g))
    high = torch.maximum(open_, close) * torch.exp(0.01 * torch.rand(30, 12, generator=g))
    low = torch.minimum(open_, close) * torch.exp(-0.01 * torch.rand(30, 12, generator=g))
    names, kinds = ["Open", "High", "Low", "Close"], ["log_return", "high", "low", "log_return"]
    x = torch.stack([open_, high, low, close], dim=-1).double()
    y = transforms.forward(x, kinds, names, "test")
    assert torch.allclose(transforms.inverse(y, kinds, transforms.first_observed(x), names), x, rtol=1e-9)
    anything = transforms.inverse(torch.randn_like(y), kinds, transforms.first_observed(x), names)
    o, h, lo, c = anything.unbind(-1)
    assert ((lo <= torch.minimum(o, c)) & (torch.maximum(o, c) <= h) & (lo > 0)).all()
    with pytest.raises(DataError, match="need channels named Open and Close"):
        transforms.per_channel(("high",), ["a", "b"], "d")


@pytest.mark.parametrize("close_kind", ["log", "quantile"])
def test_prices_as_ratios_to_the_close_invert_exactly_and_a_copy_of_the_close_stays_one(close_kind):
    """With the Close as normal scores too (the `timegan_stocks` preset), the bar still inverts and
    stays ordered, and its generated Close stays within the training range."""
    g = torch.Generator().manual_seed(1)
    close = 100 * torch.exp(0.02 * torch.randn(30, 12, generator=g).cumsum(1))
    open_ = close * torch.exp(0.01 * torch.randn(30, 12, generator=g))
    high = torch.maximum(open_, close) * torch.exp(0.01 * torch.rand(30, 12, generator=g))
    low = torch.minimum(open_, close) * torch.exp(-0.01 * torch.rand(30, 12, generator=g))
    names = ["Open", "High", "Low", "Close", "Adj"]
    kinds = transforms.per_channel(
        ("Open=close_ratio", "High=high", "Low=low", f"Close={close_kind}", "Adj=close_ratio"), names, "d"
    )
    x = torch.stack([open_, high, low, close, close], dim=-1).double()
    table = transforms.fit(x, kinds)
    y = transforms.forward(x, kinds, names, "test", table)
    assert torch.equal(y[..., 4], torch.zeros_like(y[..., 4]))  # the copy of the close is 0 as a ratio
    back = transforms.inverse(y, kinds, transforms.first_observed(x), names, table)
    assert torch.allclose(back, x, rtol=1e-9)
    made = 3 * torch.randn_like(y)
    made[..., 4] = 0
    o, h, lo, c, adj = transforms.inverse(made, kinds, transforms.first_observed(x), names, table).unbind(-1)
    assert torch.equal(adj, c) and ((lo <= torch.minimum(o, c)) & (torch.maximum(o, c) <= h) & (lo > 0)).all()
    if close_kind == "quantile":
        assert x[..., 3].min() <= c.min() and c.max() <= x[..., 3].max()
    with pytest.raises(DataError, match="close_ratio needs a channel named Close"):
        transforms.per_channel(("Close=close_ratio",), names, "d")


def test_the_forms_of_the_setting():
    names = ["Open", "Volume"]
    assert transforms.per_channel((), names, "d") == ["none", "none"]
    assert transforms.per_channel(("log",), names, "d") == ["log", "log"]
    assert transforms.per_channel(("log_return", "log"), names, "d") == ["log_return", "log"]
    assert transforms.per_channel(("Volume=log",), names, "d") == ["none", "log"]
    with pytest.raises(DataError, match="mix of"):
        transforms.per_channel(("Volume=log", "log"), names, "d")


def test_quantile_channels_come_back_with_the_training_marginal_whatever_is_generated():
    g = torch.Generator().manual_seed(3)
    n, t = 400, 12
    lights = torch.where(torch.rand(n, t, generator=g) < 0.7, 0.0, 10.0 * torch.rand(n, t, generator=g).ceil())
    uniform = 50 * torch.rand(n, t, generator=g)
    x = torch.stack([lights, uniform], dim=-1).double()
    kinds = ["quantile", "quantile"]
    table = transforms.fit(x, kinds)
    y = transforms.forward(x, kinds, ["lights", "rv"], "test", table)
    assert abs(float(y[..., 1].mean())) < 0.05 and abs(float(y[..., 1].std()) - 1) < 0.05  # Gaussian scores
    assert torch.allclose(y[..., 0][lights == 0], y[..., 0][lights == 0][0])  # a repeated value: one score
    made = transforms.inverse(torch.randn(4000, t, 2, generator=g).double(), kinds, x[:, 0], ["lights", "rv"], table)
    assert abs(float((made[..., 0] == 0).double().mean()) - 0.7) < 0.02  # exactly 0 as often as in training
    seen = torch.isin(made[..., 0], lights.unique())  # between two knots of different values: in between
    assert float(seen.double().mean()) > 0.99
    assert float(made[..., 1].min()) >= 0 and float(made[..., 1].max()) <= 50  # bounded by the training range
    assert abs(float(made[..., 1].mean()) - 25) < 0.5 and abs(float(made[..., 1].std()) - 50 / 12**0.5) < 0.5
    outside = transforms.forward(torch.tensor([[[-5.0, 80.0]]]).double(), kinds, ["lights", "rv"], "test", table)
    assert torch.isfinite(outside).all()  # held-out values past the training range: the outer scores
    with pytest.raises(ValueError, match="needs the training values' table"):
        transforms.forward(x, kinds, ["lights", "rv"], "test")
    with pytest.raises(ValueError, match="needs the training values' table"):
        transforms.inverse(y, kinds, x[:, 0], ["lights", "rv"])


def test_a_quantile_dataset_is_fitted_on_training_windows_and_saved_with_the_run():
    ds = build_dataset(tiny("data.transform=[quantile]").data, 0)
    described = ds.describe()
    assert len(described["quantiles"]) == 1 and len(described["quantiles"][0]) == transforms.QUANTILES
    plain = build_dataset(tiny().data, 0)
    raw_train = plain.denormalise(plain.train)[..., 1:]
    assert torch.allclose(ds.quantiles, transforms.fit(raw_train, ["quantile"]), atol=1e-5)
    back = ds.denormalise(ds.val)
    inside = (plain.val[..., 1:] >= plain.train[..., 1:].nan_to_num(9).amin()) & (
        plain.val[..., 1:] <= plain.train[..., 1:].nan_to_num(-9).amax()
    )
    assert torch.allclose(back[..., 1:][inside], plain.denormalise(plain.val)[..., 1:][inside], atol=1e-3)


def test_generated_levels_come_from_whole_training_windows():
    pool = torch.tensor([[1.0, 2.0], [float("nan"), 5.0], [3.0, 4.0]])
    drawn = transforms.draw_anchors(pool, 50, seed=1)
    assert torch.isfinite(drawn).all()
    assert {tuple(r) for r in drawn.tolist()} == {(1.0, 2.0), (3.0, 4.0)}  # rows kept together
    assert torch.equal(drawn, transforms.draw_anchors(pool, 50, seed=1))


def test_an_anchored_channel_is_normalised_over_the_whole_window():
    ds = build_dataset(tiny("data.transform=[diff]").data, 0)
    values = ds.train[..., 1]
    assert 0.5 < float(values[~torch.isnan(values)].std()) < 2.0  # not the ~0 spread at t = 0
    assert ds.describe()["transform"] == ["diff"] and len(ds.describe()["anchors"]) > 0
    back = ds.denormalise(ds.val, ds.val_anchors)
    plain = build_dataset(tiny().data, 0)
    assert torch.allclose(back.nan_to_num(), plain.denormalise(plain.val).nan_to_num(), atol=1e-4)


@pytest.mark.slow
def test_a_run_on_log_returns_samples_positive_prices(tmp_path):
    g = np.random.default_rng(0)
    n = 600
    price = 100 * np.exp(np.cumsum(0.02 * g.standard_normal(n)))
    frame = pd.DataFrame({"t": np.arange(n), "price": price, "volume": np.exp(12 + g.standard_normal(n))})
    frame.to_csv(tmp_path / "d.csv", index=False)
    run = tmp_path / "run"
    sets = [
        "data.dataset=csv",
        f"data.path={tmp_path / 'd.csv'}",
        "data.time_column=t",
        "data.t_size=16",
        "data.stride=4",
        "data.transform=[price=log_return, volume=log]",
        "train.steps=4",
        "eval.every=4",
        "eval.path_metrics=off",
    ]
    args = ["train", "--out", str(run), "--no-progress", *(x for s in sets for x in ("--set", s))]
    assert main(args) == 0
    saved = json.loads((run / "data.json").read_text())
    assert saved["transform"] == ["log_return", "log"]
    assert main(["sample", str(run), "-n", "64", "--out", str(tmp_path / "s.npz")]) == 0
    paths = np.load(tmp_path / "s.npz")["paths"]
    assert paths.shape == (64, 16, 2) and np.isfinite(paths).all() and (paths > 0).all()
    levels = np.array(saved["anchors"])
    assert levels[:, 0].min() * 0.2 < np.median(paths[:, 0, 0]) < levels[:, 0].max() * 5  # price level of real windows
