"""Run configuration: frozen dataclasses whose defaults are the default run, a strict YAML
loader, and `--set key=value` overrides.

A config file holds only overrides of these defaults, nested by section (`train: {steps: 100}`).
Every key, type and value is checked before anything runs; a mistake becomes a `ConfigError`
whose message is one line naming the key and what is allowed. Three modules, one concept each:
`schema` (what a config holds), `values` (checking and converting values, the shapes a config
travels in), `sources` (files, presets and `--set`, layered by `resolve`). Import from here.
"""

from infgan.config.schema import (
    DATASETS,
    FILE_DATASETS,
    PRESETS,
    SYNTHETIC,
    CheckpointConfig,
    Config,
    ConfigError,
    DataConfig,
    EvalConfig,
    LossConfig,
    ModelConfig,
    TrainConfig,
    config_paths,
    critic_paths,
    option,
)
from infgan.config.sources import (
    applicable_dict,
    check_applies,
    check_sections,
    parse_set,
    read_yaml,
    resolve,
    save_config,
    source_overrides,
)
from infgan.config.values import (
    build,
    check_value,
    current_paths,
    flatten,
    from_dict,
    merge,
    numeric_string,
    to_dict,
    unflatten,
)

__all__ = [
    "DATASETS",
    "FILE_DATASETS",
    "PRESETS",
    "SYNTHETIC",
    "CheckpointConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "LossConfig",
    "ModelConfig",
    "TrainConfig",
    "applicable_dict",
    "check_applies",
    "check_sections",
    "build",
    "check_value",
    "config_paths",
    "critic_paths",
    "current_paths",
    "flatten",
    "from_dict",
    "merge",
    "numeric_string",
    "option",
    "parse_set",
    "read_yaml",
    "resolve",
    "save_config",
    "source_overrides",
    "to_dict",
    "unflatten",
]
