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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infgan.config import (
    Config,
    ConfigError,
    check_sections,
    check_value,
    config_paths,
    critic_paths,
    flatten,
    merge,
    numeric_string,
    read_yaml,
    resolve,
    to_dict,
    unflatten,
)
from infgan.config.kinds import needs_critic
from infgan.objective import MODES, PATH_METRICS, SCORE_METRICS, is_reported
from infgan.tune.spec import JUDGES, SEARCHERS
from infgan.tune.spec import SCHEDULERS as SCHEDULER_KINDS

DEFAULT_SPACE = Path(__file__).resolve().parents[2] / "search_spaces" / "ou.yaml"
TYPES = ("choice", "uniform", "loguniform", "int")
SCHEDULERS = tuple(SCHEDULER_KINDS)
# The parameters a population scheduler may change during training (continuous ones among these):
# rates, weight decays, the averaging decay, the kernel term's weight and scale, the penalty's weight.
# Anything that changes a shape (model sizes, data, batch size, loss kind) is fixed per member.
MUTABLE = (
    "train.generator_lr",
    "train.discriminator_lr",
    "train.generator_weight_decay",
    "train.discriminator_weight_decay",
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

    def suggest(self, trial: Any) -> Any:
        """Sample this parameter from an Optuna trial."""
        if self.type == "choice":
            return trial.suggest_categorical(self.path, list(self.values))
        if self.type == "int":
            return trial.suggest_int(self.path, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.path, self.low, self.high, log=self.type == "loguniform")


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space; `base` is the full config every trial starts from."""

    name: str
    base: dict[str, Any]
    params: tuple[Param, ...]
    metric: str = "val/score"
    mode: str = "min"
    samples: int = 16
    seed: int = 0
    steps: int = 600
    eval_every: int = 50
    grace_period: int = 100
    reduction_factor: int = 3
    judge: str = "last"
    searcher: str = "tpe"
    scheduler: str = "asha"
    workers_per_trial: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    points: tuple[dict[str, Any], ...] = field(default=())
    confirm_top: int = 0  # after the search: the best `confirm_top` configs ...
    confirm_seeds: int = 0  # ... each trained again on this many seeds the search did not use
    pbt_interval: int = 0  # pbt/pb2: steps between perturbations
    pbt_quantile: float = 0.25  # pbt/pb2: the bottom (and top) fraction of the population
    pbt_resample: float = 0.25  # pbt: probability of resampling a parameter instead of perturbing it
    pbt_synch: bool = False  # pbt/pb2: perturb once every member has reached the interval (Ray's `synch`)

    def trial_config(self, sampled: Mapping[str, Any]) -> Config:
        """The full config of a trial with these sampled values."""
        return resolve(self.base, unflatten(dict(sampled)))

    def sampled(self, tune_config: Mapping[str, Any]) -> dict[str, Any]:
        """A trial's sampled values from the config Tune holds for it: a population member's (PBT, PB2)
        sit under "member", as the scheduler last set them. The one way every reader (the trial, the
        W&B callback) turns Tune's config into the values `trial_config` takes."""
        return dict(tune_config["member"]) if SCHEDULER_KINDS[self.scheduler].population else dict(tune_config)

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
    for parent, vals in when.items():
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


def _section(data: Mapping[str, Any], key: str, allowed: dict[str, tuple[type, ...]]) -> dict[str, Any]:
    sec = data.get(key) or {}
    if not isinstance(sec, Mapping):
        raise ConfigError(f"'{key}' must be a mapping")
    for k, v in sec.items():
        if k not in allowed:
            raise ConfigError(f"unknown key '{key}.{k}'; allowed: {', '.join(key + '.' + a for a in allowed)}")
        if (isinstance(v, bool) and bool not in allowed[k]) or not isinstance(v, allowed[k]):
            kind = (
                "a number"
                if float in allowed[k]
                else "a string"
                if str in allowed[k]
                else "true or false"
                if bool in allowed[k]
                else "an integer"
            )
            raise ConfigError(f"'{key}.{k}' must be {kind}, got {v!r}")
    return dict(sec)


def parse_space(data: Any, name: str, sets: Mapping[str, Any] | None = None) -> SearchSpace:
    """Validate a space document (already parsed YAML); `sets` are extra base overrides."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{name}: a search space must be a mapping with 'parameters'")
    unknown = set(data) - _KEYS
    if unknown:
        raise ConfigError(f"{name}: unknown key '{sorted(unknown)[0]}'; allowed: {', '.join(sorted(_KEYS))}")
    base_spec = data.get("base") or {}
    if not isinstance(base_spec, Mapping) or set(base_spec) - {"config", "overrides"}:
        raise ConfigError(f"{name}: 'base' takes 'config' (a preset or file) and 'overrides'")
    overrides = base_spec.get("overrides") or {}
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{name}: 'base.overrides' must be a mapping of config sections, got {overrides!r}")
    check_sections(overrides, f"{name}: base.overrides")
    base_cfg = resolve(overrides, sets, source=base_spec.get("config"), given=f"{name}: base")
    budget = _section(data, "budget", {"steps": (int,), "eval_every": (int,)})
    asha = _section(data, "asha", {"grace_period": (int,), "reduction_factor": (int,), "judge": (str,)})
    if asha.get("judge", "last") not in JUDGES:
        raise ConfigError(f"'asha.judge' must be one of {', '.join(JUDGES)}, got {asha['judge']!r}")
    res = _section(
        data,
        "resources",
        {"workers_per_trial": (int,), "cpus_per_worker": (int, float), "gpus_per_worker": (int, float)},
    )
    params_spec = data.get("parameters")
    if not isinstance(params_spec, Mapping) or not params_spec:
        raise ConfigError(f"{name}: 'parameters' must map config paths to distributions")
    paths = config_paths()
    params = {str(path): _param(str(path), spec, paths) for path, spec in params_spec.items()}
    params = {
        path: Param(**{**p.__dict__, "when": _conditions(path, params_spec[path], params)})
        for path, p in params.items()
    }
    _check_critic_params(params, base_cfg.loss.kind)
    steps = budget.get("steps", base_cfg.train.steps)
    eval_every = budget.get("eval_every", base_cfg.eval.every)
    grace, rf = asha.get("grace_period", max(eval_every, steps // 6)), asha.get("reduction_factor", 3)
    if steps < 1 or eval_every < 1 or not 1 <= grace <= steps or rf < 2:
        raise ConfigError(
            f"{name}: need budget.steps >= 1, budget.eval_every >= 1, 1 <= asha.grace_period <= "
            f"budget.steps and asha.reduction_factor >= 2"
        )
    searcher, scheduler = data.get("searcher", "tpe"), data.get("scheduler", "asha")
    if searcher not in SEARCHERS:
        raise ConfigError(f"{name}: 'searcher' must be one of {', '.join(SEARCHERS)}, got {searcher!r}")
    if scheduler not in SCHEDULERS:
        raise ConfigError(f"{name}: 'scheduler' must be one of {', '.join(SCHEDULERS)}, got {scheduler!r}")
    metric, mode = data.get("metric", "val/score"), data.get("mode", "min")
    if not isinstance(metric, str) or not is_reported(metric):
        raise ConfigError(
            f"{name}: 'metric' must be a metric training reports: {', '.join([*SCORE_METRICS, *PATH_METRICS])} "
            f"(or val/<channel>/marginal_w1|marginal_ks|cov_error); got {metric!r}"
        )
    if mode not in MODES:
        raise ConfigError(f"{name}: 'mode' must be {' or '.join(MODES)}, got {mode!r}")
    samples, seed = data.get("samples", 16), data.get("seed", 0)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ConfigError(f"{name}: 'samples' must be a positive integer, got {samples!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"{name}: 'seed' must be an integer >= 0, got {seed!r}")
    workers = res.get("workers_per_trial", 1)
    if workers < 1:
        raise ConfigError(f"{name}: resources.workers_per_trial must be >= 1")
    for key, least in (("cpus_per_worker", 0.0), ("gpus_per_worker", 0.0)):
        value = res.get(key, 1.0 if key == "cpus_per_worker" else 0.0)
        if not math.isfinite(value) or value < least or (key == "cpus_per_worker" and value == 0):
            need = "> 0" if key == "cpus_per_worker" else ">= 0"
            raise ConfigError(f"{name}: resources.{key} must be a number {need}, got {value!r}")
    pbt = _section(
        data,
        "pbt",
        {
            "perturbation_interval": (int,),
            "quantile": (int, float),
            "resample_probability": (int, float),
            "synch": (bool,),
        },
    )
    interval = pbt.get("perturbation_interval", 4 * eval_every)
    while "perturbation_interval" not in pbt and interval >= steps and interval > eval_every:
        interval -= eval_every  # the default: every 4 evaluations, or as many as fit inside the budget
    if interval < 1 or interval % eval_every or not 0 < pbt.get("quantile", 0.25) <= 0.5:
        raise ConfigError(
            f"{name}: pbt.perturbation_interval must be a positive multiple of budget.eval_every ({eval_every}) "
            f"and pbt.quantile in (0, 0.5]; got {interval} and {pbt.get('quantile', 0.25)}"
        )
    if not 0 <= pbt.get("resample_probability", 0.25) <= 1:
        raise ConfigError(f"{name}: pbt.resample_probability must be in [0, 1]")
    confirm = _section(data, "confirm", {"top": (int,), "seeds": (int,)})
    if confirm and (set(confirm) != {"top", "seeds"} or confirm["top"] < 1 or confirm["seeds"] < 1):
        raise ConfigError(f"{name}: 'confirm' takes top and seeds, both integers >= 1 (e.g. {{top: 2, seeds: 3}})")
    points = data.get("points") or []
    if not isinstance(points, list) or not all(isinstance(p, Mapping) for p in points):
        raise ConfigError(f"{name}: 'points' must be a list of mappings of parameter paths to values")
    for p in points:
        for k, v in p.items():
            if k not in params:
                raise ConfigError(f"{name}: points: '{k}' is not a searched parameter")
            check_value(k, paths[k][0], v, paths[k][1])
            if params[k].type == "choice" and not params[k].contains(v):
                allowed = ", ".join(map(str, params[k].values))
                raise ConfigError(f"{name}: points: '{k}' {v!r} is not one of its values ({allowed})")
    # Each trial trains the budget and evaluates (and checkpoints) at every report; a sweep that
    # optimises a path-level metric needs it at every evaluation, not only at the end.
    evaluation: dict[str, Any] = {"every": eval_every}
    if metric in PATH_METRICS:
        evaluation["path_metrics"] = "every"
    base = merge(
        to_dict(base_cfg),
        {"train": {"steps": steps}, "eval": evaluation, "checkpoint": {"every": eval_every}},
    )
    space = SearchSpace(
        name=name,
        base=base,
        params=_parents_first(params),
        metric=str(metric),
        mode=mode,
        samples=samples,
        seed=int(seed),
        steps=steps,
        eval_every=eval_every,
        grace_period=grace,
        reduction_factor=rf,
        judge=asha.get("judge", "last"),
        searcher=searcher,
        scheduler=scheduler,
        workers_per_trial=workers,
        cpus_per_worker=float(res.get("cpus_per_worker", 1.0)),
        gpus_per_worker=float(res.get("gpus_per_worker", 0.0)),
        points=tuple(dict(p) for p in points),
        confirm_top=int(confirm.get("top", 0)),
        confirm_seeds=int(confirm.get("seeds", 0)),
        pbt_interval=int(interval),
        pbt_quantile=float(pbt.get("quantile", 0.25)),
        pbt_resample=float(pbt.get("resample_probability", 0.25)),
        pbt_synch=bool(pbt.get("synch", False)),
    )
    check_scheduler(space)
    for point in space.first_points():
        cfg = space.trial_config(point)  # every first point must make a valid config
        if workers > 1:
            from infgan.train.distributed import check_request

            check_request(cfg, workers, space.gpus_per_worker, space.cpus_per_worker)
    return space


def load_space(path: str | None, sets: Mapping[str, Any] | None = None) -> SearchSpace:
    """Read and validate a space file (None = the shipped default OU space)."""
    if path is None:
        path = str(DEFAULT_SPACE)
        if not DEFAULT_SPACE.exists():
            raise ConfigError(
                f"the default space {DEFAULT_SPACE} is missing (installed without the repository?); pass a SPACE.yaml"
            )
    return parse_space(read_yaml(path), str(path), sets)
