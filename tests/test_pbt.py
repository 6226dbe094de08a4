"""Population Based Training: what an exploit copies, what may mutate, the W&B export's word on it."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from infgan.config import ConfigError
from infgan.train.checkpoint import checkpoints, load_checkpoint
from infgan.train.context import RunContext
from infgan.train.loop import fit
from infgan.train.state import init_state
from infgan.tune.results import record
from infgan.tune.space import parse_space
from infgan.tune.trial import Member, adopt

from conftest import tiny

PBT_SPACE = {
    "scheduler": "pbt",
    "samples": 3,
    "budget": {"steps": 16, "eval_every": 4},
    "pbt": {"perturbation_interval": 8, "quantile": 0.5},
    "parameters": {
        "train.generator_lr": {"type": "loguniform", "low": 1.0e-3, "high": 1.0e-1},
        "model.hidden_size": {"type": "choice", "values": [4, 8]},
    },
}


def test_an_exploit_copies_every_piece_of_the_donors_state_and_takes_the_new_rates(tmp_path):
    cfg = tiny("train.steps=8", "checkpoint.every=8", "eval.every=8", "train.swa_start=4")
    fit(cfg, tmp_path / "donor", RunContext(progress=False))
    payload = {**load_checkpoint(checkpoints(tmp_path / "donor" / "checkpoints")[-1]), "owner": "donor"}
    params = {"train.generator_lr": 0.01}
    member_of = Member("member", lambda step, donor: record(tmp_path, "member", step, donor, params))
    adopted = adopt(copy.deepcopy(payload), member_of)
    new = tiny("train.steps=8", "checkpoint.every=8", "eval.every=8", "train.swa_start=4", "train.generator_lr=0.01")
    member, donor = init_state(new, 1, torch.device("cpu")), init_state(cfg, 1, torch.device("cpu"))
    member.load_state_dict(adopted)
    member.set_rates(new)
    donor.load_state_dict(payload)
    for name in ("generator", "critic", "g_avg", "critic_avg"):
        a, b = getattr(member, name).state_dict(), getattr(donor, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    for opt in ("g_opt", "critic_opt"):
        a, b = getattr(member, opt).state_dict()["state"], getattr(donor, opt).state_dict()["state"]
        assert all(torch.equal(a[i][k], b[i][k]) for i in a for k in a[i] if torch.is_tensor(a[i][k])), opt
    assert member.step == donor.step == 8 and member.progress == donor.progress
    assert member.g_opt.param_groups[0]["lr"] == 0.01 and donor.g_opt.param_groups[0]["lr"] == 0.046
    assert member.critic_opt.param_groups[0]["lr"] == donor.critic_opt.param_groups[0]["lr"]
    assert not torch.equal(member.rng.get_state(), donor.rng.get_state())  # its own noise from here
    again = adopt(copy.deepcopy(payload), member_of)
    assert torch.equal(again["rng"], adopted["rng"])  # re-seeded the same way every time
    events = [json.loads(x) for x in (tmp_path / "lineage.jsonl").read_text().splitlines()]
    assert events[0]["trial"] == "member" and events[0]["donor"] == "donor" and events[0]["step"] == 8
    own = adopt({**copy.deepcopy(payload), "owner": "member"}, member_of)  # its own checkpoint: nothing changes
    assert torch.equal(own["rng"], payload["rng"])


def test_what_cannot_mutate_is_refused_or_fixed_per_member():
    space = parse_space(PBT_SPACE, "s")
    from infgan.tune.searchers import population
    from infgan.tune.space import mutable

    assert [p.path for p in mutable(space)] == ["train.generator_lr"]  # hidden_size: fixed per member
    members = population(space)
    assert len(members) == 3 and all(set(m) == {"train.generator_lr", "model.hidden_size"} for m in members)
    assert population(space) == members  # the same seed, the same population
    only_shapes = {**PBT_SPACE, "parameters": {"model.hidden_size": {"type": "choice", "values": [4, 8]}}}
    with pytest.raises(ConfigError, match="needs a continuous parameter it can change"):
        parse_space(only_shapes, "s")
    assert parse_space({**PBT_SPACE, "resources": {"workers_per_trial": 2}}, "s").workers_per_trial == 2
    with pytest.raises(ConfigError, match="'pbt.synch' must be true or false, got 'yes'"):
        parse_space({**PBT_SPACE, "pbt": {"synch": "yes"}}, "s")
    with pytest.raises(ConfigError, match="multiple of budget.eval_every"):
        parse_space({**PBT_SPACE, "pbt": {"perturbation_interval": 6}}, "s")
    with pytest.raises(ConfigError, match=r"perturbation_interval \(16\) must be below budget.steps \(16\)"):
        parse_space({**PBT_SPACE, "pbt": {"perturbation_interval": 16}}, "s")
    assert parse_space({**PBT_SPACE, "pbt": {}}, "s").pbt_interval == 12  # 4 evaluations would be the budget
    assert parse_space({**PBT_SPACE, "budget": {"steps": 40, "eval_every": 4}, "pbt": {}}, "s").pbt_interval == 16


def test_the_wandb_sweep_file_says_plainly_that_wandb_has_no_pbt(tmp_path):
    from infgan.tune.wandb_file import write_sweep

    text = write_sweep(parse_space(PBT_SPACE, "s"), tmp_path / "w.yaml").read_text()
    assert "W&B has no Population Based Training" in text and "early_terminate" not in text


@pytest.mark.parametrize("bandit", [False, True])
def test_no_member_is_perturbed_on_its_final_report_and_the_scheduler_pickles(bandit):
    """An exploit on the last report would replace a member's finished result with a copy of the
    donor's; the scheduler passes final reports through, and survives Tune's pickling (resume)."""
    import pickle

    from infgan.tune.schedulers import make_pbt

    if bandit:
        pytest.importorskip("sklearn")
    space = parse_space(PBT_SPACE, "s")
    scheduler = pickle.loads(pickle.dumps(make_pbt(space, bandit)))
    assert scheduler.budget == space.steps
    # At the end no controller or trial state is even looked at (None would fail if it were).
    assert scheduler.on_trial_result(None, None, {"step": space.steps, space.metric: 1.0}) == "CONTINUE"
    with pytest.raises(Exception):  # noqa: B017 - before the end, Ray's own logic runs (and needs a trial)
        scheduler.on_trial_result(None, None, {"step": space.pbt_interval, space.metric: 1.0})


class _Trial:
    """What Ray's PBT reads of a trial when it picks one to run."""

    def __init__(self, status: str):
        self.status = status


def test_a_synchronous_population_waiting_at_a_sync_point_nobody_will_reach_runs_on():
    """A resumed synchronous sweep: a perturbation set the next sync point at the furthest members'
    step 20, the member behind ran to its end, and the two others wait at 20 for nobody. Ray's PBT
    picks no one to run (the sweep hung); they go on, to meet again one interval further."""
    from types import SimpleNamespace

    from infgan.tune.schedulers import make_pbt

    space = parse_space(
        {**PBT_SPACE, "budget": {"steps": 32, "eval_every": 4}, "pbt": {**PBT_SPACE["pbt"], "synch": True}}, "s"
    )
    scheduler = make_pbt(space, bandit=False)
    waiting, also_waiting, ended = _Trial("PAUSED"), _Trial("PAUSED"), _Trial("TERMINATED")
    trials = [waiting, also_waiting, ended]
    controller = SimpleNamespace(get_trials=lambda: trials)
    steps = {waiting: 20, also_waiting: 20, ended: 32}
    scheduler._trial_state = {t: SimpleNamespace(last_train_time=steps[t]) for t in trials}
    scheduler._next_perturbation_sync = 20
    assert scheduler.choose_trial_to_run(controller) in (waiting, also_waiting)
    assert scheduler._next_perturbation_sync == 28
    # While a member runs toward the sync point, the others wait for it: Ray's own rule, unchanged.
    waiting.status, scheduler._next_perturbation_sync = "RUNNING", 20
    assert scheduler.choose_trial_to_run(controller) is None


def test_a_member_restored_to_other_parameters_than_its_last_record_says_so(tmp_path):
    """A driver killed between an exploit and Tune's next save: the resumed sweep continues the member
    as it was before the exploit; its lineage then says which parameters it trains with."""
    from infgan.tune.results import current_params, lineage, record_restore

    record(tmp_path, "m", 0, None, {"train.generator_lr": 0.01})
    record(tmp_path, "m", 8, "d", {"train.generator_lr": 0.03})  # the exploit the killed driver made
    record_restore(tmp_path, "m", 8, {"train.generator_lr": 0.03})  # restored as recorded: nothing to add
    assert len(lineage(tmp_path)) == 2
    record_restore(tmp_path, "m", 8, {"train.generator_lr": 0.01})  # restored as before the exploit
    last = lineage(tmp_path)[-1]
    assert (last["step"], last["donor"], last["restored"]) == (8, None, True)
    assert current_params(tmp_path)["m"] == {"train.generator_lr": 0.01}


def test_a_member_given_no_tune_checkpoint_records_the_parameters_it_continues_its_own_run_with(tmp_path, monkeypatch):
    """A resumed sweep whose saved record of a member holds no checkpoint (seen when the driver was killed
    right after an exploit) restarts it with no Tune checkpoint and the parameters from before the exploit;
    the member continues from its own newest checkpoint, and its lineage says with which parameters."""
    import ray.tune

    from infgan.train.checkpoint import save_checkpoint
    from infgan.train.run_dir import RunDir
    from infgan.tune.results import current_params, lineage, record_restore
    from infgan.tune.trial import Member, member_checkpoint

    monkeypatch.setattr(ray.tune, "get_checkpoint", lambda: None)
    before = {"train.generator_lr": 0.01}
    member = Member(
        "m", on_exploit=lambda step, donor: None, on_restore=lambda s: record_restore(tmp_path, "m", s, before)
    )
    run = tmp_path / "run"
    assert member_checkpoint(member, run) is None and lineage(tmp_path) == []  # a first start: nothing to record
    record(tmp_path, "m", 0, None, before)
    record(tmp_path, "m", 16, "d", {"train.generator_lr": 0.03})  # the exploit the killed driver made
    save_checkpoint(RunDir(run).checkpoints, 20, {"step": 20}, keep=2)  # written after it, then the kill
    assert member_checkpoint(member, run) is None  # it continues its own run directory
    last = lineage(tmp_path)[-1]
    assert (last["step"], last["donor"], last.get("restored")) == (20, None, True)
    assert current_params(tmp_path)["m"] == before


def test_importances_take_a_member_whose_explored_value_passed_its_bound_by_rounding(tmp_path):
    pytest.importorskip("optuna")
    from infgan.tune.report import _importances
    from infgan.tune.results import TrialResult

    lr = {"path": "train.generator_lr", "type": "loguniform", "low": 1e-3, "high": 0.1, "log": True}
    sweep = {"distributions": [lr]}
    lrs = [0.002, 0.01, 0.05, float(torch.tensor(0.1, dtype=torch.float32))]  # PB2 once explored 0.10000000149
    trials = [
        TrialResult(f"t{i}", tmp_path, {"train.generator_lr": lr}, [{"step": 4}], "completed", 1.0, [1.0 / (i + 1)])
        for i, lr in enumerate(lrs)
    ]
    assert lrs[-1] > 0.1
    assert set(_importances(sweep, trials)) == {"train.generator_lr"}  # it raised ValueError before


def test_a_trial_cut_off_after_its_last_checkpoint_is_finished_and_the_others_are_left(tmp_path):
    """A member Tune ended after its final report, before its summary: the sweep finishes it from its
    last checkpoint (final files and summary, no more training, its records as they were), and leaves
    alone a finished trial and one still short of its budget."""
    import yaml

    from infgan.tune.results import collect
    from infgan.tune.trial import finish_cut_off

    exp = tmp_path / "exp"
    (exp / "trials").mkdir(parents=True)
    (exp / "sweep.yaml").write_text(yaml.safe_dump({"metric": "val/score", "mode": "min"}))
    cfg = tiny("train.steps=8", "eval.every=4", "checkpoint.every=4", "eval.path_metrics=off")
    for name in ("cut", "done", "short"):
        run = exp / "trials" / name
        run.mkdir()
        (run / "params.json").write_text("{}")
        fit(cfg, run, RunContext(device=torch.device("cpu"), progress=False))
    (exp / "trials" / "cut" / "summary.json").unlink()
    (exp / "trials" / "cut" / "generator.pt").unlink()
    records = (exp / "trials" / "cut" / "metrics.jsonl").read_text()
    (exp / "trials" / "short" / "summary.json").unlink()
    (exp / "trials" / "short" / "checkpoints" / "step_000008.pt").unlink()
    done = (exp / "trials" / "done" / "summary.json").read_text()

    assert finish_cut_off(exp, 8) == ["cut"]
    summary = json.loads((exp / "trials" / "cut" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 8
    assert (exp / "trials" / "cut" / "generator.pt").exists()
    assert (exp / "trials" / "cut" / "metrics.jsonl").read_text() == records
    assert (exp / "trials" / "done" / "summary.json").read_text() == done
    assert not (exp / "trials" / "short" / "summary.json").exists()
    assert {t.trial_id: t.status for t in collect(exp)[1]} == {
        "cut": "completed",
        "done": "completed",
        "short": "incomplete",
    }
