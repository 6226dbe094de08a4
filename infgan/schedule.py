"""Learning-rate schedules: the fraction of the configured rates a step trains at.

A schedule is a function of the step alone (not of state the optimiser keeps), so a resumed run, a
PBT member that adopted another's checkpoint and a fresh run at the same step all train at the same
rate. One entry per schedule in `SCHEDULES`; `train.lr_schedule` names one, `train.lr_final` is the
fraction reached at the last step.
"""

from __future__ import annotations

import math
from collections.abc import Callable

# (step, steps, final) -> fraction of the configured rate for that step (step counts from 0).
Schedule = Callable[[int, int, float], float]


def _constant(step: int, steps: int, final: float) -> float:
    return 1.0


def _linear(step: int, steps: int, final: float) -> float:
    return 1.0 - (1.0 - final) * _done(step, steps)


def _cosine(step: int, steps: int, final: float) -> float:
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * _done(step, steps)))


def _done(step: int, steps: int) -> float:
    """How far through the run a step is, 0 at the first and 1 at the last."""
    return min(max(step, 0), steps - 1) / (steps - 1) if steps > 1 else 1.0


SCHEDULES: dict[str, Schedule] = {"constant": _constant, "linear": _linear, "cosine": _cosine}


def rate_factor(name: str, step: int, steps: int, final: float) -> float:
    """The fraction of the configured rates at `step` of a run of `steps` steps."""
    return SCHEDULES[name](step, steps, final)
