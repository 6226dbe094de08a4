"""What a sweep can be set to, as data (no Ray, no other sweep module): the searchers, ASHA's
judges, and the schedulers with what each one is (its state file, whether W&B's sweep file can say
it, whether it trains a population). The space's checks, the reports and the W&B export read these;
`infgan/tune/schedulers.py: make_scheduler` builds each scheduler.

Adding a scheduler: its line in `SCHEDULERS` here and its branch in `make_scheduler`.
"""

from __future__ import annotations

from dataclasses import dataclass

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
