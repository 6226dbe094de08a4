"""What a sweep can be set to, as data (no Ray, no other sweep module): the searchers, ASHA's
judges, and the schedulers with what each one is (its state file, whether W&B's sweep file can say
it, whether it trains a population). The space's checks, the reports and the W&B export read these;
`infgan/tune/schedulers.py: make_scheduler` builds each scheduler.

Adding a scheduler: its line in `SCHEDULERS` here and its branch in `make_scheduler`.
"""

from __future__ import annotations

from dataclasses import dataclass

from infgan.config import option
from infgan.objective import MODES, PATH_METRICS, SCORE_METRICS

SEARCHERS = ("tpe", "random", "wandb-bayes", "wandb-random")  # Optuna's two, then W&B's sweep engine's
JUDGES = ("last", "best")  # what ASHA compares at a rung: the value reported there, or the best so far


@dataclass(frozen=True)
class SchedulerKind:
    """One scheduler kind, as the rest of infgan needs to know it."""

    state_file: str | None = None  # its record in the sweep directory (which trials it stopped)
    wandb: bool = False  # whether the W&B sweep file carries it (as early_terminate: hyperband)
    population: bool = False  # PBT-like: no searcher, a population drawn up front, Tune checkpoints


# - `asha`: Ray's asynchronous successive halving on the training step, rungs kept across a restart;
# - `wandb-hyperband`: the W&B sweep file's `early_terminate: hyperband`, applied by W&B's own engine;
# - `none`: every trial trains its full budget;
# - `pbt`, `pb2`: Population Based Training and its bandit variant PB2 (Ray's): a population trains side
#   by side, and at every perturbation interval a member in the bottom quantile copies a top member's
#   whole state and explores new values of the mutable parameters. They take no searcher.
SCHEDULERS: dict[str, SchedulerKind] = {
    "asha": SchedulerKind(state_file="asha_state.json", wandb=True),
    "wandb-hyperband": SchedulerKind(state_file="hyperband_state.json", wandb=True),
    "none": SchedulerKind(),
    "pbt": SchedulerKind(population=True),
    "pb2": SchedulerKind(population=True),
}


METRIC_REFUSAL = (
    f"'metric' must be a metric training reports: {', '.join([*SCORE_METRICS, *PATH_METRICS])} "
    "(or val/<channel>/marginal_w1|marginal_ks|cov_error); got {value!r}"
)
CONFIRM_REFUSAL = "'confirm' takes top and seeds, both integers >= 1 (e.g. {{top: 2, seeds: 3}}); got {value!r}"


# The sweep spec: what a space file sets besides `base`, `parameters` and `points`, checked by the
# run config's own machinery (`infgan.config.build`); `infgan tune`'s flags are overrides of it.
# A section's None is "not given": `infgan/tune/space.py` derives it from the base config.


@dataclass(frozen=True)
class Budget:
    steps: int | None = option(None, "training steps of every trial (default: the base config's train.steps)", ge=1)
    eval_every: int | None = option(
        None, "steps between a trial's evaluations, reports and checkpoints (default: the base's eval.every)", ge=1
    )


@dataclass(frozen=True)
class Asha:
    grace_period: int | None = option(
        None, "steps before ASHA's (or hyperband's) first cut (default: the larger of eval_every and steps / 6)", ge=1
    )
    reduction_factor: int = option(3, "the fraction kept at each cut is 1 / reduction_factor", ge=2)
    judge: str = option(
        "last", "what ASHA compares at a cut: the value reported there, or the trial's best so far", choices=JUDGES
    )


@dataclass(frozen=True)
class Pbt:
    perturbation_interval: int | None = option(
        None, "steps between perturbations, a multiple of budget.eval_every (default: every 4 evaluations)", ge=1
    )
    quantile: float = option(0.25, "the bottom (and top) fraction of the population", gt=0, le=0.5)
    resample_probability: float = option(
        0.25,
        "pbt: probability of resampling a parameter instead of perturbing it",
        ge=0,
        le=1,
        refusal="pbt.resample_probability must be in [0, 1], got {value!r}",
    )
    synch: bool = option(False, "perturb once every member has reached the interval (Ray's synch)")


@dataclass(frozen=True)
class Resources:
    workers_per_trial: int = option(1, "Ray Train workers per trial (1: the trial trains in its own process)", ge=1)
    cpus_per_worker: float = option(
        1.0, "CPUs per worker", gt=0, refusal="resources.cpus_per_worker must be a number > 0, got {value!r}"
    )
    gpus_per_worker: float = option(
        0.0, "GPUs per worker", ge=0, refusal="resources.gpus_per_worker must be a number >= 0, got {value!r}"
    )


@dataclass(frozen=True)
class Confirm:
    top: int = option(0, "after the search, the best `top` configs train again ...", ge=1, refusal=CONFIRM_REFUSAL)
    seeds: int = option(
        0, "... each on this many seeds no search trial used (0 and 0: none)", ge=1, refusal=CONFIRM_REFUSAL
    )


@dataclass(frozen=True)
class Settings:
    """Everything a space sets but its base, parameters and points."""

    metric: str = option("val/score", "the reported metric the search optimises", refusal=METRIC_REFUSAL)
    mode: str = option("min", "min or max", choices=MODES, refusal="'mode' must be min or max, got {value!r}")
    samples: int = option(16, "trials", ge=1, refusal="'samples' must be a positive integer, got {value!r}")
    seed: int = option(0, "the searcher's seed", ge=0, refusal="'seed' must be an integer >= 0, got {value!r}")
    searcher: str = option("tpe", "tpe, random (Optuna), wandb-bayes, wandb-random (W&B's engine)", choices=SEARCHERS)
    scheduler: str = option("asha", "asha, wandb-hyperband, none, pbt or pb2", choices=tuple(SCHEDULERS))
    budget: Budget = option(None, "per-trial budget", factory=Budget)
    asha: Asha = option(None, "early stopping", factory=Asha)
    pbt: Pbt = option(None, "population based training (pbt, pb2)", factory=Pbt)
    resources: Resources = option(None, "what one trial reserves", factory=Resources)
    confirm: Confirm = option(None, "the winners trained again on fresh seeds", factory=Confirm)
