"""The loss kinds without a critic: the signature-kernel score and finite-dimensional matching, their
estimators against direct computations, and the config refusing critic settings for them."""

from __future__ import annotations

import json

import pytest
import torch

from infgan.config import ConfigError, resolve
from infgan.data import build_dataset
from infgan.data.dataset import Batch, interpolation_coeffs
from infgan.train import losses
from infgan.train.context import Shard
from infgan.train.losses.partners import draw_partners
from infgan.train.losses.sig_kernel import SignatureScore, channel_spread

from conftest import stops_at, tiny


def paths(n: int, t: int, seed: int, vol: float = 1.0) -> torch.Tensor:
    """Random walks (n, t, 1 + 1) with time as channel 0, float64."""
    g = torch.Generator().manual_seed(seed)
    values = (torch.randn(n, t, 1, generator=g, dtype=torch.float64) * vol).cumsum(1)
    times = torch.arange(t, dtype=torch.float64).view(1, t, 1).expand(n, t, 1)
    return torch.cat([times, values], dim=-1)


def score_config(*sets: str):
    return resolve(sets=["loss.kind=sig_score", *sets]).loss


def direct_score(fake: torch.Tensor, real: torch.Tensor, kernel: SignatureScore) -> torch.Tensor:
    """The expected signature kernel score, pair by pair, from pysiglib's single-pair kernel."""
    import pysiglib
    from pysiglib.torch_api import sig_kernel

    index = torch.arange(fake.size(1))
    spread = channel_spread(real)
    x = kernel.inputs(fake, index, float(fake[0, -1, 0].detach()), spread)
    y = kernel.inputs(real, index, float(fake[0, -1, 0].detach()), spread)
    rbf = pysiglib.RBFKernel(kernel.cfg.sig_sigma)

    def k(a, b):
        return sig_kernel(a, b, dyadic_order=kernel.cfg.sig_dyadic_order, static_kernel=rbf)

    m, n = x.size(0), y.size(0)
    same = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    cross = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return (same - 2 * cross).reshape(())


def test_signature_score_and_its_gradient_match_a_direct_computation():
    cfg = score_config("loss.sig_points=0", "loss.sig_dyadic_order=1", "loss.sig_partners=0")
    kernel = SignatureScore(cfg)
    fake = paths(5, 6, 0, vol=0.7).requires_grad_(True)
    real = paths(4, 6, 1)
    got = kernel(fake, Batch(real), Shard(), seed=0)
    (g_got,) = torch.autograd.grad(got, fake)
    want = direct_score(fake, real, kernel)
    (g_want,) = torch.autograd.grad(want, fake)
    assert torch.allclose(got, want, rtol=1e-9, atol=1e-12)
    assert torch.allclose(g_got, g_want, rtol=1e-7, atol=1e-10)
    assert g_got[..., 1:].abs().sum() > 0  # the values get a gradient


def test_signature_score_gradient_is_the_derivative_of_its_value():
    kernel = SignatureScore(score_config("loss.sig_points=0"))
    real = paths(4, 5, 1)
    values = paths(4, 5, 0)[..., 1:].clone().requires_grad_(True)

    def f(v):
        return kernel(torch.cat([real[..., :1], v], dim=-1), Batch(real), Shard(), seed=0)

    assert torch.autograd.gradcheck(f, (values,), eps=1e-6, atol=1e-5)


def test_signature_score_with_partners_scores_each_path_against_its_drawn_partners_only():
    """With K partners the score is each generated path's kernel against its K drawn generated and K
    drawn real partners (never itself), and its gradient that of this sum."""
    from pysiglib.torch_api import sig_kernel

    kernel = SignatureScore(score_config("loss.sig_points=0", "loss.sig_partners=3"))
    fake = paths(5, 6, 0, vol=0.7).requires_grad_(True)
    real = paths(7, 6, 1)
    got = kernel(fake, Batch(real), Shard(), seed=4)
    others, chosen = draw_partners(5, 7, 3, 1, torch.Generator().manual_seed(4))
    assert not (others == torch.arange(5).view(1, 5, 1)).any()  # never itself
    index, spread = torch.arange(6), channel_spread(real)
    x, y = (kernel.inputs(p, index, 5.0, spread) for p in (fake, real))
    rbf = kernel._static_kernel(1)
    want = torch.zeros((), dtype=torch.float64)
    for i in range(5):
        for j in range(3):
            want = want + sig_kernel(x[i], x[int(others[0, i, j])], dyadic_order=0, static_kernel=rbf) / 15
            want = want - 2 * sig_kernel(x[i], y[int(chosen[0, i, j])], dyadic_order=0, static_kernel=rbf) / 15
    assert torch.allclose(got, want.reshape(()), rtol=1e-9), (got, want)
    (g_got,) = torch.autograd.grad(got, fake)
    (g_want,) = torch.autograd.grad(want, fake)
    assert torch.allclose(g_got, g_want, rtol=1e-7, atol=1e-10)


def test_signature_score_with_partners_is_unbiased_for_the_score_over_every_pair():
    """Averaged over many steps' draws, the score with 3 partners is the score against every path."""
    full, sparse = (SignatureScore(score_config("loss.sig_points=4", f"loss.sig_partners={k}")) for k in (0, 3))
    fake, real = paths(10, 9, 2), paths(12, 9, 3)
    with torch.no_grad():
        want = torch.stack([full(fake, Batch(real), Shard(), seed) for seed in range(300)])
        got = torch.stack([sparse(fake, Batch(real), Shard(), seed) for seed in range(300)])
    # Same time points for a seed: the differences are the partner draw's noise alone.
    diff = got - want
    assert diff.abs().max() > 0
    assert diff.mean().abs() < 4 * diff.std() / 300**0.5, (diff.mean(), diff.std())


def test_fakes_take_the_gaps_of_their_real_pairs():
    """With real entries missing, a generated path paired with a real one is filled as that real one was."""
    kernel = SignatureScore(score_config("loss.sig_points=0"))
    real = paths(3, 6, 1)
    observed = torch.ones(3, 6, 1, dtype=torch.bool)
    observed[:, 2:4] = False
    gappy = real.clone()
    gappy[:, 2:4, 1:] = float("nan")
    coeffs = interpolation_coeffs(gappy)
    fake = paths(3, 6, 2)
    filled = interpolation_coeffs(torch.where(observed.expand(-1, -1, 1).repeat(1, 1, 1), fake[..., 1:], float("nan")))
    manual = torch.cat([fake[..., :1], filled], dim=-1)
    with_gaps = kernel(fake, Batch(coeffs, None, observed), Shard(), seed=0)
    as_filled = kernel(manual, Batch(coeffs), Shard(), seed=0)
    assert torch.allclose(with_gaps, as_filled)
    assert not torch.allclose(with_gaps, kernel(fake, Batch(coeffs), Shard(), seed=0))


def direct_fdm(fake: torch.Tensor, real: torch.Tensor, cfg, times: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """fdm's loss point by point: for each pair of times (s, t), (X_0, X_s, X_t - X_s) standardised by
    the real points' spreads (for each triple (s, t, u), (X_0, X_s, X_t - X_s, X_u - X_t)), the kernel
    of every two generated points (i != j) less twice that of every generated and real one, averaged."""
    total = torch.zeros((), dtype=fake.dtype)
    floor = cfg.fdm_floor * real[..., 1:].reshape(-1, real.size(-1) - 1).std(dim=0).repeat(len(times) + 1)

    def point(p, i, at):
        steps = [p[i, b, 1:] - p[i, a, 1:] for a, b in zip(at, at[1:])]
        return torch.cat([p[i, 0, 1:], p[i, at[0], 1:], *steps])

    draws = list(zip(*(x.tolist() for x in times), strict=True))
    for at in draws:
        ys = torch.stack([point(real, j, at) for j in range(real.size(0))])
        scale = cfg.sig_scale / torch.maximum(ys.std(dim=0), floor)
        xs = [point(fake, i, at) * scale for i in range(fake.size(0))]
        ys = [y * scale for y in ys]

        def k(u, v):
            d = (u - v).square().sum()
            if cfg.fdm_kernel == "energy":
                return -torch.sqrt(d + 1e-12)
            return torch.exp(-d / (cfg.sig_sigma * (real.size(-1) - 1)))

        m, n = len(xs), len(ys)
        same = sum(k(xs[i], xs[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        total = total + same - 2 * sum(k(x, y) for x in xs for y in ys) / (m * n)
    return total / len(draws)


@pytest.mark.parametrize(
    "sets",
    [
        [],
        ["loss.fdm_kernel=energy"],
        ["loss.sig_scale=0.7", "loss.sig_sigma=2"],
        ["loss.fdm_floor=0.9"],
        ["loss.fdm_times=3", "loss.fdm_kernel=energy"],
    ],
)
def test_fdm_loss_and_its_gradient_match_a_direct_computation(sets):
    cfg = resolve(sets=["loss.fdm_pairs=5", "loss.fdm_partners=0", *sets]).loss
    loss = losses.build(cfg)
    g = torch.Generator().manual_seed(0)
    fake = torch.cat([paths(6, 7, 0)[..., :1], torch.randn(6, 7, 2, generator=g, dtype=torch.float64)], -1)
    fake.requires_grad_(True)
    real = paths(9, 7, 1)
    real = torch.cat([real, real[..., 1:] * 0.5 + 0.1 * torch.randn(9, 7, 1, generator=g, dtype=torch.float64)], -1)
    got = loss.objective(fake, Batch(real), Shard(), seed=3)
    want = direct_fdm(fake, real, cfg, loss.times(7, 3))
    (g_got,) = torch.autograd.grad(got, fake)
    (g_want,) = torch.autograd.grad(want, fake)
    assert torch.allclose(got, want, rtol=1e-9, atol=1e-12), (got, want)
    assert torch.allclose(g_got, g_want, rtol=1e-7, atol=1e-10)
    assert g_got[..., 1:].abs().sum() > 0
    if cfg.fdm_floor != 0.1:  # the floor binds on some coordinates here: the loss is not the default's
        default = losses.build(resolve(sets=["loss.fdm_pairs=5", "loss.fdm_partners=0"]).loss)
        assert not torch.allclose(got, default.objective(fake, Batch(real), Shard(), seed=3))


@pytest.mark.slow  # about 5 s: 500 points against 500 at every pair, 16 times
def test_fdm_triples_tell_apart_what_agrees_at_every_pair_of_times():
    """Two processes with the same law at every pair of times (X_1, X_2 independent signs; X_3 a third
    independent sign, or their product): fdm on pairs scores both alike against the first, on triples
    (loss.fdm_times 3) the product is clearly worse. Triples are ordered and inside the series."""
    g = torch.Generator().manual_seed(0)

    def signs(n, product):
        x = torch.randint(0, 2, (n, 3), generator=g).double() * 2 - 1
        if product:
            x[:, 2] = x[:, 0] * x[:, 1]
        values = torch.cat([torch.zeros(n, 1, dtype=torch.float64), x], dim=1)  # X_0 = 0
        return torch.stack([torch.arange(4.0, dtype=torch.float64).expand(n, 4), values], dim=-1)

    real, independent, product = signs(500, False), signs(500, False), signs(500, True)
    gap = {}
    for times in (2, 3):
        sets = [f"loss.fdm_times={times}", "loss.fdm_pairs=16", "loss.fdm_partners=0", "loss.fdm_kernel=energy"]
        loss = losses.build(resolve(sets=sets).loss)
        with torch.no_grad():
            score = {
                name: torch.stack([loss.objective(fake, Batch(real), Shard(), seed) for seed in range(8)]).mean()
                for name, fake in (("independent", independent), ("product", product))
            }
        gap[times] = float(score["product"] - score["independent"])
        drawn = loss.times(24, 1)
        assert len(drawn) == times and (drawn[0] >= 0).all() and (drawn[-1] <= 23).all()
        assert all((a < b).all() for a, b in zip(drawn, drawn[1:]))
    assert gap[3] > 0.01 and abs(gap[2]) < gap[3] / 2.5, gap
    with pytest.raises(ConfigError, match="fdm_times"):
        resolve(sets=["loss.fdm_times=3", "data.t_size=2"])


@pytest.mark.parametrize("m, n", [(6, 9), (30, 40)])  # a few points: distances from products; more: gathered
def test_fdm_with_partners_scores_each_point_against_its_drawn_partners_only(m, n):
    """With K partners the loss is each generated point's kernel against its K drawn generated and
    K drawn real partners (never itself), and its gradient that of this sum."""
    cfg = resolve(sets=["loss.fdm_pairs=3", "loss.fdm_partners=4", "loss.fdm_kernel=energy"]).loss
    loss = losses.build(cfg)
    g = torch.Generator().manual_seed(0)
    fake = torch.cat([paths(m, 7, 0)[..., :1], torch.randn(m, 7, 1, generator=g, dtype=torch.float64)], -1)
    fake.requires_grad_(True)
    real = paths(n, 7, 1)
    got = loss.objective(fake, Batch(real), Shard(), seed=5)
    draw = torch.Generator().manual_seed(5)
    s, t = loss.times(7, draw)
    others, chosen = draw_partners(m, n, 4, 3, draw)
    assert not (others == torch.arange(m).view(1, m, 1)).any()  # never itself
    want = torch.zeros((), dtype=torch.float64)
    floor = cfg.fdm_floor * real[..., 1:].reshape(-1, 1).std(dim=0).repeat(3)
    for p, (a, b) in enumerate(zip(s.tolist(), t.tolist(), strict=True)):

        def point(x, i, a=a, b=b):
            return torch.cat([x[i, 0, 1:], x[i, a, 1:], x[i, b, 1:] - x[i, a, 1:]])

        ys = torch.stack([point(real, j) for j in range(n)])
        scale = 1.0 / torch.maximum(ys.std(dim=0), floor)
        for i in range(m):
            x = point(fake, i) * scale
            for k in range(4):
                want = want - (x - point(fake, int(others[p, i, k])) * scale).norm() / (m * 4)
                want = want + 2 * (x - ys[int(chosen[p, i, k])] * scale).norm() / (m * 4)
    want = want / 3
    assert torch.allclose(got, want, rtol=1e-9), (got, want)
    (g_got,) = torch.autograd.grad(got, fake)
    (g_want,) = torch.autograd.grad(want, fake)
    assert torch.allclose(g_got, g_want, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("kernel", ["rbf", "energy"])
def test_fdm_with_partners_is_unbiased_for_the_loss_over_every_pair(kernel):
    """Averaged over many steps' draws, the loss with 3 partners is the loss against every point."""
    sets = ["loss.fdm_pairs=4", f"loss.fdm_kernel={kernel}"]
    full, sparse = (losses.build(resolve(sets=[*sets, f"loss.fdm_partners={k}"]).loss) for k in (0, 3))
    fake, real = paths(12, 9, 2), paths(15, 9, 3)
    with torch.no_grad():
        want = torch.stack([full.objective(fake, Batch(real), Shard(), seed) for seed in range(400)])
        got = torch.stack([sparse.objective(fake, Batch(real), Shard(), seed) for seed in range(400)])
    # Same pairs of times for a seed: the differences are the partner draw's noise alone.
    diff = got - want
    assert diff.abs().max() > 0
    assert diff.mean().abs() < 4 * diff.std() / 20, (diff.mean(), diff.std())


SETTINGS = {"sig_score": ["data.t_size=64", "loss.sig_partners=0"], "fdm": ["data.t_size=16"]}


@pytest.mark.parametrize("kind", ["sig_score", "fdm"])
def test_scores_are_near_zero_between_real_sets_and_clearly_above_for_shuffled_increments(kind):
    """The expected score of a sample against real paths, less that of a second real sample: an
    estimate of the squared MMD to the data, near 0 for real samples, well above for real paths whose
    increments are shuffled in time (same increments, wrong order)."""
    cfg = tiny("data.size=2048", "data.missing_rate=0", f"loss.kind={kind}", *SETTINGS[kind])
    train = build_dataset(cfg.data, cfg.seed).train
    loss = losses.build(cfg.loss)
    score = loss.score if kind == "sig_score" else loss.objective
    ref, baseline = train[:600], train[600:900]

    with torch.no_grad():
        offset = float(score(baseline, Batch(ref), Shard(), 0))

    def mmd(sample):
        with torch.no_grad():
            return float(score(sample, Batch(ref), Shard(), 0)) - offset

    real_gaps = [abs(mmd(train[i : i + 300])) for i in (900, 1200, 1490)]
    sample = train[900:1200]
    g = torch.Generator().manual_seed(0)
    increments = torch.diff(sample[..., 1:], dim=1)
    shuffled = sample.clone()
    shuffled[:, 1:, 1:] = sample[:, :1, 1:] + increments[:, torch.randperm(increments.size(1), generator=g)].cumsum(1)
    gap = mmd(shuffled)
    # The estimate is noisy (kernel values are heavy-tailed): clearly above every real draw, and far
    # above a typical one.
    assert gap > 2 * max(real_gaps) and gap > 5 * sorted(real_gaps)[1], (gap, real_gaps)


def test_critic_settings_are_refused_for_a_loss_without_a_critic():
    for key in ("train.n_critic=2", "train.critic_lr=0.1", "loss.sig_weight=1", "loss.gp_weight=3"):
        with pytest.raises(ConfigError, match=f"'{key.split('=')[0]}' is a critic setting.*trains no critic"):
            resolve(sets=["loss.kind=sig_score", key])
    resolve(sets=["loss.kind=gan", "loss.sig_weight=1", "train.n_critic=2"])  # fine beside a critic
    with pytest.raises(ConfigError, match="sig_points"):
        resolve(sets=["loss.kind=sig_score", "loss.sig_points=1"])


def test_a_shipped_presets_critic_settings_give_way_to_a_kind_without_a_critic(tmp_path):
    for preset in ("reference", "seed"):
        cfg = resolve(source=preset, sets=["loss.kind=fdm"])
        assert cfg.loss.kind == "fdm" and cfg.train.n_critic == 1  # the preset's critic settings left out
        assert cfg.train.batch_size == resolve(source=preset).train.batch_size  # the rest of the preset kept
    with pytest.raises(ConfigError, match="'train.n_critic' is a critic setting"):
        resolve(source="reference", sets=["loss.kind=fdm", "train.n_critic=2"])  # written by the user
    (tmp_path / "mine.yaml").write_text("loss: {kind: fdm}\ntrain: {n_critic: 5}\n")
    with pytest.raises(ConfigError, match="'train.n_critic' is a critic setting"):
        resolve(source=str(tmp_path / "mine.yaml"))  # a user's own file still says what it means


def test_a_saved_sig_score_config_loads_back(tmp_path):
    from infgan.config import save_config

    cfg = resolve(sets=["loss.kind=sig_score", "loss.sig_sigma=0.5"])
    save_config(cfg, tmp_path / "c.yaml")
    assert "critic_lr" not in (tmp_path / "c.yaml").read_text()
    assert resolve(source=str(tmp_path / "c.yaml")) == cfg


def test_the_registry_names_each_kind_once_and_says_which_need_a_critic():
    assert {k for k in losses.LOSS_KINDS if losses.needs_critic(k)} == {"gan", "wgan_clip", "wgan_gp", "fdm_gan"}
    for kind in losses.LOSS_KINDS:  # the table's word agrees with each class's own
        assert losses.loss_class(kind).critic == losses.needs_critic(kind), kind
    assert not losses.needs_critic("sig_score") and not losses.needs_critic("fdm")
    with pytest.raises(ValueError, match="unknown loss kind"):
        losses.loss_class("nope")


def test_a_critic_setting_searched_under_a_kind_without_a_critic_is_refused(tmp_path):
    from infgan.tune.space import parse_space

    params = {
        "loss.kind": {"type": "choice", "values": ["gan", "sig_score"]},
        "train.critic_lr": {"type": "loguniform", "low": 0.01, "high": 0.1},
    }
    with pytest.raises(ConfigError, match=r"train.critic_lr: a critic setting.*when: \{loss.kind: \[gan\]\}"):
        parse_space({"parameters": params}, "s")
    params["train.critic_lr"]["when"] = {"loss.kind": "gan"}
    parse_space({"parameters": params}, "s")  # conditioned on the kind with a critic: fine
    with pytest.raises(ConfigError, match="remove it"):
        parse_space(
            {
                "base": {"overrides": {"loss": {"kind": "fdm"}}},
                "parameters": {"loss.sig_weight": {"type": "uniform", "low": 0.0, "high": 1.0}},
            },
            "s",
        )
    with pytest.raises(ConfigError, match="'train.n_critic' is a critic setting"):
        parse_space(
            {
                "base": {"overrides": {"loss": {"kind": "fdm"}, "train": {"n_critic": 2}}},
                "parameters": {"loss.sig_sigma": {"type": "uniform", "low": 0.5, "high": 1.0}},
            },
            "s",
        )


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sig_score", "fdm"])
def test_a_tiny_run_without_a_critic_learns_and_resumes_exactly(tmp_path, kind):
    """val/score falls at least half of the way to its floor; killed and resumed, it ends as the unbroken run."""
    from infgan.train.context import RunContext
    from infgan.train.loop import fit

    cfg = tiny(
        f"loss.kind={kind}",
        "train.steps=60",
        "train.swa_start=30",
        "eval.every=20",
        "checkpoint.every=20",
        "train.generator_lr=1.0",
        "data.size=1024",
    )
    full = fit(cfg, tmp_path / "full", RunContext(progress=False))
    records = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert full["status"] == "completed"
    floor = records[0]["val/score_floor"]  # what two real sets of this small size differ by
    assert records[-1]["val/score"] - floor <= 0.5 * (records[0]["val/score"] - floor), [
        r["val/score"] for r in records
    ]
    assert "critic" not in torch.load(tmp_path / "full" / "checkpoints" / "step_000060.pt", weights_only=False)

    with pytest.raises(KeyboardInterrupt):
        fit(cfg, tmp_path / "cut", RunContext(progress=False), step=stops_at(30))
    resumed = fit(cfg, tmp_path / "cut", RunContext(progress=False), resume=True)
    assert resumed["final_score"] == full["final_score"] and resumed["resumed_from"] == [20]
    a = torch.load(tmp_path / "full" / "generator.pt", weights_only=False)["generator"]
    b = torch.load(tmp_path / "cut" / "generator.pt", weights_only=False)["generator"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_score_ranks_by_the_kernel_score_without_a_critic(tmp_path):
    """`infgan score` on a run trained without a critic: held-out paths with a jump rank above clean ones."""
    import csv

    import numpy as np
    from test_artefacts import with_anomalies

    from infgan.cli import main
    from infgan.train.context import RunContext
    from infgan.train.loop import fit

    sets = ["loss.kind=fdm", "data.t_size=32", "data.size=512", "train.steps=40", "eval.every=40"]
    fit(tiny(*sets), tmp_path / "run", RunContext(progress=False))
    k = with_anomalies(tmp_path / "run", tmp_path / "a.npz")
    out = tmp_path / "s.csv"
    assert main(["score", str(tmp_path / "run"), "--data", str(tmp_path / "a.npz"), "--out", str(out)]) == 0
    rank = {int(r["series"].rsplit(" ", 1)[-1]): int(r["rank"]) for r in csv.DictReader(out.open())}
    assert np.median([rank[i] for i in range(k, 2 * k)]) < np.median([rank[i] for i in range(k)])


def test_signature_score_hands_pysiglib_no_view_to_copy(monkeypatch):
    """Forward and backward give pysiglib contiguous arrays of their own: its once-a-process warning
    about copying a view would otherwise be printed in every trial's log (a sum's gradient is a view)."""
    import warnings

    from pysiglib import param_checks

    monkeypatch.setattr(param_checks, "WARNED_ONCE_ABOUT_MEMORY", False)
    for k in (0, 3):
        kernel = SignatureScore(score_config("loss.sig_points=0", f"loss.sig_partners={k}"))
        fake = paths(5, 6, 0, vol=0.7).requires_grad_(True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            kernel(fake, Batch(paths(7, 6, 1)), Shard(), seed=4).backward()
        assert fake.grad is not None and bool(torch.isfinite(fake.grad).all())
