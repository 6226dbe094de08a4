"""Building a Config from nested overrides: every key and value checked and converted (numbers as
users write them, YAML's words, bounds, choices), with one-line `ConfigError`s; and the nested and
dotted shapes a config travels in (`to_dict`, `flatten`, `unflatten`, `merge`).
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from collections.abc import Mapping
from typing import Any

from infgan.config.schema import RENAMED, Config, ConfigError

_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def numeric_string(value: Any) -> bool:
    """Whether `value` is a string that reads as a number (`1e-4`: YAML 1.1 leaves it a string)."""
    return isinstance(value, str) and bool(_FLOAT.fullmatch(value.strip()))


def _type_name(tp: Any) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


def check_value(path: str, tp: Any, value: Any, meta: Mapping[str, Any]) -> Any:
    """Return `value` converted to `tp`, or raise ConfigError naming `path` (the field's `refusal`, when
    it has one). A field of type `X | None` takes what X takes: None is only ever its default."""
    try:
        return _checked(path, tp, value, meta)
    except ConfigError:
        if meta.get("refusal"):
            raise ConfigError(meta["refusal"].format(value=value)) from None
        raise


def _checked(path: str, tp: Any, value: Any, meta: Mapping[str, Any]) -> Any:
    args = typing.get_args(tp)
    if type(None) in args and len(args) == 2:  # X | None
        tp = next(a for a in args if a is not type(None))
    origin = typing.get_origin(tp)
    if origin is tuple and typing.get_args(tp)[-1] is Ellipsis:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"'{path}' must be a list, got {value!r}")
        item = typing.get_args(tp)[0]
        return tuple(check_value(f"{path}[{i}]", item, v, {}) for i, v in enumerate(value))
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"'{path}' must be a list of {len(args)} numbers, got {value!r}")
        return tuple(check_value(f"{path}[{i}]", a, v, {}) for i, (a, v) in enumerate(zip(args, value)))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if tp is float and numeric_string(value):
        value = float(value)  # YAML 1.1 reads 1e-4 and 1.0e6 as strings; users mean numbers
    if tp is str and isinstance(value, bool) and meta.get("choices"):
        # YAML reads off/on/no/yes as booleans: give back the word the choices use.
        words = [w for w in meta["choices"] if w in (("off", "no", "false") if not value else ("on", "yes", "true"))]
        value = words[0] if words else value
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        hint = ""
        if tp is int and numeric_string(value):
            number = float(value)
            hint = f" (write the whole number, e.g. {int(number)})" if number.is_integer() else ""
        raise ConfigError(f"'{path}' must be {_type_name(tp)}, got {value!r}{hint}")
    if tp is int and abs(value) > 2**53:
        raise ConfigError(f"'{path}' must be at most 2**53 in size, got {value!r}")
    if tp is float and not math.isfinite(value):
        raise ConfigError(f"'{path}' must be a finite number, got {value!r}")
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"'{path}' must be one of {', '.join(map(str, meta['choices']))}; got {value!r}")
    if meta.get("pattern") and not re.fullmatch(meta["pattern"], value):
        raise ConfigError(f"'{path}' must match {meta['pattern']} ({meta['help']}); got {value!r}")
    bounds = [
        ("ge", ">=", lambda a, b: a >= b),
        ("gt", ">", lambda a, b: a > b),
        ("lt", "<", lambda a, b: a < b),
        ("le", "<=", lambda a, b: a <= b),
    ]
    for key, sym, ok in bounds:
        if meta.get(key) is not None and not ok(value, meta[key]):
            raise ConfigError(f"'{path}' must be {sym} {meta[key]:g}, got {value!r}")
    return value


def build(cls: type, data: Any, prefix: str = "", noun: str = "config key") -> Any:
    """Build dataclass `cls` (settings whose fields are `option`s, sections nested) from a mapping of
    overrides, checking every key and value; an unknown key is named as an unknown `noun`."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        where = f"'{prefix.rstrip('.')}'" if prefix else "the config"
        raise ConfigError(f"{where} must be a mapping of keys to values, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        allowed = ", ".join(prefix + name for name in fields)
        raise ConfigError(f"unknown {noun} '{prefix}{unknown[0]}'; allowed: {allowed}")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            kwargs[name] = build(tp, value, f"{prefix}{name}.", noun)
        else:
            kwargs[name] = check_value(prefix + name, tp, value, fields[name].metadata)
    return cls(**kwargs)


def from_dict(data: Mapping[str, Any] | None) -> Config:
    """Build a Config from nested overrides (missing keys keep their defaults); `resolve` is the
    entry point, this its last step."""
    cfg = build(Config, data)
    if cfg.loss.sig_points == 1:
        raise ConfigError("'loss.sig_points' must be 0 (every point) or at least 2, got 1")
    if cfg.model.obs_noise_start == "data" and cfg.model.obs_noise == 0:
        raise ConfigError(
            "'model.obs_noise_start' data starts an observation noise that model.obs_noise 0 leaves out; "
            "set model.obs_noise > 0 (any value: the data's level replaces it) or obs_noise_start value"
        )
    if cfg.model.obs_noise_channels and cfg.model.obs_noise == 0:
        raise ConfigError(
            "'model.obs_noise_channels' picks channels for an observation noise that model.obs_noise 0 leaves "
            "out; set model.obs_noise > 0 or leave obs_noise_channels empty"
        )
    if not cfg.model.obs_noise_learn and cfg.model.obs_noise == 0:
        raise ConfigError(
            "'model.obs_noise_learn' false holds an observation noise that model.obs_noise 0 leaves out; "
            "set model.obs_noise > 0 or leave obs_noise_learn true"
        )
    d = cfg.data
    if cfg.loss.fdm_times > d.t_size:
        raise ConfigError(
            f"'loss.fdm_times' {cfg.loss.fdm_times} needs at least as many time points; data.t_size is {d.t_size}"
        )
    if d.dims > 1 and d.correlation <= -1 / (d.dims - 1):
        # Every pair at rho: the correlation matrix is positive definite only for rho > -1/(dims - 1).
        raise ConfigError(
            f"'data.correlation' {d.correlation:g} is impossible for {d.dims} dimensions all pairwise correlated; "
            f"allowed: above {-1 / (d.dims - 1):.4g} and below 1"
        )
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain nested dicts and lists, ready for YAML."""

    def plain(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        return x

    return plain(dataclasses.asdict(cfg))


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to {'train.steps': 100, ...}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{'train.steps': 100} to nested dicts."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise ConfigError(f"'{key}' conflicts with '{p}' which is not a section")
            node = child
        node[leaf] = value
    return out


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `over` into a copy of `base`."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def current_paths(flat: Mapping[Any, Any], where: str) -> dict[str, Any]:
    """Dotted `paths -> values` with every old path that `RENAMED` lists under its new name (a path
    given under both names: refused)."""
    for old, new in RENAMED.items():
        if old in flat and new in flat:
            raise ConfigError(f"{where}: '{old}' is the old name of '{new}': give only '{new}'")
    return {RENAMED.get(str(path), str(path)): value for path, value in flat.items()}


def current_names(overrides: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Nested `overrides` with every old path under its new name (see `current_paths`)."""
    flat = flatten(overrides)
    if not any(path in RENAMED for path in flat):
        return dict(overrides)
    return unflatten(current_paths(flat, where))
