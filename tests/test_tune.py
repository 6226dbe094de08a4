"""`infgan tune` end to end on tiny trials: ASHA stops a bad trial, Optuna hears 'pruned' (in the
study kept in the sweep directory), conditional parameters, outputs, report, best config round trip,
refusals, resume after a kill (Optuna TPE + ASHA, and W&B's engine)."""

from __future__ import annotations

import csv
import glob
import hashlib
import importlib.util
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from infgan.cli import main

pytestmark = pytest.mark.ray  # every test here starts or joins Ray (and so is slow: see conftest)

TINY_SPACE = {
    "base": {
        "overrides": {
            "data": {"size": 64, "t_size": 8},
            "model": {"hidden_size": 4, "mlp_size": 4, "initial_noise_size": 3, "noise_size": 2},
            "train": {"batch_size": 8, "swa_start": 8, "generator_lr": 0.046},
            "loss": {"kind": "gan"},
            # Seconds per completed trial: only the sweep that tests them (`sweep`) turns them on.
            "eval": {"path_metrics": "off", "plots": False, "tensorboard": False, "gif_frames": 0},
        }
    },
    "samples": 5,
    "seed": 0,
    "budget": {"steps": 16, "eval_every": 4},
    "asha": {"grace_period": 4, "reduction_factor": 2},
    # Trial 2 starts from a generator scaled x100: hopeless, so ASHA must stop it at the first rung.
    "points": [{"model.initial_scale": 100.0}],
    "parameters": {
        "model.initial_scale": {"type": "choice", "values": [3.0, 100.0]},
        "train.generator_lr": {"type": "loguniform", "low": 1.0e-3, "high": 1.0e-1},
        "loss.kind": {"type": "choice", "values": ["wgan_clip", "gan", "wgan_gp"]},
        "loss.gp_weight": {"type": "uniform", "low": 1.0, "high": 20.0, "when": {"loss.kind": "wgan_gp"}},
    },
}


def write_space(tmp: Path, **changes) -> Path:
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY_SPACE, **changes}, sort_keys=False))
    return path


def rows(exp: Path) -> list[dict]:
    with (exp / "results.csv").open() as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def sweep(ray_local, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tune")
    overrides = {**TINY_SPACE["base"]["overrides"], "eval": {"path_metrics": "end"}}  # plots and TensorBoard too
    space = write_space(tmp, base={"overrides": overrides})
    wandb = ["--wandb", "offline"] if importlib.util.find_spec("wandb") else []
    code = main(["tune", str(space), "--name", "s", "--storage", str(tmp / "runs"), "--concurrency", "1", *wandb])
    return code, tmp / "runs" / "s", space


def by_start(exp: Path) -> list[str]:
    """Trial ids in the order they started."""
    return [d.name for d in sorted((exp / "trials").iterdir(), key=lambda d: (d / "params.json").stat().st_mtime)]


def test_sweep_runs_every_trial_and_asha_stops_the_bad_one(sweep):
    code, exp, _ = sweep
    assert code == 0
    results = {r["trial_id"]: r for r in rows(exp)}
    assert len(results) == 5
    assert {r["status"] for r in results.values()} <= {"completed", "stopped"}
    first, second = by_start(exp)[:2]
    # Trials run one at a time: the base config runs the full budget; the hopeless second trial
    # (initial scale 100) meets it at the first rung and is stopped there.
    assert results[first]["status"] == "completed" and results[first]["steps"] == "16"
    assert results[second]["status"] == "stopped" and results[second]["steps"] == "4"
    assert float(results[second]["model.initial_scale"]) == 100.0
    best = json.loads((exp / "best.json").read_text())
    assert best["params"]["model.initial_scale"] == 3.0 and Path(best["checkpoint"]).is_file()
    assert best["by_status"]["stopped"] >= 1 and best["trials"] == 5


def test_first_trial_is_the_base_configs_own_values(sweep):
    _, exp, _ = sweep
    params = json.loads((exp / "trials" / by_start(exp)[0] / "params.json").read_text())
    assert params == {"model.initial_scale": 3.0, "train.generator_lr": 0.046, "loss.kind": "gan"}


def test_optuna_is_told_stopped_trials_were_pruned(sweep):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    _, exp, _ = sweep
    # The study, as a user opens it after the sweep (optuna-dashboard reads the same file).
    study = optuna.load_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(exp / "optuna.log"))))
    trials = study.trials
    assert len(trials) == 5 and {t.params["loss.kind"] for t in trials} <= {"wgan_clip", "gan", "wgan_gp"}
    stopped = [r for r in rows(exp) if r["status"] == "stopped"]
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert len(pruned) == len(stopped) >= 1 and any(t.state.name == "COMPLETE" for t in trials)
    # each pruned trial carries the value it was stopped on, at its stopping step
    assert sorted(max(t.intermediate_values) for t in pruned) == sorted(int(r["steps"]) for r in stopped)


def test_conditional_parameter_only_with_its_parent(sweep):
    _, exp, _ = sweep
    for d in (exp / "trials").iterdir():
        params = json.loads((d / "params.json").read_text())
        assert ("loss.gp_weight" in params) == (params["loss.kind"] == "wgan_gp")


def test_outputs_plots_tensorboard_and_report(sweep, capsys):
    _, exp, _ = sweep
    for name in (
        "results.csv",
        "best_config.yaml",
        "best.json",
        "plots/best_vs_steps.png",
        "plots/best_vs_time.png",
        "plots/learning_curves.png",
        "sweep.yaml",
    ):
        assert (exp / name).is_file(), name
    assert glob.glob(str(exp / "tune" / "*" / "events.out.tfevents.*"))
    (exp / "results.csv").unlink()
    assert main(["report", str(exp)]) == 0
    out = capsys.readouterr().out
    assert (exp / "results.csv").is_file() and "stopped" in out and "best: trial" in out
    assert main(["report", str(exp / "trials")]) == 2


def test_best_config_round_trips_into_train(sweep, tmp_path):
    _, exp, _ = sweep
    assert (
        main(
            [
                "train",
                "--config",
                str(exp / "best_config.yaml"),
                "--out",
                str(tmp_path / "r"),
                "--no-progress",
                "--set",
                "train.steps=4",
            ]
        )
        == 0
    )
    cfg = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    best = json.loads((exp / "best.json").read_text())
    assert cfg["model"]["initial_scale"] == best["params"]["model.initial_scale"]
    assert cfg["train"]["generator_lr"] == best["params"]["train.generator_lr"]


def test_existing_name_is_refused_without_resume(sweep, capsys):
    _, exp, space = sweep
    before = (exp / "results.csv").read_text()
    assert main(["tune", str(space), "--name", "s", "--storage", str(exp.parent)]) == 2
    assert "already holds a sweep" in capsys.readouterr().err
    assert (exp / "results.csv").read_text() == before


def test_one_wandb_run_per_trial_and_compare_with_wandb_runs_and_a_csv_export(sweep, tmp_path, capsys):
    pytest.importorskip("wandb")
    from infgan.commands.compare import read_wandb_run

    code, exp, _ = sweep
    runs = [read_wandb_run(p.parent) for p in sorted((exp / "wandb").rglob("*.wandb"))]
    trial_ids = sorted(p.name for p in (exp / "trials").iterdir())
    assert sorted(r["id"] for r in runs) == trial_ids and {r["group"] for r in runs} == {"s"}
    for r in runs:  # the trial's own config and metrics, on the step axis
        saved = yaml.safe_load((exp / "trials" / r["id"] / "config.yaml").read_text())
        assert r["config"]["train"]["generator_lr"] == pytest.approx(saved["train"]["generator_lr"])
        steps = [json.loads(x)["step"] for x in (exp / "trials" / r["id"] / "metrics.jsonl").read_text().splitlines()]
        assert [h["step"] for h in r["history"] if "val/score" in h] == steps
    # A W&B runs-table export of the same trials, as the UI writes it.
    export = tmp_path / "wandb_export.csv"
    with export.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Name", "State", "Created", "Runtime", "best/val/score", "steps"])
        for i, row in enumerate(rows(exp)):
            w.writerow(
                [
                    row["trial_id"],
                    "finished",
                    f"2026-11-23T0{i}:00:00.000Z",
                    row["wall_s"],
                    row["best_val/score"],
                    row["steps"],
                ]
            )
    out = tmp_path / "cmp"
    assert main(["compare", str(exp), str(exp / "wandb"), str(export), "--out", str(out)]) == 0
    with (out / "compare.csv").open() as fh:
        table = {r["sweep"]: r for r in csv.DictReader(fh)}
    best = min(float(r["best_val/score"]) for r in rows(exp))
    total = sum(int(r["steps"]) for r in rows(exp))
    assert set(table) == {"s (Ray Tune)", "s (W&B)", "wandb_export (W&B CSV)"}
    for r in table.values():
        assert float(r["best val/score"]) == pytest.approx(best) and int(r["trials"]) == 5
        assert int(r["total steps"]) == total
    assert (out / "compare.png").stat().st_size > 0
    assert "best val/score" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "nothing-here")]) == 2


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_report_shows_path_metrics_and_evaluate_ranks_the_trials(sweep, capsys):
    _, exp, _ = sweep
    assert main(["report", str(exp)]) == 0
    head = capsys.readouterr().out.splitlines()[0].split()
    assert "floor" in head and "disc" in head and "sig_mmd" in head  # completed trials ran them at the end
    assert main(["evaluate", str(exp), "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "Spearman rank correlation with val/score" in out and "(floor" in out
    with (exp / "evaluate.csv").open() as fh:
        evaluated = list(csv.DictReader(fh))
    assert {r["trial_id"] for r in evaluated} == {d.name for d in (exp / "trials").iterdir()}  # all have checkpoints
    assert all(float(r["val/disc"]) >= 0 and "val/disc_floor" in r for r in evaluated)
    assert (exp / "plots" / "evaluate.png").is_file()
    run = exp / "trials" / evaluated[0]["trial_id"]
    assert main(["evaluate", str(run), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["val/disc"] == pytest.approx(float(evaluated[0]["val/disc"]))  # the same noise, the same value
    assert all((run / "evaluate" / f).is_file() for f in ("correlation.png", "norms.png", "ks.png"))
    # A trial's TensorBoard logs: `tensorboard --logdir` on the sweep finds each trial's.
    assert all(list((t / "tensorboard").glob("events.out.tfevents.*")) for t in (exp / "trials").iterdir())


def tune_command(space: Path, storage: Path, name: str, concurrency: int = 1) -> list[str]:
    """`infgan tune` as a user runs it, in a process of its own (so that it can be killed), joining
    this test session's Ray as a sweep joins its cluster's (`--address`): where the driver's Ray
    comes from does not matter to what a kill leaves behind, and starting one costs seconds."""
    import ray

    address = ray.get_runtime_context().gcs_address
    args = ["tune", str(space), "--name", name, "--storage", str(storage), "--concurrency", str(concurrency)]
    return [sys.executable, "-m", "infgan", *args, "--address", address]


def kill_when(cmd: list[str], condition, timeout: float = 240):
    """Start the driver, SIGKILL it once `condition()` is truthy (or at the timeout); its last value."""
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline and not condition() and driver.poll() is None:
        time.sleep(0.2)
    seen = condition()
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    return seen


def resume(cmd: list[str]) -> None:
    """The killed driver's sweep resumed by a new driver (on the same cluster)."""
    proc = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # infgan's own first line names the sweep directory (and its TensorBoard logs); Ray's banner, and its
    # hint at a temporary folder Ray deletes, are gone.
    assert "Configuration for experiment" not in proc.stdout + proc.stderr
    assert "Wrote the latest version of all result files" not in proc.stdout + proc.stderr
    assert f"tensorboard --logdir {Path(cmd[cmd.index('--storage') + 1]).resolve()}" in proc.stdout


@pytest.mark.parametrize("searcher, scheduler", [("tpe", "asha"), ("wandb-bayes", "wandb-hyperband")])
def test_resume_after_the_driver_is_killed(ray_local, tmp_path, searcher, scheduler):
    if searcher.startswith("wandb"):
        pytest.importorskip("sweeps")
    space = write_space(tmp_path, samples=3, searcher=searcher, scheduler=scheduler)
    storage = tmp_path / "runs"
    cmd = tune_command(space, storage, "k")
    done = kill_when(cmd, lambda: glob.glob(str(storage / "k" / "trials" / "*" / "summary.json")))
    assert done, "no trial finished before the deadline"
    finished = Path(done[0]).parent
    before = {f: _digest(finished / f) for f in ("metrics.jsonl", "summary.json", "generator.pt")}
    resume(cmd)
    results = rows(storage / "k")
    assert len(results) == 3 and len({r["trial_id"] for r in results}) == 3
    assert {f: _digest(finished / f) for f in before} == before  # the finished trial was not re-run
    assert {r["status"] for r in results} <= {"completed", "stopped"}  # the sweep finished every trial
    if searcher == "tpe":
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        log = str(storage / "k" / "optuna.log")
        study = optuna.load_study(study_name="k", storage=JournalStorage(JournalFileBackend(log)))
        # One study across both drivers: every trial of the sweep is in it, finished, and nothing else
        # but a trial the killed driver started and told after Tune last saved its record (set aside
        # on resume as an orphan; seen in CI once trials ended sooner).
        told = [t.params for t in study.trials if t.state.is_finished()]
        trials, orphans = (
            [json.loads(p.read_text()) for p in (storage / "k" / part).glob("*/params.json")]
            for part in ("trials", "orphans")
        )
        assert all(p in told for p in trials) and all(p in trials + orphans for p in told), (told, trials)
        # A trial the killed driver started after Tune last saved its record: set aside on resume.
        from infgan.tune.run import set_aside_orphans

        shutil.copytree(finished, storage / "k" / "trials" / "0rphan00")
        assert set_aside_orphans(storage / "k", storage / "k" / "tune") == ["0rphan00"]
        assert (storage / "k" / "orphans" / "0rphan00" / "summary.json").exists()
        assert len(rows_after := [d.name for d in (storage / "k" / "trials").iterdir()]) == 3, rows_after
    else:
        saved = json.loads((storage / "k" / "hyperband_state.json").read_text())
        # Hyperband's record survived the kill: every trial of the sweep, and at most the trials set
        # aside as orphans (started after Tune's last save; seen since trials end sooner).
        orphans = {d.name for d in (storage / "k" / "orphans").glob("*")}
        ids = {r["trial_id"] for r in results}
        assert ids <= set(saved["state"]) <= ids | orphans, (saved["state"], orphans)


def test_trials_with_two_ddp_workers_each(ray_local, tmp_path):
    space = write_space(
        tmp_path,
        samples=1,
        points=[],
        budget={"steps": 8, "eval_every": 4},
        resources={"workers_per_trial": 2, "cpus_per_worker": 0.5},
    )
    assert main(["tune", str(space), "--name", "w", "--storage", str(tmp_path / "runs")]) == 0
    (result,) = rows(tmp_path / "runs" / "w")
    assert result["status"] == "completed" and result["steps"] == "8"
    trial = tmp_path / "runs" / "w" / "trials" / result["trial_id"]
    summary = json.loads((trial / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert (trial / "checkpoints" / "step_000008" / "state.pt").is_file()  # a Ray Train checkpoint


def test_a_space_mixing_kinds_with_and_without_a_critic_runs_judged_by_a_path_metric(ray_local, tmp_path):
    """`loss.kind` over sig_score and gan, a critic rate searched under gan only: both trials train,
    and the sig_score trial has no critic in its config or its checkpoints. The sweep optimises a
    path metric (`val/disc`), which every evaluation of every trial then carries with its floor; the
    winner's confirmation run, judged by its final value alone, computes it only there. The base draws
    the final plots: the confirmation run does, the search trials (the sweep confirms) do not."""
    overrides = {**TINY_SPACE["base"]["overrides"], "eval": {**TINY_SPACE["base"]["overrides"]["eval"], "plots": True}}
    space = write_space(
        tmp_path,
        base={"overrides": overrides},
        metric="val/disc",
        samples=2,
        points=[{"loss.kind": "sig_score"}],
        budget={"steps": 8, "eval_every": 4},
        confirm={"top": 1, "seeds": 1},
        parameters={
            "loss.kind": {"type": "choice", "values": ["gan", "sig_score"]},
            "train.critic_lr": {"type": "loguniform", "low": 0.01, "high": 0.1, "when": {"loss.kind": "gan"}},
            "loss.sig_sigma": {"type": "loguniform", "low": 0.5, "high": 2.0},
        },
    )
    assert main(["tune", str(space), "--name", "m", "--storage", str(tmp_path / "runs"), "--concurrency", "1"]) == 0
    trials = sorted((tmp_path / "runs" / "m" / "trials").iterdir())
    kinds = {}
    for trial in trials:
        cfg = yaml.safe_load((trial / "config.yaml").read_text())
        kinds[cfg["loss"]["kind"]] = trial
        assert json.loads((trial / "summary.json").read_text())["status"] == "completed"
    assert set(kinds) == {"gan", "sig_score"}
    assert "critic_lr" not in (kinds["sig_score"] / "config.yaml").read_text()
    for trial in trials:
        records = [json.loads(x) for x in (trial / "metrics.jsonl").read_text().splitlines()]
        assert records and all("val/disc" in r and "val/disc_floor" in r for r in records)
        assert yaml.safe_load((trial / "config.yaml").read_text())["eval"]["plots"] is False
        assert not (trial / "plots").exists()
    best = json.loads((tmp_path / "runs" / "m" / "best.json").read_text())
    assert 0 <= best["val/disc"] <= 0.5
    (confirmed,) = (tmp_path / "runs" / "m" / "confirm").iterdir()
    records = [json.loads(x) for x in (confirmed / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "val/disc" in r] == [8]
    assert (confirmed / "plots" / "samples.png").is_file()
    assert best["confirmed"][0]["median"] == records[-1]["val/disc"]
    import torch

    from infgan.train.checkpoint import checkpoints

    payload = torch.load(checkpoints(kinds["sig_score"] / "checkpoints")[-1], weights_only=False)
    assert "generator" in payload and "critic" not in payload and "critic_opt" not in payload


def test_winners_are_confirmed_on_fresh_seeds_and_the_best_median_is_chosen(ray_local, tmp_path, capsys):
    space = write_space(
        tmp_path,
        samples=2,
        points=[],
        budget={"steps": 8, "eval_every": 4},
        confirm={"top": 2, "seeds": 2},
    )
    assert main(["tune", str(space), "--name", "c", "--storage", str(tmp_path / "runs"), "--concurrency", "2"]) == 0
    exp = tmp_path / "runs" / "c"
    runs = [json.loads(p.read_text()) for p in (exp / "confirm").glob("*/confirm.json")]
    assert len(runs) == 4 and {r["seed"] for r in runs} == {1, 2}  # the search trained on seed 0 alone
    assert {r["of"] for r in runs} == {row["trial_id"] for row in rows(exp)}
    best = json.loads((exp / "best.json").read_text())
    medians = {c["of"]: c["median"] for c in best["confirmed"]}
    assert best["trial_id"] == min(medians, key=medians.get) and best["val/score"] == min(medians.values())
    assert "median" in best["chosen_by"]
    chosen = yaml.safe_load((exp / "best_config.yaml").read_text())
    assert chosen == yaml.safe_load((exp / "trials" / best["trial_id"] / "config.yaml").read_text())
    assert {r["confirmed_median"] != "" for r in rows(exp)} == {True}
    assert "confirmed on fresh seeds" in capsys.readouterr().out


@pytest.mark.parametrize("scheduler", ["pbt", "pb2"])
def test_a_population_based_sweep_exploits_and_writes_its_lineage(ray_local, tmp_path, scheduler, capsys):
    """pb2 runs in this process; pbt's driver is SIGKILLed after the first exploit and resumed: the same
    population ends, every member at its full budget, and the lineage runs on unbroken."""
    space = write_space(
        tmp_path,
        samples=3,
        points=[],
        scheduler=scheduler,
        budget={"steps": 24 if scheduler == "pbt" else 16, "eval_every": 4},
        # No perturbation at the budget's end: pb2's 16 steps perturb at 4, 8, 12; pbt's at 8 and 16.
        # pbt synchronous, so that an exploit is sure to come: asynchronous, the third member (waiting for
        # a slot on the session's 2 CPUs) once reached step 8 after the other two had finished, and a
        # finished member is nobody's donor. Resumed, a synchronous population once hung (SyncNeverStalls).
        pbt={"perturbation_interval": 8 if scheduler == "pbt" else 4, "quantile": 0.5, "synch": scheduler == "pbt"},
        parameters={"train.generator_lr": {"type": "loguniform", "low": 1.0e-3, "high": 1.0e-1}},
    )
    exp = tmp_path / "runs" / "p"
    from infgan.tune.results import lineage

    if scheduler == "pbt":
        cmd = tune_command(space, tmp_path / "runs", "p", concurrency=3)
        assert kill_when(cmd, lambda: [e for e in lineage(exp) if e["donor"]]), "no exploit before the deadline"
        before = lineage(exp)
        resume(cmd)
        assert lineage(exp)[: len(before)] == before  # what the killed driver's members recorded stands
    else:  # with W&B tracking on: each member's W&B run takes the member's config (it once failed on "member")
        wandb = ["--wandb", "offline"] if importlib.util.find_spec("wandb") else []
        argv = ["tune", str(space), "--name", "p", "--storage", str(tmp_path / "runs"), "--concurrency", "3", *wandb]
        assert main(argv) == 0
        assert not wandb or len(list((exp / "wandb").rglob("*.wandb"))) == 3
    events = [json.loads(x) for x in (exp / "lineage.jsonl").read_text().splitlines()]
    members = {e["trial"] for e in events if e["donor"] is None}
    assert len(members) == 3 and {r["trial_id"] for r in rows(exp)} == members  # no member lost or added
    exploits = [e for e in events if e["donor"]]
    assert exploits and all(e["donor"] in members and e["donor"] != e["trial"] for e in exploits)
    for m in members:  # each member's record runs forward in steps
        steps: list[int] = []
        for e in (e for e in lineage(exp) if e["trial"] == m):
            # A `restored` line: the resumed sweep took the member back to its state at that step,
            # before an exploit the killed driver had recorded but Tune had not yet saved.
            steps = [s for s in steps if s <= e["step"]] if e.get("restored") else steps
            steps.append(e["step"])
        assert steps == sorted(steps), (m, steps)
    for e in exploits:  # the member took its new rate from then on
        cfg = yaml.safe_load((exp / "trials" / e["trial"] / "config.yaml").read_text())
        last = [x for x in events if x["trial"] == e["trial"]][-1]
        assert cfg["train"]["generator_lr"] == pytest.approx(last["params"]["train.generator_lr"])
    assert (exp / "plots" / "pbt_lineage.png").stat().st_size > 0
    ends = [(r["trial_id"], r["status"], r["steps"]) for r in rows(exp)]
    assert all(status == "completed" and steps == str(24 if scheduler == "pbt" else 16) for _, status, steps in ends), (
        ends
    )
    assert main(["report", str(exp)]) == 0 and "population" not in capsys.readouterr().err
    assert main(["compare", str(exp), "--out", str(tmp_path / "cmp")]) == 0
    assert scheduler in (tmp_path / "cmp" / "compare.csv").read_text()
