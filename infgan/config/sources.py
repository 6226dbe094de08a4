"""Where a config's overrides come from and how they are layered: config files and presets, `--set
key=value` items, a saved run's or a search space's layers (`resolve`, the one way a Config is
made), and writing a run's config back (`save_config`).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from infgan.config.kinds import needs_critic
from infgan.config.schema import PRESETS, Config, ConfigError, critic_paths
from infgan.config.values import current_names, flatten, from_dict, merge, to_dict, unflatten


def parse_set(items: Iterable[str]) -> dict[str, Any]:
    """Parse `--set key=value` items (values as YAML) into nested overrides."""
    flat = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE (e.g. train.steps=100), got {item!r}")
        try:
            flat[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise ConfigError(f"--set {key}: value {raw!r} is not valid YAML") from None
        if flat[key.strip()] is None:
            raise ConfigError(f"--set {key}: give a value, e.g. {key}=1")
    return unflatten(flat)


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file, turning a missing file or bad syntax into a ConfigError."""
    p = Path(path)
    if p.exists() and not p.is_file() and not p.is_dir():
        # A named pipe or a device would block the read (or never end): refused before opening.
        raise ConfigError(f"cannot read {path}: not a regular file (a pipe, socket or device); give a YAML file")
    try:
        text = p.read_text()
    except IsADirectoryError:
        raise ConfigError(f"cannot read {path}: it is a directory, not a YAML file") from None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text (YAML) file") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None


def source_overrides(source: str | None) -> dict[str, Any]:
    """Overrides from a config file path or a preset name (None = the default run)."""
    if source is None or source == "default":
        return {}
    path = Path(source)
    if not path.exists() and source in PRESETS:
        path = Path(str(resources.files("infgan") / "presets" / f"{source}.yaml"))
    elif not path.exists():
        raise ConfigError(f"--config: no file or preset named {source!r}; presets: {', '.join(PRESETS)}")
    data = read_yaml(path)
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(f"{source}: a config file must be a mapping of sections, got {type(data).__name__}")
    check_sections(data or {}, str(source))
    return dict(data or {})


def check_sections(data: Mapping[str, Any], where: str) -> None:
    """Each section given (`train:`) must be a mapping: checked before `--set` overrides are merged
    in, which would otherwise replace a scalar section without a word."""
    hints = typing.get_type_hints(Config)
    for key, value in data.items():
        section = isinstance(hints.get(key), type) and dataclasses.is_dataclass(hints.get(key))
        if section and value is not None and not isinstance(value, Mapping):
            raise ConfigError(f"{where}: '{key}' must be a mapping of keys to values, got {value!r}")


def is_preset(source: str | None) -> bool:
    """Whether `source` names a shipped preset (not a file of that name)."""
    return source is not None and source in PRESETS and not Path(source).exists()


def _without_critic(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`overrides` without the settings that concern the critic only."""
    critic = set(critic_paths())
    return unflatten({k: v for k, v in flatten(overrides).items() if k not in critic})


def check_applies(overrides: Mapping[str, Any], cfg: Config, where: str) -> None:
    """Refuse critic settings given (in `overrides`) for a loss kind that trains no critic."""
    if needs_critic(cfg.loss.kind):
        return
    critic = critic_paths()
    given = [key for key in flatten(overrides) if key in critic]
    if given:
        raise ConfigError(
            f"{where}: '{given[0]}' is a critic setting, and loss.kind {cfg.loss.kind} trains no critic; "
            f"remove it (critic settings: {', '.join(critic)})"
        )


def applicable_dict(cfg: Config) -> dict[str, Any]:
    """`to_dict(cfg)` without the critic settings when the loss kind trains no critic."""
    return to_dict(cfg) if needs_critic(cfg.loss.kind) else _without_critic(to_dict(cfg))


def resolve(
    *layers: Mapping[str, Any] | None,
    source: str | None = None,
    sets: Iterable[str] = (),
    given: str | None = None,
) -> Config:
    """The one way a Config is made, whatever makes it (`infgan train`, a resumed run, a W&B agent, a
    search space's base and its trials, a saved run's config.yaml).

    Layers, each over the one before: the defaults; `source` (a config file or a preset name);
    each of `layers` in order (nested overrides: a saved run's config, a space's base, a
    searcher's or a W&B agent's values); the `--set` items. Every key and value is checked here,
    once: unknown keys, types, bounds, sections that are not mappings, impossible combinations.
    Critic settings written for a loss kind that trains no critic are refused: those of `source`
    and `sets` always, those of `layers` too when `given` names where they came from (a space's
    base). Sampled values are not `given`: a mixed space's trial may carry a critic setting for a
    criticless kind, which then has no effect.
    """
    written = current_names(source_overrides(source), str(source))
    set_items = current_names(parse_set(sets), "--set")

    def layered(written: Mapping[str, Any]) -> dict[str, Any]:
        overrides = dict(written)
        for layer in layers:
            if isinstance(layer, Mapping):
                check_sections(layer, given or "the config")
                overrides = merge(overrides, current_names(layer, given or "the config"))
            elif layer is not None:
                from_dict(layer)  # refused in one line: not a mapping
        return merge(overrides, set_items)

    overrides = layered(written)
    cfg = from_dict(overrides)
    if is_preset(source) and not needs_critic(cfg.loss.kind):
        # A shipped preset's critic settings are the preset's, not the user's: switched to a kind
        # without a critic (`--config reference --set loss.kind=fdm`), the preset drops them.
        written = _without_critic(written)
        overrides = layered(written)
        cfg = from_dict(overrides)
    if given is None:  # only what a person wrote: the file or preset and --set
        given, overrides = ("--config/--set" if source is None else f"{source} and --set"), merge(written, set_items)
    check_applies(overrides, cfg, given)
    return cfg


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config so `infgan train --config PATH` reproduces the run (the settings
    that apply to its loss kind)."""
    Path(path).write_text(yaml.safe_dump(applicable_dict(cfg), sort_keys=False))
