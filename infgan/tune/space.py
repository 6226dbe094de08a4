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

import math
from collections.abc import Iterable, Mapping
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
    critic_paths,
    current_paths,
    flatten,
    merge,
    numeric_string,
    read_yaml,
    resolve,
    to_dict,
    unflatten,
)
from infgan.config.kinds import needs_critic
from infgan.objective import PATH_METRICS, is_reported
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
TYPES = ("choice", "uniform", "loguniform", "int")
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
class Param:
    """One searched config path and its distribution."""

    path: str
    type: str
    values: tuple = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    when: tuple[tuple[str, tuple], ...] = ()  # ((parent path, allowed values), ...)

    def active(self, chosen: Mapping[str, Any]) -> bool:
        """Whether this parameter is sampled, given the values chosen for its parents."""
        return all(chosen.get(parent) in allowed for parent, allowed in self.when)

    def contains(self, value: Any) -> bool:
        """Whether `value` lies in this parameter's domain."""
        if self.type == "choice":
            return value in self.values
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return self.low <= value <= self.high and (self.type != "int" or float(value).is_integer())

    @classmethod
    def from_record(cls, d: Mapping[str, Any]) -> Param:
        """A parameter as sweep.yaml records it (`distributions`)."""
        when = tuple((k, tuple(v)) for k, v in d.get("when", {}).items())
        return cls(d["path"], d["type"], tuple(d.get("values", ())), d["low"], d["high"], d["log"], when)

    def suggest(self, trial: Any) -> Any:
        """Sample this parameter from an Optuna trial."""
        if self.type == "choice":
            return trial.suggest_categorical(self.path, list(self.values))
        if self.type == "int":
            return trial.suggest_int(self.path, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.path, self.low, self.high, log=self.type == "loguniform")


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

    # The sections' values under the names the code used before the sections (read-only).
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


def applied(params: Iterable[Param], sampled: Mapping[str, Any], base_kind: str) -> dict[str, Any]:
    """The values of `sampled` that applied to a trial: those of parameters whose `when` holds, and a
    critic's settings only where the trial's loss kind trains a critic. A trial carries every
    parameter (a PBT member, or a W&B proposal, has values for conditions that do not hold); what
    did not apply is left out of what a sweep shows."""
    critic = set(critic_paths()) if not needs_critic(sampled.get("loss.kind", base_kind)) else set()
    return {p.path: sampled[p.path] for p in params if p.path in sampled and p.active(sampled) and p.path not in critic}


class DefineByRun:
    """Optuna define-by-run space: conditional parameters are sampled only under their parent."""

    def __init__(self, params: tuple[Param, ...]):
        self.params = params

    def __call__(self, trial: Any) -> None:
        chosen: dict[str, Any] = {}
        for p in self.params:
            if p.active(chosen):
                chosen[p.path] = p.suggest(trial)


def _number(where: str, value: Any) -> float:
    if numeric_string(value):
        value = float(value)  # YAML 1.1 reads 1e-4 as a string
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number, got {value!r}")
    return float(value)


def _param(path: str, spec: Any, paths: dict[str, Any]) -> Param:
    """Validate one `parameters` entry (its `when` is checked by `_conditions`)."""
    where = f"parameters.{path}"
    if path not in paths:
        close = [p for p in paths if p.split(".")[-1] == path.split(".")[-1]]
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"{where}: unknown config path '{path}'{hint}")
    if not isinstance(spec, Mapping) or spec.get("type") not in TYPES:
        got = spec.get("type") if isinstance(spec, Mapping) else spec
        raise ConfigError(f"{where}: 'type' must be one of {', '.join(TYPES)}; got {got!r}")
    allowed = {"choice": {"type", "values", "when"}}.get(spec["type"], {"type", "low", "high", "log", "when"})
    extra = set(spec) - allowed
    if extra:
        raise ConfigError(
            f"{where}: unknown key '{sorted(extra)[0]}' for type {spec['type']}; allowed: {', '.join(sorted(allowed))}"
        )
    tp, meta = paths[path]
    kind = spec["type"]
    if kind == "choice":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: a choice needs a non-empty list 'values'")
        values = tuple(check_value(path, tp, v, meta) for v in values)
        param = Param(path, kind, values=values)
    else:
        if tp not in (int, float):
            raise ConfigError(f"{where}: '{path}' is not numeric; use type: choice")
        if kind != "int" and tp is int:
            raise ConfigError(f"{where}: '{path}' is an integer; use type: int or choice")
        if kind == "int" and tp is not int:
            raise ConfigError(f"{where}: '{path}' is a float; use uniform or loguniform")
        low, high = _number(f"{where}.low", spec.get("low")), _number(f"{where}.high", spec.get("high"))
        if kind == "int" and (low != int(low) or high != int(high)):
            raise ConfigError(f"{where}: low and high of an int range must be integers")
        if not low < high:
            raise ConfigError(f"{where}: empty range: low ({low:g}) must be < high ({high:g})")
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise ConfigError(f"{where}.log must be true or false")
        if (kind == "loguniform" or log) and low <= 0:
            raise ConfigError(f"{where}: a log-scale range needs low > 0, got {low:g}")
        for bound in (low, high):
            check_value(path, tp, int(bound) if tp is int else bound, meta)
        param = Param(path, kind, low=low, high=high, log=log)
    return param


def _conditions(path: str, spec: Mapping[str, Any], params: dict[str, Param]) -> tuple:
    """Validate `when`: each parent is another choice parameter, each value one of its choices."""
    where = f"parameters.{path}.when"
    when = spec.get("when") or {}
    if not isinstance(when, Mapping):
        raise ConfigError(f"{where} must map a parent parameter to a value or list of values")
    conds = []
    for parent, vals in current_paths(when, where).items():
        vals = tuple(vals) if isinstance(vals, list) else (vals,)
        if parent == path or parent not in params or params[parent].type != "choice":
            raise ConfigError(f"{where}: parent '{parent}' must be another choice parameter of this space")
        missing = [v for v in vals if v not in params[parent].values]
        if missing:
            raise ConfigError(f"{where}: {missing[0]!r} is not one of {parent}'s values {list(params[parent].values)}")
        conds.append((parent, vals))
    return tuple(conds)


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


def _check_critic_params(params: dict[str, Param], base_kind: str) -> None:
    """A critic setting may be searched only where every loss kind it is sampled under trains a critic."""
    kind = params.get("loss.kind")
    kinds = kind.values if kind is not None else (base_kind,)
    critic = set(critic_paths())
    for p in params.values():
        if p.path not in critic:
            continue
        under = dict(p.when).get("loss.kind", kinds)
        without = [k for k in under if not needs_critic(k)]
        if without:
            with_critic = [k for k in kinds if needs_critic(k)]
            fix = f"add when: {{loss.kind: [{', '.join(with_critic)}]}}" if with_critic else "remove it"
            raise ConfigError(
                f"parameters.{p.path}: a critic setting, searched where loss.kind can be {without[0]}, which trains "
                f"no critic; {fix}"
            )


def _parents_first(params: dict[str, Param]) -> tuple[Param, ...]:
    """Order parameters so every parent is sampled before its children (file order otherwise)."""
    ordered: list[Param] = []
    placed: set[str] = set()
    while len(ordered) < len(params):
        ready = [p for p in params.values() if p.path not in placed and all(q in placed for q, _ in p.when)]
        if not ready:
            cycle = [p for p in params if p not in placed]
            raise ConfigError(f"parameters: conditions form a cycle among {', '.join(cycle)}")
        for p in ready:
            ordered.append(p)
            placed.add(p.path)
    return tuple(ordered)


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
    params = _parameters(data.get("parameters"), name, base_cfg.loss.kind)
    sections = _derived(spec, base_cfg, name)
    budget = sections["budget"]
    # Each trial trains the budget and evaluates (and checkpoints) at every report; a sweep that
    # optimises a path-level metric needs it at every evaluation, not only at the end.
    evaluation: dict[str, Any] = {"every": budget.eval_every}
    if base_cfg.eval.threads == 0:  # a trial's classifiers on the CPUs Ray gives its worker, not on every core
        evaluation["threads"] = max(1, int(spec.resources.cpus_per_worker))
    if spec.metric in PATH_METRICS:
        evaluation["path_metrics"] = "every"
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


def _parameters(spec: Any, name: str, base_kind: str) -> tuple[Param, ...]:
    """The searched parameters, parents before their children."""
    if not isinstance(spec, Mapping) or not spec:
        raise ConfigError(f"{name}: 'parameters' must map config paths to distributions")
    paths = config_paths()
    spec = current_paths(spec, "parameters")
    params = {path: _param(path, one, paths) for path, one in spec.items()}
    params = {path: replace(p, when=_conditions(path, spec[path], params)) for path, p in params.items()}
    _check_critic_params(params, base_kind)
    return _parents_first(params)


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
