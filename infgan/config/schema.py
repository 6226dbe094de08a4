"""What a run's config holds: frozen dataclasses whose defaults are the default run, each field
with its help text and allowed values (`_opt`), the presets' names, and `ConfigError`.

Nothing here reads input; `infgan.config.values` checks values against these fields and
`infgan.config.sources` layers the files, presets and `--set` items that override them.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from infgan.config.kinds import LOSS_KINDS
from infgan.objective import PATH_COMPUTATIONS
from infgan.schedule import SCHEDULES


class ConfigError(ValueError):
    """A bad config key or value; the message is one line for the user.

    Control characters that came in with the input (a key named "\\n" in a YAML file) are shown
    escaped, so the message stays one line whatever the input held.
    """

    def __init__(self, message: object = "", *args: object):
        text = re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1], str(message))
        super().__init__(text, *args)


def option(
    default: Any,
    help: str,
    *,
    choices: tuple | None = None,
    ge: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    pattern: str | None = None,
    critic: bool = False,
    refusal: str | None = None,
    factory: Any = None,
) -> Any:
    """A settings field with its documentation and the values it allows (the run config's and the sweep
    spec's); `critic`: it concerns the CDE critic only, and a loss kind without one refuses it;
    `refusal`: the one line said instead of the checker's own when a value is refused (`{value!r}` is
    the value); `factory`: a section's default made anew (`default` then unused)."""
    meta = {
        "help": help,
        "choices": choices,
        "ge": ge,
        "gt": gt,
        "lt": lt,
        "le": le,
        "pattern": pattern,
        "critic": critic,
        "refusal": refusal,
    }
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
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
    "timegan_stocks",
    "energy",
    "sines",
    "mujoco",
)
SYNTHETIC = ("ou", "gauss", "trunc_gauss", "cauchy", "uniform", "sines", "mujoco")  # generated, not read
FILE_DATASETS = ("csv", "parquet", "npz")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = option(
        "ou",
        "which data: ou (synthetic), random walks with gauss/trunc_gauss/cauchy/uniform increments (synthetic), "
        "TimeGAN's sines (synthetic), MuJoCo hopper rollouts (simulated; Diffusion-TS's benchmark), "
        "a csv/parquet/npz file at data.path, GeoLife trajectories (a directory at "
        "data.path), goog/stocks/weather, or TimeGAN's benchmark files timegan_stocks/energy",
        choices=DATASETS,
    )
    path: str = option("", "data file, for dataset csv, parquet or npz; for geolife, the extracted directory")
    time_column: str = option("", "column of observation times (numbers or dates); empty = the row number")
    id_column: str = option("", "column naming the series each row belongs to; empty = one long series")
    columns: tuple[str, ...] = option((), "channels to model; empty = every numeric column but time and id")
    t_size: int = option(64, "time points per series (files: window length, the longest series kept)", ge=2)
    stride: int = option(0, "files: rows between the starts of consecutive windows; 0 = t_size (no overlap)", ge=0)
    size: int = option(8192, "number of series or windows (train + held-out); files: an upper bound", ge=4)
    val_fraction: float = option(0.125, "fraction of series held out for the quality metrics", gt=0, lt=1)
    split: str = option(
        "blocks",
        "files: what is held out: whole series, or contiguous blocks of a single series (blocks), or random "
        "windows, which overlap the training ones when data.stride < data.t_size (windows, TimeGAN's protocol)",
        choices=("blocks", "windows"),
    )
    missing_rate: float = option(
        0.3, "synthetic data only: fraction of entries dropped (NaN) to make the data irregular", ge=0, lt=1
    )
    dims: int = option(1, "random walks (gauss, trunc_gauss, cauchy, uniform) and sines: channels of each path", ge=1)
    scale: float = option(
        1.0,
        "random walks: increment scale (gauss: std, trunc_gauss: std before truncation, cauchy: scale, "
        "uniform: half-width)",
        gt=0,
    )
    truncation: float = option(2.0, "trunc_gauss: increments truncated to +-truncation * scale", gt=0)
    correlation: float = option(
        0.0, "random walks: correlation between the dimensions of one increment (Gaussian copula)", gt=-1, lt=1
    )
    duplicate_times: str = option(
        "error",
        "files: what to do with several rows of one series at the same time: refuse the file, keep the first or "
        "the last row, or average them (per channel, over the values present)",
        choices=("error", "first", "last", "mean"),
    )
    bad_times: str = option(
        "error",
        "files: what to do with rows whose time (data.time_column) is empty or cannot be read: refuse the file, "
        "or drop those rows",
        choices=("error", "drop"),
    )
    split_gap: float = option(
        600.0, "geolife: a recording is cut into trips where points are this many seconds apart", gt=0
    )
    resample: float = option(
        0.0, "geolife: interpolate each trip onto a regular grid of this many seconds; 0 = keep its own times", ge=0
    )
    modes: tuple[str, ...] = option((), "geolife: keep only trips of these transport modes (labels.txt); empty = all")
    condition_columns: tuple[str, ...] = option(
        (),
        "static per-series columns (numeric or categorical) the generator and critic are conditioned on; files "
        "with data.id_column, weather (origin) or geolife (mode, user); empty = unconditional",
    )
    conditional: bool = option(
        True, "condition on data.condition_columns (false: the same data, unconditioned; a search-space switch)"
    )
    normalise: str = option(
        "start",
        "how values are scaled for the models: each channel's mean and std over the training series' first "
        "values (start), over every value (whole), or each channel's training range onto [0, 1] (minmax, "
        "TimeGAN's loader)",
        choices=("start", "whole", "minmax"),
    )
    transform: tuple[str, ...] = option(
        (),
        "per-channel value transform before normalisation: none, log, log_return, relative, diff, high/low "
        "(OHLC bars), close_ratio, or quantile (normal scores of the training marginal); "
        "one for all channels, one per channel, or CHANNEL=KIND entries; empty = none",
    )


@dataclass(frozen=True)
class ModelConfig:
    initial_noise_size: int = option(5, "size of the generator's initial noise", ge=1)
    noise_size: int = option(3, "number of Brownian motions driving the generator SDE", ge=1)
    hidden_size: int = option(16, "hidden state size of both the SDE and the CDE", ge=1)
    mlp_size: int = option(16, "width of every MLP", ge=1)
    num_layers: int = option(1, "hidden layers of every MLP", ge=1)
    # Why off by default: for models this small, plain backpropagation through the solver is
    # about 2x faster than the adjoint (benchmarks/train_speed.py); the adjoint saves memory.
    adjoint: bool = option(False, "backpropagate with the reversible Heun adjoint (else through the solver)")
    dt: float = option(1.0, "solver step, in the data's time units", gt=0)
    unit_time: bool = option(
        False, "vector fields of both models see time divided by the path's last time (in [0, 1]), not raw"
    )
    initial_scale: float = option(3.0, "multiplier on the generator's initial-MLP weights at init", gt=0)
    field_scale: float = option(0.5, "multiplier on the generator's drift/diffusion weights at init", gt=0)
    # Why: a hidden SDE read out linearly makes paths as smooth as its solver step; data whose
    # channels are partly white noise from one time to the next (a bar's open and range against its
    # close, day by day) need a noise of their own at each output time.
    obs_noise: float = option(
        0.0,
        "observation noise: each generated value gets independent Gaussian noise of a learned per-channel "
        "scale, starting at this value (normalised units); 0 = none",
        ge=0,
    )
    # Why `data`: Adadelta's first steps are tiny, so a scale started at one value for every channel
    # stays near it for hundreds of steps, while a white-noise channel needs about 1 and a smooth one
    # about 0 (docs/quality.md, energy).
    obs_noise_start: str = option(
        "value",
        "where each channel's observation-noise scale starts: value (model.obs_noise for every channel) or "
        "data (the training data's own white-noise level per channel, from its autocovariances at lags 0-2; "
        "needs model.obs_noise > 0)",
        choices=("value", "data"),
    )
    # Why: to ask whether a scale started at the data's white-noise level should stay there; training
    # moved stocks' volume from 0.23 to about 0.31, and held at 0.23 it scored worse (on energy the
    # same): docs/quality.md. Trained is the default.
    obs_noise_learn: bool = option(
        True, "whether the observation-noise scales are trained (false: they stay where they start)"
    )
    # Why: the noise a channel's data call for is not always the noise a user wants generated: on
    # TimeGAN's stock file a bar's Open, High and Low are white noise about the Close from one day to
    # the next and the volume partly so, but noise on the bars made prices predict the volume worse,
    # and the volume's alone gave the better generator (docs/quality.md, stocks).
    obs_noise_channels: tuple[str, ...] = option(
        (),
        "the channels (by name) that get the observation noise; the others get none; empty = every channel "
        "(needs model.obs_noise > 0)",
    )


@dataclass(frozen=True)
class LossConfig:
    kind: str = option(
        "fdm",
        "what the generator is trained on: a CDE critic's adversarial loss (gan, wgan_clip, wgan_gp), a "
        "kernel score against each real batch with no critic: the signature kernel's (sig_score) or that of "
        "pairs of times (fdm), or fdm's score with a critic's GAN loss beside it (fdm_gan, loss.critic_weight)",
        choices=tuple(LOSS_KINDS),
    )
    gp_weight: float = option(10.0, "gradient-penalty weight (wgan_gp only)", ge=0, critic=True)
    sig_weight: float = option(
        0.0,
        "adversarial kinds: weight of the signature-kernel score added to the generator's loss (0 = none)",
        ge=0,
        critic=True,
    )
    critic_weight: float = option(
        1.0,
        "fdm_gan: weight of the critic's non-saturating GAN loss added to fdm's kernel score (0: fdm's own "
        "generator, the critic trained beside it for nothing)",
        ge=0,
        critic=True,
    )
    sig_kernel: str = option("rbf", "signature kernel's static kernel on path points", choices=("rbf", "linear"))
    sig_sigma: float = option(
        1.0, "RBF kernel's scale per data channel (sig_score, fdm): exp(-|a - b|^2 / (sig_sigma * channels))", gt=0
    )
    sig_scale: float = option(1.0, "the normalised path values are multiplied by this before the kernel", gt=0)
    sig_dyadic_order: int = option(0, "signature kernel PDE grid refined by 2^order per axis", ge=0)
    sig_time_aug: bool = option(True, "the kernel sees time (rescaled to [0, 1]) as a channel")
    sig_basepoint: bool = option(True, "the kernel sees each path start from the origin (so it sees the start)")
    sig_points: int = option(
        16,
        "time points the kernel sees per step: the first and a random subset, drawn afresh each step "
        "(the cost grows with their square); 0 = every point",
        ge=0,
    )
    fdm_pairs: int = option(
        64, "fdm: pairs (or triples, fdm_times 3) of times whose joint law is matched per step", ge=1
    )
    # Why a third time: two-time laws cannot see how a path turns from one step to the next (a smooth
    # curve and a rough one with the same one-step increments agree on them); docs/model.md.
    fdm_times: int = option(
        2,
        "fdm: time points per draw whose joint law is matched: 2 (pairs) or 3 (triples, which also see "
        "how consecutive increments move together)",
        choices=(2, 3),
    )
    # Why 16: at batch 128 it gave the default run's quality over 3 seeds (docs/quality.md) at a
    # third of the kernel's cost, and its cost grows linearly with the batch where every pair's grows
    # with its square (benchmarks/train_speed.py --batch-sizes).
    fdm_partners: int = option(
        16,
        "fdm: each generated point is scored against this many other generated and as many real points, "
        "drawn afresh each step (cost linear in the batch); 0 = against every one (cost grows with its square)",
        ge=0,
    )
    # Why 16: the same incomplete estimate as fdm_partners; at batch 128 the two gram matrices of
    # every pair cost about 7 times the 16 partners' kernels (docs/model.md).
    sig_partners: int = option(
        16,
        "signature kernel (sig_score, sig_weight): each generated path is scored against this many other "
        "generated and as many real paths, drawn afresh each step (cost linear in the batch); 0 = against every one",
        ge=0,
    )
    fdm_floor: float = option(
        0.1,
        "fdm: each coordinate (start, level, increment) is divided by its spread over the real batch, but by "
        "at least this fraction of its channel's spread; lower weighs a smooth channel's small increments more",
        gt=0,
        le=1,
    )
    fdm_kernel: str = option(
        "rbf",
        "fdm: kernel on pairs: rbf (exp(-|a - b|^2 / (sig_sigma * channels))) or energy (-|a - b|, the energy score)",
        choices=("rbf", "energy"),
    )


_OPTIMISERS = ("adadelta", "adam", "rmsprop")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = option(1000, "generator steps", ge=1)
    batch_size: int = option(128, "global batch size (split across workers)", ge=1)
    n_critic: int = option(
        1, "critic steps per generator step (1 = the reference's simultaneous update)", ge=1, critic=True
    )
    generator_lr: float = option(0.5, "generator learning rate", gt=0)
    critic_lr: float = option(0.12, "critic learning rate", gt=0, critic=True)
    generator_optimizer: str = option("adadelta", "generator optimiser", choices=_OPTIMISERS)
    critic_optimizer: str = option("adadelta", "critic optimiser", choices=_OPTIMISERS, critic=True)
    generator_weight_decay: float = option(0.01, "generator weight decay", ge=0)
    critic_weight_decay: float = option(0.01, "critic weight decay", ge=0, critic=True)
    adam_betas: tuple[float, float] = option((0.5, 0.9), "Adam betas (adam only)")
    swa_start: int = option(500, "step from which weights are averaged (evaluation uses the average)", ge=0)
    # Why a schedule: a rate that fits the marginals fast early (the default's 0.5) keeps the weights
    # moving late, and the average from swa_start then mixes weights far apart. Measured on the default
    # run, stocks and sines, it did not help; no preset sets one (docs/quality.md).
    lr_schedule: str = option(
        "constant",
        "how both players' learning rates change over the run: constant, linear or cosine (from the "
        "configured rate at the first step to lr_final times it at the last)",
        choices=tuple(SCHEDULES),
    )
    lr_final: float = option(0.1, "the fraction of the learning rates reached at the last step", ge=0, le=1)
    ema_decay: float = option(
        0.0,
        "0: equal-weight average of every step from swa_start (SWA); else the decay of an exponential "
        "moving average from swa_start (EMA, e.g. 0.99)",
        ge=0,
        lt=1,
    )
    device: str = option("auto", "auto, cpu, cuda or cuda:N", pattern=r"auto|cpu|cuda(:\d+)?")
    threads: int = option(
        1, "intra-op threads per process (1 is fastest for these small tensors; 0 = torch's default)", ge=0
    )


@dataclass(frozen=True)
class EvalConfig:
    every: int = option(50, "steps between evaluations of the quality metrics", ge=1)
    path_metrics: str = option(
        "end",
        "when the path-level metrics (val/disc, val/pred, val/sig_mmd) run: at the final step, at every "
        "evaluation, never, or one of them (disc, pred, sig_mmd) at every evaluation and all at the final step "
        "(what a sweep judged by that metric needs)",
        choices=("end", "every", "off", *PATH_COMPUTATIONS),
    )
    threads: int = option(
        0,
        "threads that compute the path-level metrics side by side (the same values at any count); "
        "0 = one per core this process may use, up to 4 (a sweep's trial: its CPUs)",
        ge=0,
    )
    diverge_factor: float = option(
        1000.0,
        "a run whose val/score exceeds this multiple of its first evaluation's (the untrained "
        "generator's) ends as diverged; 0 turns the check off",
        ge=0,
    )
    tensorboard: bool = option(
        True, "write TensorBoard logs (scalars and the sample figure at each evaluation) to <run>/tensorboard/"
    )
    gif_frames: int = option(
        40, "frames kept for plots/samples.gif (one per evaluation, thinned past this); 0 = no animation", ge=0
    )
    plots: bool = option(
        True,
        "draw the final plots into <run>/plots/ (samples, marginals, diagnostics, curves, the animation): a few "
        "seconds a run; a sweep of many short trials may skip them (`infgan evaluate RUN` draws the diagnostics later)",
    )


@dataclass(frozen=True)
class CheckpointConfig:
    every: int = option(100, "steps between checkpoints", ge=1)
    keep: int = option(2, "how many recent checkpoints to keep", ge=1)


@dataclass(frozen=True)
class Config:
    seed: int = option(0, "seed of data, initialisation and noise", ge=0)
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
    "timegan_stocks",
    "energy",
    "sines",
    "mujoco",
)


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


def critic_paths() -> list[str]:
    """The dotted paths of the settings that concern the CDE critic only."""
    return [path for path, (_, meta) in config_paths().items() if meta.get("critic")]


# Old dotted paths still accepted, each read as its new name: a run or sweep saved under an old
# name resumes, and a config or search space written for it still loads.
RENAMED = {
    "train.discriminator_lr": "train.critic_lr",
    "train.discriminator_optimizer": "train.critic_optimizer",
    "train.discriminator_weight_decay": "train.critic_weight_decay",
}
