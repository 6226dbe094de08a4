"""W&B tracking (offline, no key), the W&B sweep file, a W&B agent's `infgan train`, and wandb as an optional import."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infgan.cli import main
from infgan.config import flatten, resolve, to_dict
from infgan.tune.space import load_space
from infgan.tune.wandb_file import sweep_config
from infgan.wandb.tracking import wandb_mode

from conftest import DRAWN, TINY, set_args

pytest.importorskip("wandb")
from infgan.commands.compare import read_wandb_run

REPO = Path(__file__).resolve().parents[1]


def offline_runs(root: Path) -> list[dict]:
    return [read_wandb_run(p.parent) for p in sorted(root.rglob("*.wandb"))]


def same(a, b) -> bool:
    """Equal as W&B stores them (JSON: 1.0 comes back as 1, tuples as lists)."""
    return json.loads(json.dumps(a)) == json.loads(json.dumps(b))


@pytest.mark.slow
def test_offline_run_holds_config_metrics_plots_and_best_values(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--wandb", "offline", "--no-progress", *set_args([*TINY, *DRAWN])]) == 0
    (run,) = offline_runs(out / "wandb")
    assert same(run["config"], to_dict(resolve(sets=[*TINY, *DRAWN])))  # the keys of a config file
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    logged = [h for h in run["history"] if "val/score" in h]
    assert [h["step"] for h in logged] == [r["step"] for r in records] == [0, 4, 8, 12]
    assert [h["val/score"] for h in logged] == pytest.approx([r["val/score"] for r in records])
    assert any("train/critic_loss" in h for h in logged)
    summary = json.loads((out / "summary.json").read_text())
    assert run["summary"]["best/val/score"] == pytest.approx(summary["best_score"])
    assert run["summary"]["plots/samples._type"] == "image-file"
    assert list((out / "wandb").rglob("media/images/plots/samples_*.png"))
    assert run["summary"]["plots/samples_animation._type"] == "video-file"
    assert list((out / "wandb").rglob("media/videos/plots/samples_animation_*.gif"))
    # A resumed run continues the same W&B run id.
    assert run["id"] == (out / "wandb_run_id").read_text().strip()


def test_mode_comes_from_the_flag_then_wandb_mode(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode(None) == "off" and wandb_mode("offline") == "offline"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wandb_mode(None) == "offline"
    monkeypatch.delenv("WANDB_MODE")
    assert wandb_mode(None) == "off"


def test_online_without_a_key_is_one_line(tmp_path, monkeypatch, capsys):
    for var in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    assert main(["train", "--out", str(tmp_path / "r"), "--wandb", "online", *set_args(TINY)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "wandb login" in err and "WANDB_API_KEY" in err
    assert not (tmp_path / "r").exists()
    # A netrc entry for W&B's host counts as a key.
    (tmp_path / "netrc").write_text("machine api.wandb.ai login user password " + "k" * 40 + "\n")
    os.chmod(tmp_path / "netrc", 0o600)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    from infgan.wandb.tracking import has_api_key

    assert has_api_key()


@pytest.mark.slow
def test_wandb_is_optional(tmp_path):
    code = f"""
import sys
sys.modules["wandb"] = None  # as if not installed
import infgan, infgan.train.loop, infgan.cli
assert "wandb" not in [m for m in sys.modules if sys.modules[m] is not None]
from infgan.cli import main
assert main(["train", "--out", {str(tmp_path / "off")!r}, "--wandb", "off", "--no-progress", *{set_args(TINY)!r}]) == 0
assert main(["train", "--out", {str(tmp_path / "on")!r}, "--wandb", "offline", *{set_args(TINY)!r}]) == 2
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'infgan[wandb]'" in proc.stderr


def test_sweep_file_has_every_parameter_with_its_distribution(tmp_path):
    out = tmp_path / "sweep.yaml"
    assert main(["wandb-sweep", str(REPO / "search_spaces" / "ou.yaml"), "-o", str(out), "--method", "random"]) == 0
    sweep = yaml.safe_load(out.read_text())
    space = load_space(str(REPO / "search_spaces" / "ou.yaml"))
    goal = {"min": "minimize", "max": "maximize"}[space.mode]
    assert sweep["method"] == "random" and sweep["metric"] == {"name": space.metric, "goal": goal}
    # The default space's hyperband (its first cut at the first evaluation); none without a scheduler.
    first_cut = space.grace_period // space.eval_every
    assert sweep["early_terminate"] == {"type": "hyperband", "min_iter": first_cut, "eta": 3}
    assert "early_terminate" not in sweep_config(dataclasses.replace(space, scheduler="none"))
    with_asha = dataclasses.replace(
        space,
        scheduler="asha",
        asha=dataclasses.replace(space.asha, grace_period=80, reduction_factor=3),
        budget=dataclasses.replace(space.budget, eval_every=40),
    )
    assert sweep_config(with_asha)["early_terminate"] == {"type": "hyperband", "min_iter": 2, "eta": 3}
    assert sweep["command"][1:3] == ["infgan", "train"] and "online" in sweep["command"]

    def spec(path: str) -> dict:
        node = {"parameters": sweep["parameters"]}
        for part in path.split("."):
            node = node["parameters"][part]
        return node

    expected = {"choice": None, "loguniform": "log_uniform_values", "uniform": "uniform"}
    for p in space.params:
        s = spec(p.path)
        if p.type == "choice":
            assert s == {"values": list(p.values)}
        else:
            assert s["distribution"] == expected[p.type]
            assert isinstance(s["min"], float) and isinstance(s["max"], float)  # YAML read numbers, not strings
            assert (s["min"], s["max"]) == (p.low, p.high)
    # Everything else is the base config, budget included, as constants.
    searched = {p.path for p in space.params}
    for key, value in flatten(space.base).items():
        if key not in searched:
            assert same(spec(key), {"value": value}), key
    assert spec("train.steps") == {"value": space.steps}
    # A conditional parameter (the reference space's gp_weight) is flattened, with a comment saying so.
    assert main(["wandb-sweep", str(REPO / "search_spaces" / "reference.yaml"), "-o", str(out)]) == 0
    assert "loss.gp_weight (when loss.kind in ['wgan_gp'])" in out.read_text()


def agent_train(tmp_path: Path, run_id: str, params: dict, out: Path) -> subprocess.CompletedProcess:
    """`infgan train` as a W&B agent launches it: sweep id, run id and the sampled config in a file."""
    param_file = tmp_path / f"config-{run_id}.yaml"
    # The agent writes {key: {value: ...}}, one entry per top-level parameter (nested ones as dicts).
    param_file.write_text(yaml.safe_dump({k: {"value": v} for k, v in params.items()}))
    env = {
        **os.environ,
        "WANDB_SWEEP_ID": "sw1",
        "WANDB_RUN_ID": run_id,
        "WANDB_SWEEP_PARAM_PATH": str(param_file),
        "WANDB_MODE": "offline",
        "WANDB_PROJECT": "p",
        "WANDB_DIR": str(tmp_path / "agent"),
    }
    (tmp_path / "agent").mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "infgan", "train", "--wandb", "offline", "--no-progress", "--out", str(out)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)


@pytest.mark.slow
def test_agent_mode_train_applies_the_sweeps_config(tmp_path):
    base = to_dict(resolve(sets=TINY))
    params = {
        **base,
        "train": {**base["train"], "generator_lr": 0.0234, "n_critic": 2.0},
        "model": {**base["model"], "hidden_size": 5},
    }
    proc = agent_train(tmp_path, "agentrun1", params, tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    cfg = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert cfg["train"]["generator_lr"] == 0.0234 and cfg["train"]["n_critic"] == 2
    assert cfg["model"]["hidden_size"] == 5 and cfg["data"]["t_size"] == 8
    (run,) = offline_runs(tmp_path / "agent")
    assert run["id"] == "agentrun1" and run["config"]["train"]["generator_lr"] == 0.0234
    assert [h["step"] for h in run["history"] if "val/score" in h] == [0, 4, 8, 12]
    # A config the sweep got wrong is one line, exit 2.
    bad = {**base, "train": {**base["train"], "n_critic": 0}}
    proc = agent_train(tmp_path, "agentrun2", bad, tmp_path / "run2")
    assert proc.returncode == 2 and "'train.n_critic' must be >= 1" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("infgan: error: ")
