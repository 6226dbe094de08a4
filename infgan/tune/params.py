"""A search space's `parameters`: each config path searched, its distribution and its `when`
conditions, checked against the config classes; which of a trial's values applied to it; and the
Optuna define-by-run function that samples them (parents before children)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from infgan.config import ConfigError, check_value, config_paths, critic_paths, current_paths, numeric_string
from infgan.config.kinds import needs_critic

TYPES = ("choice", "uniform", "loguniform", "int")


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


def parse_parameters(spec: Any, name: str, base_kind: str) -> tuple[Param, ...]:
    """The searched parameters, parents before their children."""
    if not isinstance(spec, Mapping) or not spec:
        raise ConfigError(f"{name}: 'parameters' must map config paths to distributions")
    paths = config_paths()
    spec = current_paths(spec, "parameters")
    params = {path: _param(path, one, paths) for path, one in spec.items()}
    params = {path: replace(p, when=_conditions(path, spec[path], params)) for path, p in params.items()}
    _check_critic_params(params, base_kind)
    return _parents_first(params)
