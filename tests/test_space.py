"""Search-space files: validation (one line each), conditional parameters, first points."""

from __future__ import annotations

import copy

import optuna
import pytest
import yaml

from infgan.cli import main
from infgan.config import ConfigError
from infgan.tune.params import DefineByRun
from infgan.tune.space import load_space, parse_space

GOOD = {
    "parameters": {
        "train.generator_lr": {"type": "loguniform", "low": 1.0e-3, "high": 1.0e-1},
        "model.hidden_size": {"type": "int", "low": 4, "high": 16, "log": True},
        "loss.kind": {"type": "choice", "values": ["wgan_clip", "wgan_gp"]},
        "loss.gp_weight": {"type": "uniform", "low": 1.0, "high": 20.0, "when": {"loss.kind": "wgan_gp"}},
    },
    "budget": {"steps": 40, "eval_every": 10},
    "asha": {"grace_period": 10, "reduction_factor": 2},
}


def with_(path, value):
    doc = copy.deepcopy(GOOD)
    node = doc
    *parents, leaf = path
    for p in parents:
        node = node.setdefault(p, {})
    if value is None:
        del node[leaf]
    else:
        node[leaf] = value
    return doc


def test_bounds_written_as_yaml_strings_are_numbers():
    space = parse_space(with_(("parameters", "train.generator_lr", "low"), "1e-4"), "space.yaml")
    assert space.params[0].low == 1e-4


@pytest.mark.parametrize(
    "path, value, words",
    [
        (("parameters", "train.lr"), {"type": "choice", "values": [1]}, "unknown config path 'train.lr'"),
        (("parameters", "train.generator_lr"), {"type": "normal", "low": 0, "high": 1}, "'type' must be one of"),
        (("parameters", "train.generator_lr"), {"type": "loguniform", "low": 0.1, "high": 0.01}, "empty range"),
        (("parameters", "train.generator_lr"), {"type": "loguniform", "low": 0.0, "high": 0.1}, "needs low > 0"),
        (("parameters", "train.generator_lr"), {"type": "loguniform", "low": "abc", "high": 0.1}, "finite number"),
        (("seed",), "abc", "'seed' must be an integer >= 0"),
        (("metric",), ["val/score"], "'metric' must be a metric training reports"),
        (("metric",), "val/scor", "'metric' must be a metric training reports"),
        (("resources", "cpus_per_worker"), -1, "resources.cpus_per_worker must be a number > 0"),
        (("resources", "gpus_per_worker"), -0.5, "resources.gpus_per_worker must be a number >= 0"),
        (("base", "overrides"), {"train": 5}, "'train' must be a mapping"),
        (("parameters", "model.hidden_size"), {"type": "uniform", "low": 1.0, "high": 2.0}, "is an integer"),
        (("parameters", "loss.kind"), {"type": "choice", "values": ["hinge"]}, "'loss.kind' must be one of"),
        (
            ("points",),
            [{"loss.kind": "gan"}],
            "points: 'loss.kind' 'gan' is not one of its values (wgan_clip, wgan_gp)",
        ),
        (("parameters", "loss.kind"), {"type": "choice", "values": []}, "non-empty list"),
        (
            ("parameters", "loss.gp_weight"),
            {"type": "uniform", "low": 1.0, "high": 2.0, "when": {"loss.kind": "gan"}},
            "'gan' is not one of loss.kind's values",
        ),
        (
            ("parameters", "loss.gp_weight"),
            {"type": "uniform", "low": 1.0, "high": 2.0, "when": {"train.n_critic": 2}},
            "parent 'train.n_critic' must be another choice parameter",
        ),
        (("parameters",), {}, "'parameters' must map"),
        (("asha", "grace_period"), 100, "asha.grace_period <= budget.steps"),
        (("budget", "stepz"), 3, "unknown key 'budget.stepz'"),
        (("asha", "judge"), "mean", "'asha.judge' must be one of last, best"),
        (("asha", "judge"), 3, "'asha.judge' must be a string"),
        (("mode",), "up", "'mode' must be min or max"),
        (("searcher",), "hyperopt", "'searcher' must be one of tpe, random, wandb-bayes, wandb-random"),
        (("scheduler",), "median", "'scheduler' must be one of asha, wandb-hyperband, none, pbt, pb2"),
        (("extra",), 1, "unknown key 'extra'"),
    ],
)
def test_broken_spaces_are_refused_with_one_line(path, value, words):
    with pytest.raises(ConfigError) as e:
        parse_space(with_(path, value), "space.yaml")
    assert words in str(e.value) and "\n" not in str(e.value)


def test_unparsable_and_missing_space_files_exit_2_before_ray(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameters: [1,\n")
    assert main(["tune", str(bad), "--storage", str(tmp_path)]) == 2
    assert main(["tune", str(tmp_path / "none.yaml"), "--storage", str(tmp_path)]) == 2
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump(with_(("parameters", "train.lr"), {"type": "choice", "values": [1]})))
    assert main(["tune", str(typo), "--storage", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "not valid YAML" in err[0] and "cannot read" in err[1] and "train.lr" in err[2]
    assert list(tmp_path.iterdir()) == [bad, typo]  # nothing written, no Ray started


def test_conditional_parameter_is_sampled_only_with_its_parent():
    space = parse_space(GOOD, "s")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = []
    for _ in range(40):
        trial = study.ask()
        DefineByRun(space.params)(trial)
        seen.append(dict(trial.params))
        study.tell(trial, 0.0)
    assert {p["loss.kind"] for p in seen} == {"wgan_clip", "wgan_gp"}
    for p in seen:
        assert ("loss.gp_weight" in p) == (p["loss.kind"] == "wgan_gp")
        assert 4 <= p["model.hidden_size"] <= 16 and 1e-3 <= p["train.generator_lr"] <= 1e-1


def test_first_point_is_the_base_config_and_trial_configs_are_full_configs():
    space = parse_space(
        {**GOOD, "base": {"config": "reference"}, "points": [{"loss.kind": "wgan_gp"}]}, "s", {"seed": 3}
    )
    first, second = space.first_points()
    # The reference's rate 2e-4 lies below the searched range: the searcher samples it (Optuna cannot
    # take an out-of-range value back when the sweep is resumed).
    assert first == {"model.hidden_size": 16, "loss.kind": "wgan_clip"}
    assert second["loss.kind"] == "wgan_gp" and second["loss.gp_weight"] == 10.0
    cfg = space.trial_config({"train.generator_lr": 0.05, "loss.kind": "wgan_gp", "loss.gp_weight": 3.0})
    assert cfg.train.generator_lr == 0.05 and cfg.loss.gp_weight == 3.0 and cfg.seed == 3
    assert cfg.train.steps == 40 and cfg.eval.every == 10 and cfg.checkpoint.every == 10
    assert cfg.train.batch_size == 1024  # the reference preset underneath
    assert cfg.eval.threads == 1  # its classifiers on the one CPU Ray gives a trial, not on every core


@pytest.mark.parametrize("name", ["ou", "reference"])
def test_shipped_spaces_load(name):
    space = load_space(f"search_spaces/{name}.yaml")
    paths = {p.path for p in space.params}
    searched = {"train.generator_lr", "train.critic_lr", "model.hidden_size", "model.mlp_size"}
    assert searched | {"loss.kind"} <= paths
    if name == "ou":  # wgan_gp was left out of the default sweep (docs/quality.md); averaging starts within budget
        assert "loss.gp_weight" not in paths and space.base["train"]["swa_start"] < space.steps
        assert "train.n_critic" not in paths  # two critic steps doubled a trial's time (the sweep's header)
        return
    assert "train.n_critic" in paths
    assert dict(next(p for p in space.params if p.path == "loss.gp_weight").when) == {"loss.kind": ("wgan_gp",)}


def test_a_path_metric_objective_runs_path_metrics_at_every_evaluation(tmp_path):
    from infgan.tune.wandb_file import sweep_config

    doc = {
        "metric": "val/disc",
        "parameters": {"train.generator_lr": {"type": "loguniform", "low": 1e-3, "high": 1e-1}},
    }
    space = parse_space(doc, "s.yaml")
    assert space.base["eval"]["path_metrics"] == "disc"  # val/disc at every evaluation, the others at the end
    assert space.trial_config({"train.generator_lr": 0.01}).eval.path_metrics == "disc"
    exported = sweep_config(space)
    assert exported["metric"] == {"name": "val/disc", "goal": "minimize"}
    assert exported["parameters"]["eval"]["parameters"]["path_metrics"] == {"value": "disc"}
    assert parse_space({**doc, "metric": "val/pred_ratio"}, "s.yaml").base["eval"]["path_metrics"] == "pred"
    assert parse_space({**doc, "metric": "val/score"}, "s.yaml").base["eval"]["path_metrics"] == "end"


@pytest.mark.parametrize("judge, mode", [("last", "min"), ("best", "min"), ("best", "max")])
def test_asha_judges_the_value_at_the_rung_or_the_best_so_far(tmp_path, judge, mode):
    from infgan.tune.schedulers import PersistentASHA

    asha = PersistentASHA(str(tmp_path / "asha.json"), judge=judge, metric="val/score", mode=mode, max_t=10)
    seen = [asha.judged("t1", {"val/score": v, "step": i})["val/score"] for i, v in enumerate([3.0, 1.0, 2.0])]
    if judge == "last":
        assert seen == [3.0, 1.0, 2.0]
    else:
        assert seen == ([3.0, 1.0, 1.0] if mode == "min" else [3.0, 3.0, 3.0])
    assert asha.judged("t2", {"step": 1}) == {"step": 1}  # a record without the metric passes as it is


def test_a_base_value_outside_its_domain_is_left_to_the_searcher():
    """families.yaml sweeps data.dataset over four families from a base on ou: its first point keeps
    the base's learning rates but not its dataset, which Optuna then samples (it refused 'ou')."""
    space = load_space("search_spaces/families.yaml")
    (first,) = space.first_points()
    assert "data.dataset" not in first and set(first) == {"train.generator_lr", "train.critic_lr"}
    assert all(p.contains(first[p.path]) for p in space.params if p.path in first)
    assert not next(p for p in space.params if p.path == "data.dataset").contains("ou")


def test_confirm_is_read_and_refused_in_one_line():
    space = parse_space({**GOOD, "confirm": {"top": 2, "seeds": 3}}, "s")
    assert (space.confirm_top, space.confirm_seeds) == (2, 3)
    for bad in ({"top": 0, "seeds": 3}, {"top": 2}, {"top": 2, "seeds": "x"}):
        with pytest.raises(ConfigError, match="confirm"):
            parse_space({**GOOD, "confirm": bad}, "s")


def test_the_confirmed_best_is_the_best_median_not_the_luckiest_seed(tmp_path):
    """Config a has the single best seed, config b the better median: b is chosen."""
    import json

    from infgan.tune.results import confirmed, fresh_seeds

    values = {"a": [0.1, 0.9, 0.8], "b": [0.3, 0.35, 0.4]}
    for of, vals in values.items():
        for i, v in enumerate(vals):
            d = tmp_path / "confirm" / f"{of}{i}"
            d.mkdir(parents=True)
            (d / "confirm.json").write_text(json.dumps({"of": of, "seed": 5 + i, "params": {}}))
            (d / "metrics.jsonl").write_text(json.dumps({"step": 8, "val/score": v}) + "\n")
            (d / "summary.json").write_text("{}")
    ranked = confirmed(tmp_path, "val/score", "min")
    assert [c.of for c in ranked] == ["b", "a"] and ranked[0].median == 0.35
    assert [c.of for c in confirmed(tmp_path, "val/score", "max")] == ["a", "b"]
    space = parse_space({**GOOD, "confirm": {"top": 1, "seeds": 2}}, "s", {"seed": 4})
    assert fresh_seeds(space, [{"seed": 7}, {}], 2) == [8, 9]


@pytest.mark.parametrize("scheduler", ["pbt", "pb2"])
def test_a_population_scheduler_on_the_command_line_sets_the_spaces_searcher_aside(monkeypatch, capsys, scheduler):
    """The default space's searcher is W&B's (for its hyperband); --scheduler pbt draws its own population."""
    import infgan.tune.run
    from infgan.tune.space import check_scheduler

    started = []
    monkeypatch.setattr(
        infgan.tune.run, "run_sweep", lambda space, *a, **k: started.append(check_scheduler(space) or space)
    )
    monkeypatch.setattr("infgan.tune.report.build_report", lambda exp: None)
    assert load_space(None).searcher == "wandb-bayes"
    assert main(["tune", "--scheduler", scheduler, "--storage", "unused"]) == 0
    (space,) = started
    assert space.scheduler == scheduler and space.searcher == "random"
    first = capsys.readouterr().out.splitlines()[0]
    assert f"--scheduler {scheduler} draws its own population" in first and "wandb-bayes is not used" in first
    assert main(["tune", "--scheduler", scheduler, "--searcher", "wandb-bayes"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"drop --searcher wandb-bayes: infgan tune --scheduler {scheduler}" in err[0]


def test_a_space_written_with_the_critics_old_names_searches_the_new_ones():
    old = {
        **GOOD,
        "parameters": {
            **GOOD["parameters"],
            "train.discriminator_optimizer": {"type": "choice", "values": ["adam", "adadelta"]},
            "train.discriminator_lr": {
                "type": "loguniform",
                "low": 1e-3,
                "high": 1e-1,
                "when": {"train.discriminator_optimizer": "adam"},
            },
        },
        "points": [{"train.discriminator_lr": 0.01, "train.discriminator_optimizer": "adam"}],
    }
    space = parse_space(old, "s")
    paths = {p.path for p in space.params}
    assert {"train.critic_lr", "train.critic_optimizer"} <= paths and not any("discriminator" in p for p in paths)
    lr = next(p for p in space.params if p.path == "train.critic_lr")
    assert lr.when == (("train.critic_optimizer", ("adam",)),)
    assert space.points == ({"train.critic_lr": 0.01, "train.critic_optimizer": "adam"},)
    twice = copy.deepcopy(old)
    twice["parameters"]["train.critic_lr"] = {"type": "uniform", "low": 0.1, "high": 0.2}
    with pytest.raises(ConfigError, match="'train.discriminator_lr' is the old name of 'train.critic_lr'"):
        parse_space(twice, "s")
