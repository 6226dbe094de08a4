"""Run configuration: frozen dataclasses whose defaults are the default run, a strict YAML
loader, and `--set key=value` overrides.

A config file holds only overrides of these defaults, nested by section (`train: {steps: 100}`).
Every key, type and value is checked here, before anything runs; a mistake becomes a
`ConfigError` whose message is one line naming the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from infgan.train.losses import KINDS as LOSS_KINDS


class ConfigError(ValueError):
    """A bad config key or value; the message is one line for the user.

    Control characters that came in with the input (a key named "\\n" in a YAML file) are shown
    escaped, so the message stays one line whatever the input held.
    """

    def __init__(self, message: object = "", *args: object):
        text = re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1], str(message))
        super().__init__(text, *args)


def _opt(
    default: Any,
    help: str,
    *,
    choices: tuple | None = None,
    ge: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    pattern: str | None = None,
    critic: bool = False,
) -> Any:
    """A config field with its documentation and the values it allows; `critic`: it concerns the CDE
    critic only, and a loss kind without one refuses it."""
    meta = {"help": help, "choices": choices, "ge": ge, "gt": gt, "lt": lt, "pattern": pattern, "critic": critic}
    return field(default=default, metadata=meta)


DATASETS = (
    "ou",
    "gauss",
    "trunc_gauss",
    "cauchy",
    "uniform",
    "csv",
    "parquet",
    "npz",
    "geolife",
    "goog",
    "stocks",
    "weather",
)
SYNTHETIC = ("ou", "gauss", "trunc_gauss", "cauchy", "uniform")  # generated, not read
FILE_DATASETS = ("csv", "parquet", "npz")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = _opt(
        "ou",
        "which data: ou (synthetic), random walks with gauss/trunc_gauss/cauchy/uniform increments (synthetic), "
        "a csv/parquet/npz file at data.path, GeoLife trajectories (a directory at data.path), or goog/stocks/weather",
        choices=DATASETS,
    )
    path: str = _opt("", "data file, for dataset csv, parquet or npz; for geolife, the extracted directory")
    time_column: str = _opt("", "column of observation times (numbers or dates); empty = the row number")
    id_column: str = _opt("", "column naming the series each row belongs to; empty = one long series")
    columns: tuple[str, ...] = _opt((), "channels to model; empty = every numeric column but time and id")
    t_size: int = _opt(64, "time points per series (files: window length, the longest series kept)", ge=2)
    stride: int = _opt(0, "files: rows between the starts of consecutive windows; 0 = t_size (no overlap)", ge=0)
    size: int = _opt(8192, "number of series or windows (train + held-out); files: an upper bound", ge=4)
    val_fraction: float = _opt(0.125, "fraction of series held out for the quality metrics", gt=0, lt=1)
    split: str = _opt(
        "blocks",
        "files: what is held out: whole series, or contiguous blocks of a single series (blocks), or random "
        "windows, which overlap the training ones when data.stride < data.t_size (windows, TimeGAN's protocol)",
        choices=("blocks", "windows"),
    )
    missing_rate: float = _opt(
        0.3, "synthetic data only: fraction of entries dropped (NaN) to make the data irregular", ge=0, lt=1
    )
    dims: int = _opt(1, "random walks (gauss, trunc_gauss, cauchy, uniform): dimensions of each path", ge=1)
    scale: float = _opt(
        1.0,
        "random walks: increment scale (gauss: std, trunc_gauss: std before truncation, cauchy: scale, "
        "uniform: half-width)",
        gt=0,
    )
    truncation: float = _opt(2.0, "trunc_gauss: increments truncated to +-truncation * scale", gt=0)
    correlation: float = _opt(
        0.0, "random walks: correlation between the dimensions of one increment (Gaussian copula)", gt=-1, lt=1
    )
    duplicate_times: str = _opt(
        "error",
        "files: what to do with several rows of one series at the same time: refuse the file, keep the first or "
        "the last row, or average them (per channel, over the values present)",
        choices=("error", "first", "last", "mean"),
    )
    bad_times: str = _opt(
        "error",
        "files: what to do with rows whose time (data.time_column) is empty or cannot be read: refuse the file, "
        "or drop those rows",
        choices=("error", "drop"),
    )
    split_gap: float = _opt(
        600.0, "geolife: a recording is cut into trips where points are this many seconds apart", gt=0
    )
    resample: float = _opt(
        0.0, "geolife: interpolate each trip onto a regular grid of this many seconds; 0 = keep its own times", ge=0
    )
    modes: tuple[str, ...] = _opt((), "geolife: keep only trips of these transport modes (labels.txt); empty = all")
    condition_columns: tuple[str, ...] = _opt(
        (),
        "static per-series columns (numeric or categorical) the generator and critic are conditioned on; files "
        "with data.id_column, weather (origin) or geolife (mode, user); empty = unconditional",
    )
    conditional: bool = _opt(
        True, "condition on data.condition_columns (false: the same data, unconditioned; a search-space switch)"
    )
    transform: tuple[str, ...] = _opt(
        (),
        "per-channel value transform before normalisation: none, log, log_return, relative, diff, or high/low "
        "(OHLC bars); "
        "one for all channels, one per channel, or CHANNEL=KIND entries; empty = none",
    )


@dataclass(frozen=True)
class ModelConfig:
    initial_noise_size: int = _opt(5, "size of the generator's initial noise", ge=1)
    noise_size: int = _opt(3, "number of Brownian motions driving the generator SDE", ge=1)
    hidden_size: int = _opt(16, "hidden state size of both the SDE and the CDE", ge=1)
    mlp_size: int = _opt(16, "width of every MLP", ge=1)
    num_layers: int = _opt(1, "hidden layers of every MLP", ge=1)
    # Why off by default: for models this small, plain backpropagation through the solver is
    # about 2x faster than the adjoint (benchmarks/train_speed.py); the adjoint saves memory.
    adjoint: bool = _opt(False, "backpropagate with the reversible Heun adjoint (else through the solver)")
    dt: float = _opt(1.0, "solver step, in the data's time units", gt=0)
    unit_time: bool = _opt(
        False, "vector fields of both models see time divided by the path's last time (in [0, 1]), not raw"
    )
    initial_scale: float = _opt(3.0, "multiplier on the generator's initial-MLP weights at init", gt=0)
    field_scale: float = _opt(0.5, "multiplier on the generator's drift/diffusion weights at init", gt=0)


@dataclass(frozen=True)
class LossConfig:
    kind: str = _opt(
        "fdm",
        "what the generator is trained on: a CDE critic's adversarial loss (gan, wgan_clip, wgan_gp), or a "
        "kernel score against each real batch with no critic: the signature kernel's (sig_score) or that of "
        "pairs of times (fdm)",
        choices=tuple(LOSS_KINDS),
    )
    gp_weight: float = _opt(10.0, "gradient-penalty weight (wgan_gp only)", ge=0, critic=True)
    sig_weight: float = _opt(
        0.0,
        "adversarial kinds: weight of the signature-kernel score added to the generator's loss (0 = none)",
        ge=0,
        critic=True,
    )
    sig_kernel: str = _opt("rbf", "signature kernel's static kernel on path points", choices=("rbf", "linear"))
    sig_sigma: float = _opt(
        1.0, "RBF kernel's scale per data channel (sig_score, fdm): exp(-|a - b|^2 / (sig_sigma * channels))", gt=0
    )
    sig_scale: float = _opt(1.0, "the normalised path values are multiplied by this before the kernel", gt=0)
    sig_dyadic_order: int = _opt(0, "signature kernel PDE grid refined by 2^order per axis", ge=0)
    sig_time_aug: bool = _opt(True, "the kernel sees time (rescaled to [0, 1]) as a channel")
    sig_basepoint: bool = _opt(True, "the kernel sees each path start from the origin (so it sees the start)")
    sig_points: int = _opt(
        16,
        "time points the kernel sees per step: the first and a random subset, drawn afresh each step "
        "(the cost grows with their square); 0 = every point",
        ge=0,
    )
    fdm_pairs: int = _opt(64, "fdm: pairs of times whose joint law is matched per step", ge=1)
    fdm_kernel: str = _opt(
        "rbf",
        "fdm: kernel on pairs: rbf (exp(-|a - b|^2 / (sig_sigma * channels))) or energy (-|a - b|, the energy score)",
        choices=("rbf", "energy"),
    )


_OPTIMISERS = ("adadelta", "adam", "rmsprop")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = _opt(2500, "generator steps", ge=1)
    batch_size: int = _opt(128, "global batch size (split across workers)", ge=1)
    n_critic: int = _opt(
        1, "critic steps per generator step (1 = the reference's simultaneous update)", ge=1, critic=True
    )
    generator_lr: float = _opt(0.15, "generator learning rate", gt=0)
    discriminator_lr: float = _opt(0.12, "discriminator learning rate", gt=0, critic=True)
    generator_optimizer: str = _opt("adadelta", "generator optimiser", choices=_OPTIMISERS)
    discriminator_optimizer: str = _opt("adadelta", "discriminator optimiser", choices=_OPTIMISERS, critic=True)
    generator_weight_decay: float = _opt(0.01, "generator weight decay", ge=0)
    discriminator_weight_decay: float = _opt(0.01, "discriminator weight decay", ge=0, critic=True)
    adam_betas: tuple[float, float] = _opt((0.5, 0.9), "Adam betas (adam only)")
    swa_start: int = _opt(1250, "step from which weights are averaged (evaluation uses the average)", ge=0)
    ema_decay: float = _opt(
        0.0,
        "0: equal-weight average of every step from swa_start (SWA); else the decay of an exponential "
        "moving average from swa_start (EMA, e.g. 0.99)",
        ge=0,
        lt=1,
    )
    device: str = _opt("auto", "auto, cpu, cuda or cuda:N", pattern=r"auto|cpu|cuda(:\d+)?")
    threads: int = _opt(
        1, "intra-op threads per process (1 is fastest for these small tensors; 0 = torch's default)", ge=0
    )


@dataclass(frozen=True)
class EvalConfig:
    every: int = _opt(50, "steps between evaluations of the quality metrics", ge=1)
    path_metrics: str = _opt(
        "end",
        "when the path-level metrics (val/disc, val/pred, val/sig_mmd) run: at the final step, at every "
        "evaluation, or never",
        choices=("end", "every", "off"),
    )
    diverge_factor: float = _opt(
        1000.0,
        "a run whose val/score exceeds this multiple of its first evaluation's (the untrained "
        "generator's) ends as diverged; 0 turns the check off",
        ge=0,
    )
    tensorboard: bool = _opt(
        True, "write TensorBoard logs (scalars and the sample figure at each evaluation) to <run>/tensorboard/"
    )
    gif_frames: int = _opt(
        40, "frames kept for plots/samples.gif (one per evaluation, thinned past this); 0 = no animation", ge=0
    )
    plots: bool = _opt(
        True,
        "draw the final plots into <run>/plots/ (samples, marginals, diagnostics, curves, the animation): a few "
        "seconds a run; a sweep of many short trials may skip them (`infgan evaluate RUN` draws the diagnostics later)",
    )


@dataclass(frozen=True)
class CheckpointConfig:
    every: int = _opt(100, "steps between checkpoints", ge=1)
    keep: int = _opt(2, "how many recent checkpoints to keep", ge=1)


@dataclass(frozen=True)
class Config:
    seed: int = _opt(0, "seed of data, initialisation and noise", ge=0)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)


PRESETS = (
    "default",
    "reference",
    "seed",
    "goog",
    "stocks",
    "weather",
    "geolife",
    "gauss",
    "trunc_gauss",
    "cauchy",
    "uniform",
)


# ----------------------------------------------------------------------------------------------
# Building a Config from nested dicts, with one-line errors.


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def numeric_string(value: Any) -> bool:
    """Whether `value` is a string that reads as a number (`1e-4`: YAML 1.1 leaves it a string)."""
    return isinstance(value, str) and bool(_FLOAT.fullmatch(value.strip()))


def _type_name(tp: Any) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


def check_value(path: str, tp: Any, value: Any, meta: Mapping[str, Any]) -> Any:
    """Return `value` converted to `tp`, or raise ConfigError naming `path`."""
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
        raise ConfigError(f"'{path}' must be one of {', '.join(meta['choices'])}; got {value!r}")
    if meta.get("pattern") and not re.fullmatch(meta["pattern"], value):
        raise ConfigError(f"'{path}' must match {meta['pattern']} ({meta['help']}); got {value!r}")
    bounds = [("ge", ">=", lambda a, b: a >= b), ("gt", ">", lambda a, b: a > b), ("lt", "<", lambda a, b: a < b)]
    for key, sym, ok in bounds:
        if meta.get(key) is not None and not ok(value, meta[key]):
            raise ConfigError(f"'{path}' must be {sym} {meta[key]:g}, got {value!r}")
    return value


def _build(cls: type, data: Any, prefix: str) -> Any:
    """Build dataclass `cls` from a mapping of overrides, checking every key and value."""
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
        raise ConfigError(f"unknown config key '{prefix}{unknown[0]}'; allowed: {allowed}")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, f"{prefix}{name}.")
        else:
            kwargs[name] = check_value(prefix + name, tp, value, fields[name].metadata)
    return cls(**kwargs)


def from_dict(data: Mapping[str, Any] | None) -> Config:
    """Build a Config from nested overrides (missing keys keep their defaults); `resolve` is the
    entry point, this its last step."""
    cfg = _build(Config, data, "")
    if cfg.loss.sig_points == 1:
        raise ConfigError("'loss.sig_points' must be 0 (every point) or at least 2, got 1")
    d = cfg.data
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


def config_paths() -> dict[str, Any]:
    """Every settable dotted path mapped to its (type, field metadata)."""

    def walk(cls: type, prefix: str) -> Iterable[tuple[str, Any]]:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                yield from walk(hints[f.name], f"{prefix}{f.name}.")
            else:
                yield f"{prefix}{f.name}", (hints[f.name], f.metadata)

    return dict(walk(Config, ""))


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


def critic_paths() -> list[str]:
    """The dotted paths of the settings that concern the CDE critic only."""
    return [path for path, (_, meta) in config_paths().items() if meta.get("critic")]


def check_applies(overrides: Mapping[str, Any], cfg: Config, where: str) -> None:
    """Refuse critic settings given (in `overrides`) for a loss kind that trains no critic."""
    from infgan.train.losses import needs_critic

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
    from infgan.train.losses import needs_critic

    flat = flatten(to_dict(cfg))
    if not needs_critic(cfg.loss.kind):
        for key in critic_paths():
            flat.pop(key, None)
    return unflatten(flat)


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
    written, set_items = source_overrides(source), parse_set(sets)
    overrides = written
    for layer in layers:
        if isinstance(layer, Mapping):
            check_sections(layer, given or "the config")
            overrides = merge(overrides, layer)
        elif layer is not None:
            from_dict(layer)  # refused in one line: not a mapping
    overrides = merge(overrides, set_items)
    cfg = from_dict(overrides)
    if given is None:  # only what a person wrote: the file or preset and --set
        given, overrides = ("--config/--set" if source is None else f"{source} and --set"), merge(written, set_items)
    check_applies(overrides, cfg, given)
    return cfg


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config so `infgan train --config PATH` reproduces the run (the settings
    that apply to its loss kind)."""
    Path(path).write_text(yaml.safe_dump(applicable_dict(cfg), sort_keys=False))
