"""The loop: determinism, exact resume, the averaging guard, divergence, the run directory."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import infgan.train.loop as loop
from infgan.cli import main
from infgan.metrics import generate
from infgan.models import Generator
from infgan.schedule import rate_factor
from infgan.train.checkpoint import checkpoints, load_checkpoint
from infgan.train.context import RunContext
from infgan.train.loop import fit
from infgan.train.state import init_state

from conftest import ARTEFACTS, DRAWN, TINY, stops_at, tiny


def quiet():
    return RunContext(progress=False)


def metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def strip_time(records):
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in records]


@pytest.mark.slow
def test_same_seed_same_run_and_other_seed_differs(tmp_path):
    a = fit(tiny(), tmp_path / "a", quiet())
    b = fit(tiny(), tmp_path / "b", quiet())
    c = fit(tiny("seed=1"), tmp_path / "c", quiet())
    assert a["final_score"] == b["final_score"]
    assert strip_time(metrics(tmp_path / "a")) == strip_time(metrics(tmp_path / "b"))
    assert a["final_score"] != c["final_score"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra", [[], ["train.n_critic=2", "loss.kind=wgan_gp"], ["train.lr_schedule=cosine", "train.lr_final=0.2"]]
)
def test_resume_reproduces_the_uninterrupted_run(tmp_path, extra):
    cfg = tiny(*extra)
    full = fit(cfg, tmp_path / "full", quiet())

    with pytest.raises(KeyboardInterrupt):
        fit(cfg, tmp_path / "cut", quiet(), step=stops_at(7))
    assert [p.name for p in checkpoints(tmp_path / "cut" / "checkpoints")] == ["step_000004.pt"]
    resumed = fit(cfg, tmp_path / "cut", quiet(), resume=True)
    assert resumed["final_score"] == full["final_score"] and resumed["best_score"] == full["best_score"]
    assert strip_time(metrics(tmp_path / "cut")) == strip_time(metrics(tmp_path / "full"))
    a, b = load_checkpoint(tmp_path / "full" / "generator.pt"), load_checkpoint(tmp_path / "cut" / "generator.pt")
    assert all(torch.equal(a["generator"][k], b["generator"][k]) for k in a["generator"])


def test_run_shorter_than_averaging_start_returns_trained_not_initial_weights(tmp_path):
    cfg = tiny("train.swa_start=1000")
    fit(cfg, tmp_path / "r", quiet())
    final = load_checkpoint(tmp_path / "r" / "generator.pt")["generator"]
    last = load_checkpoint(checkpoints(tmp_path / "r" / "checkpoints")[-1])
    initial = init_state(cfg, 1, torch.device("cpu")).generator.state_dict()
    assert all(torch.equal(final[k], last["generator"][k]) for k in final)
    assert not all(torch.equal(final[k], initial[k]) for k in final)
    assert int(last["g_avg"]["n_averaged"]) == 0


@pytest.mark.slow
def test_averaged_generator_is_the_one_evaluated_after_averaging_starts(tmp_path):
    fit(tiny("train.swa_start=2"), tmp_path / "r", quiet())
    final = load_checkpoint(tmp_path / "r" / "generator.pt")["generator"]
    last = load_checkpoint(checkpoints(tmp_path / "r" / "checkpoints")[-1])
    assert int(last["g_avg"]["n_averaged"]) == 10
    assert all(torch.equal(final[k], last["g_avg"][f"module.{k}"]) for k in final)


@pytest.mark.parametrize("decay", [0.0, 0.5])
def test_the_average_weighs_steps_equally_or_exponentially(decay):
    state = init_state(tiny(f"train.ema_decay={decay}"), 1, torch.device("cpu"))
    weight = next(state.generator.parameters())
    start = weight.detach().clone()
    for k in range(3):  # the trained weights are start, start + 1, start + 2
        with torch.no_grad():
            weight.copy_(start + k)
        state.update_averages()
    averaged = next(state.g_avg.module.parameters())
    expected = start + (1.0 if decay == 0 else 1.25)  # SWA: mean of 0, 1, 2; EMA: copy 0, then 0.5, then 1.25
    assert torch.allclose(averaged, expected)


@pytest.mark.parametrize("name", ["constant", "linear", "cosine"])
def test_a_schedule_starts_at_the_configured_rate_and_falls_to_its_final_fraction(name):
    factors = [rate_factor(name, step, 9, 0.2) for step in range(9)]
    assert factors[0] == 1.0 and factors[-1] == pytest.approx(1.0 if name == "constant" else 0.2)
    assert all(a >= b for a, b in zip(factors, factors[1:]))
    quarter = {"constant": 1.0, "linear": 0.8, "cosine": 0.2 + 0.4 * (1 + 2**-0.5)}[name]
    assert factors[2] == pytest.approx(quarter)


def test_both_players_train_each_step_at_the_schedules_rate(tmp_path):
    from infgan.train.step import train_step

    cfg = tiny("train.lr_schedule=linear", "train.lr_final=0.5", "train.critic_lr=0.2")
    seen = []

    def step(loss, state, *args, **kwargs):
        seen.append((state.g_opt.param_groups[0]["lr"], state.critic_opt.param_groups[0]["lr"]))
        return train_step(loss, state, *args, **kwargs)

    fit(cfg, tmp_path / "r", quiet(), step=step)
    factors = [1 - 0.5 * s / 11 for s in range(12)]
    assert seen == pytest.approx([(0.046 * f, 0.2 * f) for f in factors])


@pytest.mark.parametrize("learn", [True, False])
def test_observation_noise_scales_train_unless_held(tmp_path, learn):
    fit(tiny("loss.kind=fdm", "model.obs_noise=0.3", f"model.obs_noise_learn={learn}"), tmp_path / "r", quiet())
    scale = torch.nn.functional.softplus(load_checkpoint(tmp_path / "r" / "generator.pt")["generator"]["noise_scale"])
    assert torch.allclose(scale, torch.tensor([0.3])) is not learn


def test_non_finite_loss_stops_the_run_as_diverged(tmp_path, monkeypatch, capsys):
    real_step = loop.train_step
    calls = {"n": 0}

    def nan_at_step_6(*args, **kwargs):
        out = real_step(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 6:
            out["critic_loss"] = torch.tensor(float("nan"))
        return out

    monkeypatch.setattr(loop, "train_step", nan_at_step_6)
    out = tmp_path / "r"
    code = main(["train", "--out", str(out), "--no-progress", *sum((["--set", s] for s in [*TINY, *DRAWN]), [])])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("infgan: error: run diverged at step 6") and "Traceback" not in "".join(err)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["steps"] == 5
    assert [r["step"] for r in metrics(out)] == [0, 4]


def test_run_whose_every_evaluation_is_non_finite_ends_as_diverged(tmp_path, monkeypatch, capsys):
    def nan_metrics(*args, **kwargs):
        return {
            "val/marginal_w1": float("nan"),
            "val/marginal_ks": float("nan"),
            "val/cov_error": float("nan"),
            "val/score": float("nan"),
        }

    monkeypatch.setattr(loop.metrics, "quality_metrics", nan_metrics)
    out = tmp_path / "r"
    code = main(["train", "--out", str(out), "--no-progress", *sum((["--set", s] for s in [*TINY, *DRAWN]), [])])
    assert code == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert err[-1].startswith("infgan: error: run diverged at step 0: the generated paths are not finite")
    assert "Traceback" not in captured.err and len(err) == 1 and captured.out == ""  # one line, nothing above
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["best_score"] is None and summary["steps"] == 0
    assert (out / "generator.pt").is_file() and (out / "plots" / "val_score.png").is_file()


@pytest.mark.slow
def test_existing_run_is_not_overwritten_and_resume_refuses_another_config(tmp_path, capsys):
    out = tmp_path / "r"
    sets = sum((["--set", s] for s in TINY), [])
    assert main(["train", "--out", str(out), "--no-progress", *sets]) == 0
    before = (out / "metrics.jsonl").read_text()
    assert main(["train", "--out", str(out), "--no-progress", *sets]) == 2
    assert main(["train", "--out", str(out), "--resume", "--set", "train.batch_size=16"]) == 2
    assert main(["train", "--out", str(out), "--resume", "--set", "train.steps=8"]) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "differs" in err and "train.batch_size" in err
    assert "may change only train.steps, eval.every, checkpoint.every" in err
    assert "train.steps 8 is below step 12, which the run has already reached" in err
    assert (out / "metrics.jsonl").read_text() == before


@pytest.mark.slow
def test_a_finished_run_extended_with_more_steps_ends_as_one_trained_straight_to_them(tmp_path, capsys):
    sets = sum((["--set", s] for s in TINY), [])
    straight, extended = tmp_path / "straight", tmp_path / "extended"
    assert main(["train", "--out", str(straight), "--no-progress", *sets, "--set", "train.steps=20"]) == 0
    assert main(["train", "--out", str(extended), "--no-progress", *sets]) == 0  # 12 steps, finished
    assert json.loads((extended / "summary.json").read_text())["steps"] == 12
    assert main(["train", "--out", str(extended), "--resume", "--no-progress", "--set", "train.steps=20"]) == 0
    assert strip_time(metrics(extended)) == strip_time(metrics(straight))
    a, b = (json.loads((d / "summary.json").read_text()) for d in (straight, extended))
    assert b["steps"] == 20 and b["final_score"] == a["final_score"] and b["best_score"] == a["best_score"]
    assert b["resumed_from"] == [12]
    ga, gb = (load_checkpoint(d / "generator.pt")["generator"] for d in (straight, extended))
    assert all(torch.equal(ga[k], gb[k]) for k in ga)
    assert "steps: 20" in (extended / "config.yaml").read_text()  # a later plain --resume continues from here
    assert main(["train", "--out", str(extended), "--resume", "--no-progress"]) == 0
    assert strip_time(metrics(extended)) == strip_time(metrics(straight))


@pytest.mark.slow
def test_cli_run_writes_every_artefact_and_sample_writes_data_units(tmp_path):
    out, npz = tmp_path / "run", tmp_path / "s.npz"
    sets = sum((["--set", s] for s in [*TINY, *DRAWN]), [])
    env_cmd = [sys.executable, "-m", "infgan", "train", "--out", str(out), *sets]
    proc = subprocess.run(env_cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "completed: 12 steps" in proc.stdout
    for name in ARTEFACTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert checkpoints(out / "checkpoints")
    records = metrics(out)
    assert [r["step"] for r in records] == [0, 4, 8, 12]
    assert all(
        "val/score" in r and "val/marginal_w1" in r and "val/marginal_ks" in r and "val/cov_error" in r for r in records
    )
    assert all("train/critic_loss" in r and "train/score_real" in r for r in records[1:])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["final_score"] == records[-1]["val/score"]

    assert main(["sample", str(out), "-n", "300", "--out", str(npz)]) == 0
    data = np.load(npz)
    assert data["paths"].shape == (300, 8, 1) and data["t"].shape == (8,)
    # data units: the final generator's normalised output, times the saved std, plus the saved mean
    norm = json.loads((out / "data.json").read_text())
    gen = Generator(1, tiny().model)
    gen.load_state_dict(load_checkpoint(out / "generator.pt")["generator"])
    normalised = generate(gen, torch.tensor(norm["times"]), 300, seed=0)[..., 1:].numpy()
    assert norm["std"][0] != 1.0 and norm["mean"][0] != 0.0
    assert np.allclose(data["paths"], normalised * norm["std"][0] + norm["mean"][0], atol=1e-5)
    assert main(["sample", str(tmp_path / "nothing"), "-n", "3", "--out", str(npz)]) == 2


def test_a_score_blow_up_under_clipped_losses_ends_the_run_as_diverged(tmp_path, capsys):
    """wgan_clip keeps the losses finite while the generator runs away: val/score catches it."""
    sets = [*TINY, "train.steps=40", "loss.kind=wgan_clip", "train.generator_lr=1.0e3", "train.critic_lr=1.0e3"]
    args = sum((["--set", s] for s in sets), [])
    assert main(["train", "--out", str(tmp_path / "r"), "--no-progress", *args]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "times the untrained generator's" in err[0] and "eval.diverge_factor" in err[0]
    assert captured.out == ""
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["steps"] < 40
    # The same run with the check off trains its whole budget: the check, not the losses, ended it.
    off = ["--set", "eval.diverge_factor=0"]
    assert main(["train", "--out", str(tmp_path / "o"), "--no-progress", *args, *off]) == 0
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["steps"] == 40


def test_the_step_reached_is_read_from_both_checkpoint_layouts(tmp_path):
    """Ours (step_N.pt) and Ray Train's (step_N/state.pt): a resumed --workers run has the latter."""
    from infgan.train.run_dir import RunDir

    run = RunDir(tmp_path)
    assert run.reached_step() == 0
    (tmp_path / "checkpoints" / "step_000040").mkdir(parents=True)
    (tmp_path / "checkpoints" / "step_000040" / "state.pt").write_bytes(b"x")
    (tmp_path / "checkpoints" / "step_000020.pt").write_bytes(b"x")
    assert run.reached_step() == 40


def test_the_training_loop_imports_no_plotting_or_scipy_stats_until_it_draws():
    # Every Tune trial and Ray Train worker imports the loop: matplotlib and scipy.stats would add
    # about 0.9 s of CPU to each, and a run with eval.plots=false never needs them.
    heavy = "('matplotlib', 'scipy.stats')"
    code = f"import sys, infgan.train.distributed; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_checkpoint_naming_the_critic_discriminator_still_loads():
    cfg = tiny("loss.kind=wgan_gp")
    saved = init_state(cfg, 1, torch.device("cpu"))
    saved.step = 7
    old_names = {"critic": "discriminator", "critic_opt": "d_opt", "critic_avg": "d_avg"}
    payload = {old_names.get(k, k): v for k, v in saved.state_dict().items()}
    assert "discriminator" in payload and "critic" not in payload
    loaded = init_state(tiny("loss.kind=wgan_gp", "seed=5"), 1, torch.device("cpu"))
    loaded.load_state_dict(payload)
    a, b = loaded.critic.state_dict(), saved.critic.state_dict()
    assert loaded.step == 7 and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(KeyError):  # a part missing under either name is still an error
        loaded.load_state_dict({k: v for k, v in payload.items() if k != "discriminator"})
