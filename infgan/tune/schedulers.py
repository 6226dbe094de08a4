"""The schedulers a sweep can run under: one entry each, read by the space's checks, the sweep, its
reports and the W&B sweep file export. No Ray at import: each entry builds its scheduler lazily.

- `asha`: Ray's asynchronous successive halving on the training step, rungs kept across a
  restart (`infgan/tune/search.py: PersistentASHA`);
- `wandb-hyperband`: the W&B sweep file's `early_terminate: hyperband`, applied by W&B's own engine
  (`infgan/wandb/engine.py`);
- `none`: every trial trains its full budget;
- `pbt`, `pb2`: Population Based Training (Jaderberg et al. 2017) and its bandit variant PB2
  (Parker-Holder et al. 2020), Ray's: a population trains side by side; at every perturbation
  interval a member in the bottom quantile copies a top member's whole state and explores new
  values of the mutable parameters (`infgan/tune/pbt.py`). They take no searcher: the population is
  drawn from the space at the start.

Adding a scheduler: its `Scheduler` entry below (and, if it needs one, a module of its own).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infgan.tune.space import SearchSpace


@dataclass(frozen=True)
class Scheduler:
    """One scheduler kind."""

    build: Callable[[SearchSpace, Path, dict[str, Any] | None], Any]  # (space, sweep dir, W&B sweep) -> Ray's
    state_file: str | None = None  # its record in the sweep directory (which trials it stopped)
    wandb: bool = False  # whether the W&B sweep file carries it (as early_terminate: hyperband)
    population: bool = False  # PBT-like: no searcher, a population drawn up front, Tune checkpoints


def _asha(space: SearchSpace, exp_dir: Path, sweep: dict[str, Any] | None) -> Any:
    from infgan.tune.search import PersistentASHA

    return PersistentASHA(
        str(exp_dir / "asha_state.json"),
        metric=space.metric,
        mode=space.mode,
        max_t=space.steps,
        grace_period=space.grace_period,
        reduction_factor=space.reduction_factor,
        judge=space.judge,
    )


def _hyperband(space: SearchSpace, exp_dir: Path, sweep: dict[str, Any] | None) -> Any:
    from infgan.wandb.engine import STATE_FILE, WandbHyperband

    assert sweep is not None
    return WandbHyperband(sweep, space, str(exp_dir / STATE_FILE))


def _none(space: SearchSpace, exp_dir: Path, sweep: dict[str, Any] | None) -> Any:
    return None


def _pbt(space: SearchSpace, exp_dir: Path, sweep: dict[str, Any] | None) -> Any:
    from infgan.tune.pbt import make_pbt

    return make_pbt(space, bandit=False)


def _pb2(space: SearchSpace, exp_dir: Path, sweep: dict[str, Any] | None) -> Any:
    from infgan.tune.pbt import make_pbt

    return make_pbt(space, bandit=True)


SCHEDULERS: dict[str, Scheduler] = {
    "asha": Scheduler(_asha, state_file="asha_state.json", wandb=True),
    "wandb-hyperband": Scheduler(_hyperband, state_file="hyperband_state.json", wandb=True),
    "none": Scheduler(_none),
    "pbt": Scheduler(_pbt, population=True),
    "pb2": Scheduler(_pb2, population=True),
}
