"""W&B's sweep engine as infgan's searcher and scheduler, without Ray running: proposals inside the
sweep file's distributions, seeds, hyperband's decisions and their record, and the hyperband band
that matches ASHA's grace period. The end-to-end resume is in test_tune.py."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from infgan.cli import main
from infgan.tune.space import parse_space
from infgan.tune.wandb_file import sweep_config

pytest.importorskip("sweeps")
pytest.importorskip("ray")

from infgan.tune.wandb_engine import WandbHyperband, WandbSearch, engine_config

SPACE = {
    "budget": {"steps": 120, "eval_every": 20},
    "asha": {"grace_period": 40, "reduction_factor": 3},
    "parameters": {
        "train.generator_lr": {"type": "loguniform", "low": 1.0e-3, "high": 1.0e-1},
        "train.swa_start": {"type": "int", "low": 10, "high": 100},
        "model.hidden_size": {"type": "int", "low": 4, "high": 64, "log": True},
        "model.initial_scale": {"type": "uniform", "low": 0.5, "high": 2.0},
        "loss.kind": {"type": "choice", "values": ["gan", "wgan_clip", "wgan_gp"]},
        "loss.gp_weight": {"type": "uniform", "low": 1.0, "high": 20.0, "when": {"loss.kind": "wgan_gp"}},
    },
}


def space(**changes):
    return parse_space({**SPACE, **changes}, "space.yaml")


def objective(config: dict) -> float:
    """A made-up score that prefers a generator rate near 1e-2."""
    return abs(config["train.generator_lr"] - 1e-2) * 100 + 0.1


def run_searcher(method: str, seed: int, trials: int = 8) -> list[dict]:
    sp = space(seed=seed)
    searcher = WandbSearch(engine_config(sweep_config(sp, method)), sp)
    proposals = []
    for i in range(trials):
        config = searcher.suggest(f"t{i}")
        proposals.append(config)
        for step in (0, 20, 40):
            searcher.on_trial_result(f"t{i}", {"step": step, "val/score": objective(config) + 1 / (1 + step)})
        searcher.on_trial_complete(f"t{i}", {"step": 40, "val/score": objective(config)})
    return proposals


@pytest.mark.parametrize("method", ["bayes", "random"])
def test_proposals_lie_inside_every_distribution_of_the_sweep_file(method):
    params = {p.path: p for p in space().params}
    for config in run_searcher(method, seed=0):
        # Every parameter in every run, as the sweep file says: W&B has no conditions.
        assert set(config) == set(params)
        for path, value in config.items():
            p = params[path]
            if p.type == "choice":
                assert value in p.values and type(value) is type(p.values[0])
            elif p.type == "int":
                assert type(value) is int and p.low <= value <= p.high
            else:
                assert type(value) is float and p.low <= value <= p.high


def test_the_infgan_config_of_a_proposal_is_valid():
    sp = space()
    config = WandbSearch(engine_config(sweep_config(sp, "bayes")), sp).suggest("t0")
    cfg = sp.trial_config(config)
    assert cfg.train.generator_lr == config["train.generator_lr"] and cfg.loss.kind == config["loss.kind"]


@pytest.mark.parametrize("method", ["bayes", "random"])
def test_a_seed_reproduces_the_proposals_and_leaves_global_generators_alone(method):
    random.seed(123)
    expected = random.random()
    random.seed(123)
    first = run_searcher(method, seed=3, trials=5)
    assert random.random() == expected  # the engine's draws did not move the caller's generator
    assert run_searcher(method, seed=3, trials=5) == first
    assert run_searcher(method, seed=4, trials=5) != first


def test_bayes_search_learns_from_finished_trials():
    """After random start-up, W&B's GP proposes generator rates nearer the made-up optimum."""
    proposals = run_searcher("bayes", seed=0, trials=14)
    late = sorted(abs(c["train.generator_lr"] - 1e-2) for c in proposals[-4:])
    assert late[0] < 3e-3


def trial(name: str, config: dict | None = None) -> SimpleNamespace:
    return SimpleNamespace(trial_id=name, config=config or {})


def test_the_first_points_go_first_and_the_engine_fills_what_they_leave_out(tmp_path):
    sp = space(
        base={"overrides": {"train": {"generator_lr": 0.05}, "loss": {"kind": "wgan_gp"}}},
        points=[{"model.initial_scale": 1.5}],
    )
    first = sp.first_points()
    searcher = WandbSearch(engine_config(sweep_config(sp, "bayes")), sp, first)
    proposals = [searcher.suggest("t0")]
    searcher.save(str(tmp_path / "searcher.pkl"))  # a driver killed here: the next point is not lost
    resumed = WandbSearch(engine_config(sweep_config(sp, "bayes")), sp)
    resumed.restore(str(tmp_path / "searcher.pkl"))
    proposals += [resumed.suggest("t1"), resumed.suggest("t2")]
    for point, got in zip(first, proposals):
        assert {k: got[k] for k in point} == point
        assert set(got) == {p.path for p in sp.params}  # the engine filled the rest
    assert first[0]["train.generator_lr"] == 0.05 and first[1]["model.initial_scale"] == 1.5
    assert proposals[2]["train.generator_lr"] != 0.05  # then the engine's own proposals


def test_hyperband_stops_a_hopeless_trial_and_keeps_a_good_one(tmp_path):
    sp = space()
    state = tmp_path / "hyperband_state.json"
    hb = WandbHyperband(engine_config(sweep_config(sp)), sp, str(state))
    # Three trials set the band thresholds at step 40 (report 2 = min_iter); b and c, weaker than
    # a at that band, are stopped there already, as W&B would.
    for name, values in {"a": [5.0, 2.0, 1.0], "b": [5.0, 3.0, 2.0], "c": [5.0, 4.0, 3.0]}.items():
        hb.on_trial_add(None, trial(name))
        for step, v in zip((0, 20, 40), values):
            hb.on_trial_result(None, trial(name), {"step": step, "val/score": v})
        hb.on_trial_complete(None, trial(name), {"step": 120, "val/score": values[-1]})
    hb.on_trial_add(None, trial("bad"))
    hb.on_trial_add(None, trial("good"))
    actions = {}
    for name, values in {"bad": [50.0, 40.0, 30.0], "good": [5.0, 1.5, 0.5]}.items():
        for step, v in zip((0, 20, 40), values):
            actions[name, step] = hb.on_trial_result(None, trial(name), {"step": step, "val/score": v})
    assert actions["bad", 20] == "CONTINUE"  # before the first band nothing is judged
    assert actions["bad", 40] == "STOP" and actions["good", 40] == "CONTINUE"
    # The record survives a driver restart (Tuner.restore does not restore schedulers).
    again = WandbHyperband(engine_config(sweep_config(sp)), sp, str(state))
    again._ensure_loaded()
    assert again.stopped[-1] == "bad" and "good" not in again.stopped and "a" not in again.stopped
    assert again.runs.history["good"] == {0: 5.0, 20: 1.5, 40: 0.5}
    assert json.loads(state.read_text())["state"]["bad"] == "finished"


def test_hyperband_band_one_is_the_asha_grace_period():
    """W&B indexes a run's reports from 0; infgan reports at step 0 and every eval_every steps."""
    sp = space()
    min_iter = sweep_config(sp)["early_terminate"]["min_iter"]
    report_steps = list(range(0, sp.steps + 1, sp.eval_every))
    assert report_steps[min_iter] == sp.grace_period


def test_a_missing_engine_is_one_line_and_exit_2_before_ray(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sweeps", None)  # import sweeps now raises ImportError
    code = main(["tune", "--searcher", "wandb-bayes", "--name", "x", "--storage", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "pip install 'sweeps>=0.2'" in err and len(err.splitlines()) == 1
    assert not Path(tmp_path / "x").exists()  # nothing was started or written


def test_nothing_imports_sweeps_or_wandb_unless_asked(tmp_path):
    code = f"""
import dataclasses
import sys
from pathlib import Path
from infgan.cli import main
from infgan.tune.run import space_record
from infgan.tune.schedulers import make_scheduler
from infgan.tune.searchers import make_searcher
from infgan.tune.space import load_space
from infgan.tune.wandb_file import sweep_config
sp = dataclasses.replace(load_space(None), searcher="tpe", scheduler="asha")  # Optuna's and Ray's
make_searcher(sp, Path({str(tmp_path)!r}), True, None)
make_scheduler(sp, Path({str(tmp_path)!r}), None)
sweep_config(sp)
print(sorted(m for m in ("sweeps", "wandb") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
