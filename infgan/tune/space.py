"""Search-space files: YAML -> a validated SearchSpace -> an Optuna define-by-run function.

A space names config paths (`train.generator_lr`) and is checked against the config classes when
loaded, so a typo fails in a second, before any cluster time is spent. The format:

    base: {config: reference, overrides: {data: {t_size: 32}}}   # preset or file, then overrides
    metric: val/score            # reported metric to optimise (default val/score)
    mode: min                    # min or max (default min)
    samples: 16                  # trials (default 16)
    seed: 0                      # searcher seed
    budget: {steps: 600, eval_every: 50}    # per-trial train.steps and evaluation interval
    asha: {grace_period: 100, reduction_factor: 3, judge: last}   # steps; judge: last or best (so far)
    searcher: tpe                # tpe, random (Optuna), wandb-bayes, wandb-random (W&B's engine)
    scheduler: asha              # asha, wandb-hyperband (W&B's early_terminate), none, pbt or pb2
    pbt: {perturbation_interval: 200, quantile: 0.25, resample_probability: 0.25, synch: false}   # pbt/pb2 only
    resources: {workers_per_trial: 1, cpus_per_worker: 1, gpus_per_worker: 0}
    points: [{train.n_critic: 5}]  # extra configs evaluated right after the base config's own
    confirm: {top: 2, seeds: 3}  # after the search, the 2 best configs train again on 3 fresh seeds
    parameters:
      train.generator_lr: {type: loguniform, low: 1.0e-3, high: 1.0e-1}
      train.n_critic: {type: choice, values: [1, 2, 5]}
      model.hidden_size: {type: int, low: 8, high: 32, log: true}
      train.swa_start: {type: uniform, low: 0.0, high: 1.0}     # floats only
      loss.gp_weight: {type: loguniform, low: 1.0, high: 100.0, when: {loss.kind: wgan_gp}}

`when` makes a parameter conditional: it is sampled only when its parent (another `choice`
parameter, anywhere in the file) takes one of the given values; otherwise the base config's
value holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from infgan.config import (
    Config,
    ConfigError,
    build,
    check_sections,
    check_value,
    config_paths,
    current_paths,
    flatten,
    merge,
    read_yaml,
    resolve,
    to_dict,
    unflatten,
)
from infgan.objective import PATH_METRICS, computed_by, is_reported
from infgan.tune.params import Param, applied, parse_parameters
from infgan.tune.spec import (
    CONFIRM_REFUSAL,
    METRIC_REFUSAL,
    Asha,
    Budget,
    Confirm,
    Pbt,
    Resources,
    Settings,
)
from infgan.tune.spec import SCHEDULERS as SCHEDULER_KINDS

DEFAULT_SPACE = Path(__file__).resolve().parents[2] / "search_spaces" / "ou.yaml"
SCHEDULERS = tuple(SCHEDULER_KINDS)
# The parameters a population scheduler may change during training (continuous ones among these):
# rates, weight decays, the averaging decay, the kernel term's weight and scale, the penalty's weight.
# Anything that changes a shape (model sizes, data, batch size, loss kind) is fixed per member.
MUTABLE = (
    "train.generator_lr",
    "train.critic_lr",
    "train.generator_weight_decay",
    "train.critic_weight_decay",
    "train.ema_decay",
    "loss.sig_weight",
    "loss.gp_weight",
    "loss.sig_sigma",
    "loss.sig_scale",
)
_KEYS = {
    "base",
    "metric",
    "mode",
    "samples",
    "seed",
    "budget",
    "asha",
    "searcher",
    "scheduler",
    "resources",
    "points",
    "parameters",
    "confirm",
    "pbt",
}


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space: `base` is the full config every trial starts from, `params` what is
    searched, and the sweep's settings (`infgan/tune/spec.py`), their defaults derived from the base."""

    name: str
    base: dict[str, Any]
    params: tuple[Param, ...]
    metric: str = "val/score"
    mode: str = "min"
    samples: int = 16
    seed: int = 0
    searcher: str = "tpe"
    scheduler: str = "asha"
    points: tuple[dict[str, Any], ...] = field(default=())
    budget: Budget = field(default_factory=lambda: Budget(600, 50))
    asha: Asha = field(default_factory=lambda: Asha(100))
    pbt: Pbt = field(default_factory=lambda: Pbt(200))
    resources: Resources = field(default_factory=Resources)
    confirm: Confirm = field(default_factory=Confirm)

    # Short read-only names for the sections' values, as the driver, the trials and the report read them.
    steps = property(lambda self: int(self.budget.steps))
    eval_every = property(lambda self: int(self.budget.eval_every))
    grace_period = property(lambda self: int(self.asha.grace_period))
    reduction_factor = property(lambda self: self.asha.reduction_factor)
    judge = property(lambda self: self.asha.judge)
    workers_per_trial = property(lambda self: self.resources.workers_per_trial)
    cpus_per_worker = property(lambda self: self.resources.cpus_per_worker)
    gpus_per_worker = property(lambda self: self.resources.gpus_per_worker)
    confirm_top = property(lambda self: self.confirm.top)
    confirm_seeds = property(lambda self: self.confirm.seeds)
    pbt_interval = property(lambda self: int(self.pbt.perturbation_interval))
    pbt_quantile = property(lambda self: self.pbt.quantile)
    pbt_resample = property(lambda self: self.pbt.resample_probability)
    pbt_synch = property(lambda self: self.pbt.synch)

    def trial_config(self, sampled: Mapping[str, Any]) -> Config:
        """The full config of a trial with these sampled values."""
        return resolve(self.base, unflatten(dict(sampled)))

    def search_config(self, tune_config: Mapping[str, Any]) -> Config:
        """The config a search trial trains with, from the config Tune holds for it (the trial and the W&B
        callback read it here). In a sweep that confirms, without the final plots: they cost a search
        trial seconds of its minute, and one looks at the winners, whose confirmation runs draw them as
        the base says (`infgan evaluate TRIAL` draws any trial's diagnostics)."""
        values = self.sampled(tune_config)
        if self.confirm_top:
            values["eval.plots"] = False
        return self.trial_config(values)

    def sampled(self, tune_config: Mapping[str, Any]) -> dict[str, Any]:
        """A trial's sampled values from the config Tune holds for it: a population member's (PBT, PB2)
        sit under "member", as the scheduler last set them. The one way every reader (the trial, the
        W&B callback) turns Tune's config into the values `trial_config` takes."""
        return dict(tune_config["member"]) if SCHEDULER_KINDS[self.scheduler].population else dict(tune_config)

    def applied(self, sampled: Mapping[str, Any]) -> dict[str, Any]:
        """The sampled values that applied to a trial (see `applied`)."""
        return applied(self.params, sampled, self.base["loss"]["kind"])

    def first_points(self) -> list[dict[str, Any]]:
        """The base config's own values (active parameters only), then the space's `points`.

        A base value outside its parameter's domain (not one of a `choice`'s values, a number out of
        its range) is left out (the searcher samples that one): a sweep of `data.dataset` over four
        families from a base on `ou` still starts from the base's other values. A first point left with
        nothing is dropped.
        """
        base = flatten(self.base)
        out = []
        for extra in ({}, *self.points):
            chosen: dict[str, Any] = {}
            for p in self.params:
                if not p.active(chosen):
                    continue
                if p.path in extra:
                    chosen[p.path] = extra[p.path]
                elif p.contains(base[p.path]):
                    # A base value outside its parameter's domain is left to the searcher: Optuna
                    # refuses a choice outright, and a number out of range it runs once but cannot
                    # take back when the sweep is resumed ("isn't contained in the distribution").
                    chosen[p.path] = base[p.path]
            if chosen:
                out.append(chosen)
        return out


def mutable(space: SearchSpace) -> list[Param]:
    """The parameters PBT may change during training: continuous ones of `MUTABLE`."""
    return [p for p in space.params if p.path in MUTABLE and p.type in ("uniform", "loguniform")]


def check_scheduler(space: SearchSpace) -> None:
    """What a population scheduler (pbt, pb2) needs of the space, refused in one line before Ray."""
    if not SCHEDULER_KINDS[space.scheduler].population:
        return
    if space.searcher not in ("tpe", "random"):
        raise ConfigError(
            f"scheduler {space.scheduler} draws its population itself (Optuna's random sampler): it takes no "
            f"searcher; use searcher tpe or random (the default), not {space.searcher}"
        )
    if space.pbt_interval >= space.steps:
        raise ConfigError(
            f"pbt.perturbation_interval ({space.pbt_interval}) must be below budget.steps ({space.steps}): "
            "at that interval no member is ever perturbed"
        )
    if not mutable(space):
        raise ConfigError(
            f"scheduler {space.scheduler} needs a continuous parameter it can change during training, one of "
            f"{', '.join(MUTABLE)} (uniform or loguniform); parameters that change a shape stay fixed per member"
        )


def parse_space(data: Any, name: str, sets: Mapping[str, Any] | None = None) -> SearchSpace:
    """Validate a space document (already parsed YAML); `sets` are extra base overrides."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{name}: a search space must be a mapping with 'parameters'")
    unknown = set(data) - _KEYS
    if unknown:
        raise ConfigError(f"{name}: unknown key '{sorted(unknown)[0]}'; allowed: {', '.join(sorted(_KEYS))}")
    base_cfg = _base(data.get("base"), name, sets)
    try:
        spec = build(Settings, {k: v for k, v in data.items() if k not in ("base", "parameters", "points")}, noun="key")
    except ConfigError as e:
        raise ConfigError(f"{name}: {e}") from None
    params = parse_parameters(data.get("parameters"), name, base_cfg.loss.kind)
    sections = _derived(spec, base_cfg, name)
    budget = sections["budget"]
    # Each trial trains the budget and evaluates (and checkpoints) at every report; a sweep that
    # optimises a path-level metric needs it at every evaluation, the others only at the end (at the
    # default sizes val/pred and val/sig_mmd are a third of the path metrics' cost, docs/search.md).
    evaluation: dict[str, Any] = {"every": budget.eval_every}
    if base_cfg.eval.threads == 0:  # a trial's classifiers on the CPUs Ray gives its worker, not on every core
        evaluation["threads"] = max(1, int(spec.resources.cpus_per_worker))
    if spec.metric in PATH_METRICS:
        evaluation["path_metrics"] = computed_by(spec.metric)
    settings = {k: getattr(spec, k) for k in ("metric", "mode", "samples", "seed", "searcher", "scheduler")}
    space = SearchSpace(
        name=name,
        base=merge(
            to_dict(base_cfg),
            {"train": {"steps": budget.steps}, "eval": evaluation, "checkpoint": {"every": budget.eval_every}},
        ),
        params=params,
        points=_points(data.get("points"), {p.path: p for p in params}, name),
        **settings,
        **sections,
    )
    check_scheduler(space)
    for point in space.first_points():
        cfg = space.trial_config(point)  # every first point must make a valid config
        if space.resources.workers_per_trial > 1:
            from infgan.train.distributed import check_request

            check_request(cfg, space.workers_per_trial, space.gpus_per_worker, space.cpus_per_worker)
    return space


def _base(spec: Any, name: str, sets: Mapping[str, Any] | None) -> Config:
    """The base config every trial starts from: `base: {config: PRESET or FILE, overrides: {...}}`."""
    spec = spec or {}
    if not isinstance(spec, Mapping) or set(spec) - {"config", "overrides"}:
        raise ConfigError(f"{name}: 'base' takes 'config' (a preset or file) and 'overrides'")
    overrides = spec.get("overrides") or {}
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{name}: 'base.overrides' must be a mapping of config sections, got {overrides!r}")
    check_sections(overrides, f"{name}: base.overrides")
    return resolve(overrides, sets, source=spec.get("config"), given=f"{name}: base")


def _derived(spec: Settings, base: Config, name: str) -> dict[str, Any]:
    """The spec's sections with what was not given derived from the base config, and the checks
    that join two settings."""
    steps = spec.budget.steps or base.train.steps
    eval_every = spec.budget.eval_every or base.eval.every
    grace = spec.asha.grace_period or max(eval_every, steps // 6)
    if grace > steps:
        raise ConfigError(
            f"{name}: need budget.steps >= 1, budget.eval_every >= 1, 1 <= asha.grace_period <= "
            f"budget.steps and asha.reduction_factor >= 2"
        )
    interval = spec.pbt.perturbation_interval or 4 * eval_every
    while spec.pbt.perturbation_interval is None and interval >= steps and interval > eval_every:
        interval -= eval_every  # the default: every 4 evaluations, or as many as fit inside the budget
    if interval % eval_every:
        raise ConfigError(
            f"{name}: pbt.perturbation_interval must be a positive multiple of budget.eval_every ({eval_every}); "
            f"got {interval}"
        )
    if (spec.confirm.top == 0) != (spec.confirm.seeds == 0):
        raise ConfigError(f"{name}: {CONFIRM_REFUSAL.format(value=spec.confirm)}")
    if not is_reported(spec.metric):
        raise ConfigError(f"{name}: {METRIC_REFUSAL.format(value=spec.metric)}")
    return {
        "budget": Budget(steps, eval_every),
        "asha": replace(spec.asha, grace_period=grace),
        "pbt": replace(spec.pbt, perturbation_interval=interval),
        "resources": spec.resources,
        "confirm": spec.confirm,
    }


def _points(points: Any, params: dict[str, Param], name: str) -> tuple[dict[str, Any], ...]:
    """The space's `points`: each a mapping of searched parameters to values in their domains."""
    points = points or []
    if not isinstance(points, list) or not all(isinstance(p, Mapping) for p in points):
        raise ConfigError(f"{name}: 'points' must be a list of mappings of parameter paths to values")
    paths = config_paths()
    points = [current_paths(p, f"{name}: points") for p in points]
    for p in points:
        for k, v in p.items():
            if k not in params:
                raise ConfigError(f"{name}: points: '{k}' is not a searched parameter")
            check_value(k, paths[k][0], v, paths[k][1])
            if params[k].type == "choice" and not params[k].contains(v):
                allowed = ", ".join(map(str, params[k].values))
                raise ConfigError(f"{name}: points: '{k}' {v!r} is not one of its values ({allowed})")
    return tuple(dict(p) for p in points)


def load_space(
    path: str | None, sets: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None
) -> SearchSpace:
    """Read and validate a space file (None = the shipped default OU space); `overrides` replace the
    file's own settings (`infgan tune`'s flags: `{"samples": 4, "resources": {"workers_per_trial": 2}}`)."""
    path = space_path(path)
    return parse_space(read_space(path, overrides), path, sets)


def space_path(path: str | None) -> str:
    """The space file to read: `path`, or the shipped default OU space."""
    if path is not None:
        return path
    if not DEFAULT_SPACE.exists():
        raise ConfigError(
            f"the default space {DEFAULT_SPACE} is missing (installed without the repository?); pass a SPACE.yaml"
        )
    return str(DEFAULT_SPACE)


def read_space(path: str, overrides: Mapping[str, Any] | None = None) -> Any:
    """A space file's document, with `overrides` merged over its settings (a None value removes one)."""
    doc = read_yaml(path)
    if not overrides or not isinstance(doc, Mapping):
        return doc
    merged = merge(doc, {k: v for k, v in overrides.items() if v is not None})
    return {k: v for k, v in merged.items() if not (k in overrides and overrides[k] is None)}
