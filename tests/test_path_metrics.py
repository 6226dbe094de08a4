"""Path-level metrics: near their floor for real data, clearly above it for wrong paths (constant,
shifted, increments shuffled in time), finite with several channels, gaps and irregular times,
deterministic; floors cached and stored with a run; a run reports them at the end or every time."""

from __future__ import annotations

import json
import math

import pytest
import torch

import infgan.metrics.floors as floors_mod
from infgan.data import build_dataset
from infgan.data.dataset import interpolation_coeffs
from infgan.metrics import path_metrics
from infgan.metrics.discriminative import discriminative_score
from infgan.metrics.floors import compute_floors, real_slices
from infgan.metrics.predictive import predictive_mae
from infgan.metrics.signature import sig_mmd
from infgan.train.context import RunContext
from infgan.train.loop import fit
from infgan.train.run_dir import RunDir

from conftest import tiny

T_END = 63.0


@pytest.fixture(scope="module")
def ou():
    """Held-out OU paths (the default data: 64 points, 30 % missing) and two disjoint real training sets of 3000."""
    ds = build_dataset(tiny("data.size=8192", "data.t_size=64").data, 0)
    train = ds.train[torch.randperm(ds.train.size(0), generator=torch.Generator().manual_seed(0))]
    return ds.val_grid, train[:3000], train[3000:6000]


@pytest.fixture(scope="module")
def ou_floors(ou):
    """(val/disc, val/sig_mmd) of the held-out paths against the first real training set."""
    held, a, _ = ou
    return discriminative_score(held, a, T_END, 0), sig_mmd(held, a, T_END, 0)


def shuffled_increments(paths: torch.Tensor, seed: int = 1) -> torch.Tensor:
    """Complete paths with the same start, whose increments come in a random order."""
    full = interpolation_coeffs(paths)
    inc = full[:, 1:, 1:] - full[:, :-1, 1:]
    order = torch.argsort(torch.rand(inc.shape[:2], generator=torch.Generator().manual_seed(seed)), dim=1)
    out = full.clone()
    out[:, 1:, 1:] = full[:, :1, 1:] + inc.gather(1, order.unsqueeze(-1).expand_as(inc)).cumsum(1)
    return out


@pytest.mark.slow
def test_real_against_real_sits_at_the_floor(ou):
    held, a, b = ou
    assert discriminative_score(a, b, T_END, seed=0) <= 0.05
    assert abs(sig_mmd(held, a, T_END, seed=0)) < 0.05
    ratio = predictive_mae(b, held, T_END, seed=0) / predictive_mae(a, held, T_END, seed=0)  # one channel
    assert 0.8 <= ratio <= 1.25


@pytest.mark.slow
@pytest.mark.parametrize("wrong", ["constant", "shifted", "shuffled"])
def test_wrong_paths_are_flagged_far_above_the_floor(ou, ou_floors, wrong):
    held, _, b = ou
    full = interpolation_coeffs(b)
    fake = {
        "constant": torch.cat([full[..., :1], torch.zeros_like(full[..., 1:])], dim=-1),
        "shifted": torch.cat([full[..., :1], full[..., 1:] + 1.0], dim=-1),
        "shuffled": shuffled_increments(b),
    }[wrong]
    disc_floor, sig_floor = ou_floors
    assert discriminative_score(held, fake, T_END, 0) > disc_floor + 0.2
    if wrong != "shifted":  # a shift of the whole path is a question of marginals, where val/score looks
        assert sig_mmd(held, fake, T_END, 0) > sig_floor + 10 * max(abs(sig_floor), 0.01)


@pytest.mark.slow
def test_constant_paths_are_useless_for_prediction(ou):
    held, a, b = ou
    const = torch.cat([b[..., :1], torch.zeros_like(b[..., 1:])], dim=-1)
    assert predictive_mae(const, held, T_END, 0) > 1.5 * predictive_mae(a, held, T_END, 0)


@pytest.mark.slow
def test_several_channels_with_gaps_and_irregular_times_are_finite_and_seeded():
    g = torch.Generator().manual_seed(3)
    n, t_size = 200, 12
    times = torch.cat([torch.zeros(1), torch.rand(t_size - 1, generator=g).sort().values * 30])

    def paths():
        walk = torch.randn(n, t_size, 3, generator=g).cumsum(1)
        walk[torch.rand(walk.shape, generator=g) < 0.3] = float("nan")
        return torch.cat([times.expand(n, t_size).unsqueeze(-1), walk], dim=-1)

    real, fake = paths(), interpolation_coeffs(paths())
    first = path_metrics(real, fake, float(times[-1]), seed=5, trtr=1.0)
    assert set(first) == {"val/disc", "val/disc_se", "val/pred", "val/pred_ratio", "val/sig_mmd"}
    assert all(math.isfinite(v) for v in first.values())
    assert path_metrics(real, fake, float(times[-1]), seed=5, trtr=1.0) == first
    assert path_metrics(real, fake, float(times[-1]), seed=6, trtr=1.0) != first
    # The classifiers side by side on threads give exactly the values of one after another.
    assert path_metrics(real, fake, float(times[-1]), seed=5, trtr=1.0, threads=4) == first
    # One of them alone (what a sweep judged by it computes at each evaluation): the same value.
    for only, names in (("disc", {"val/disc", "val/disc_se"}), ("pred", {"val/pred", "val/pred_ratio"})):
        alone = path_metrics(real, fake, float(times[-1]), seed=5, trtr=1.0, threads=2, only=only)
        assert alone == {k: first[k] for k in names}


def test_non_finite_generated_paths_give_nan_not_an_error(ou):
    held, _, b = ou
    fake = interpolation_coeffs(b)
    fake[0, 3, 1] = float("inf")
    assert all(math.isnan(v) for v in path_metrics(held, fake, T_END, 0, 1.0).values())


@pytest.mark.slow
def test_floors_are_cached_per_data_and_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("INFGAN_CACHE_DIR", str(tmp_path))
    cfg = tiny()
    ds = build_dataset(cfg.data, 0)
    first = floors_mod.floors(ds, cfg.data, 0, path_level=True)
    assert {
        "val/score_floor",
        "val/disc_floor",
        "val/pred_floor",
        "val/pred_ratio_floor",
        "val/sig_mmd_floor",
        "val/pred_trtr",
    } <= set(first)
    monkeypatch.setattr(floors_mod, "compute_floors", lambda *a, **k: pytest.fail("recomputed"))
    assert floors_mod.floors(ds, cfg.data, 0, path_level=True) == first
    with pytest.raises(pytest.fail.Exception):
        floors_mod.floors(ds, cfg.data, 1, path_level=True)  # another seed is another floor


def test_floor_slices_are_disjoint_real_sets():
    ds = build_dataset(tiny().data, 0)
    held, a, b = real_slices(ds, 0)
    assert a.size(0) == b.size(0) == held.size(0)
    rows = {tuple(r.nan_to_num(-9).flatten().tolist()) for r in ds.train}
    assert all(tuple(r.nan_to_num(-9).flatten().tolist()) in rows for r in torch.cat([a, b]))
    assert not {tuple(r.nan_to_num(-9).flatten().tolist()) for r in a} & {
        tuple(r.nan_to_num(-9).flatten().tolist()) for r in b
    }
    assert compute_floors(ds, 0, path_level=False).keys() == {"val/score_floor"}


class Recording(RunContext):
    """A run context that keeps what the run hands on (to Tune or Ray Train, in a sweep)."""

    def __init__(self) -> None:
        super().__init__(progress=False)
        self.published: list[dict] = []

    def publish(self, run_dir, step, record, payload, keep) -> None:
        if record is not None:
            self.published.append(record)
        super().publish(run_dir, step, record, payload, keep)


@pytest.mark.slow
@pytest.mark.parametrize("when", ["end", "every", "disc"])
def test_a_run_reports_path_metrics_and_floors(tmp_path, when):
    ctx = Recording()
    summary = fit(tiny(f"eval.path_metrics={when}"), tmp_path / "r", ctx)
    records = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert all("val/score_floor" in r and "val/disc_floor" in r for r in records)
    with_disc = [r["step"] for r in records if "val/disc" in r]
    assert with_disc == ([12] if when == "end" else [0, 4, 8, 12])
    # `disc`: val/disc at every evaluation (what a sweep judged by it needs), the others at the end only
    assert [r["step"] for r in records if "val/pred" in r] == ([0, 4, 8, 12] if when == "every" else [12])
    # What a sweep's searcher and scheduler get: every evaluation, step 0 included, with the metric
    # (W&B's hyperband counts a trial's metric history from step 0: its first cut is min_iter reports in).
    assert [r["step"] for r in ctx.published if "val/disc" in r] == with_disc
    assert summary["path_metrics"]["val/disc"] == records[-1]["val/disc"]
    assert summary["floors"] == json.loads((tmp_path / "r" / "data.json").read_text())["floors"]
    assert records[-1]["val/pred_ratio"] == pytest.approx(records[-1]["val/pred"] / summary["floors"]["val/pred_trtr"])
    if when == "end":  # floors stored under an older metric protocol are not reused
        run = RunDir(tmp_path / "r")
        assert run.saved_floors() == summary["floors"]
        data = json.loads(run.data_path.read_text())
        run.data_path.write_text(json.dumps({**data, "floors_version": floors_mod.VERSION - 1}))
        assert run.saved_floors() == {}


def test_too_few_paths_give_nan_not_an_error():
    one = torch.zeros(1, 5, 2)
    assert all(math.isnan(v) for v in path_metrics(one, torch.ones(4, 5, 2), 4.0, 0, 1.0).values())


def test_the_classifier_floor_carries_an_error_bar_that_covers_it_at_small_sizes():
    """At 32 held-out paths two real sets are 'told apart' by noise alone: the floor's standard error
    says so, its error bar reaches 0, and the progress line shows both."""
    from infgan.metrics.discriminative import small_held_out
    from infgan.metrics.floors import compute_floors
    from infgan.objective import with_floor

    cfg = tiny("data.size=256", "data.t_size=16")
    data = build_dataset(cfg.data, cfg.seed)
    found = compute_floors(data, cfg.seed, path_level=True)
    assert compute_floors(data, cfg.seed, path_level=True, threads=2) == found  # side by side: the same values
    floor, se = found["val/disc_floor"], found["val/disc_floor_se"]
    assert se > 0.05 and floor - 2 * se <= 0.0, (floor, se)
    shown = with_floor({"val/disc": 0.3, "val/disc_se": 0.1, **found}, "val/disc")
    assert shown.startswith("0.30 ± 0.10 (floor ") and f"± {se:.2f})" in shown
    assert small_held_out(data.val.size(0)) is not None and small_held_out(1024) is None
