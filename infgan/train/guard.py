"""When a run has diverged, and the one line that says so with what to change.

Two checks: after each training step, a non-finite loss on any rank (a collective, so every rank
stops together); after each evaluation, non-finite generated paths or a `val/score` past
`eval.diverge_factor` times the untrained generator's.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from infgan.train.context import RunContext
from infgan.train.state import Progress


def diverged(step: int, problem: str) -> str:
    """The one-line message of a diverged run, with what to change."""
    hint = (
        "the untrained generator already fails: lower model.initial_scale / model.field_scale"
        if step == 0
        else "lower train.generator_lr / train.critic_lr or change loss.kind"
    )
    return f"run diverged at step {step}: {problem}; {hint}"


class DivergenceGuard:
    def __init__(self, diverge_factor: float):
        self.factor = diverge_factor

    def losses(self, out: dict[str, torch.Tensor], step: int, ctx: RunContext) -> str | None:
        """The message when a loss of the step that reaches `step` is non-finite on any rank."""
        problem = None
        for k in ("critic_loss", "generator_loss"):
            if k in out and not math.isfinite(float(out[k])):
                problem = f"the {k.replace('_', ' ')} is {float(out[k])}"
                break
        if not ctx.any_true(problem is not None):
            return None
        return diverged(step, problem or "a loss on another rank is non-finite")

    def score(self, record: dict[str, Any], progress: Progress) -> str | None:
        """The message when an evaluation's paths are not finite or its score ran away."""
        score, first, step = record["val/score"], progress.first_score, record["step"]
        if not math.isfinite(score):
            return diverged(step, f"the generated paths are not finite (val/score {score})")
        if self.factor and first is not None and first > 0 and score > self.factor * first:
            # Clipped critics keep the losses finite while the generator runs away: the score sees it.
            problem = (
                f"val/score {score:.3g} is over {self.factor:g} times the untrained generator's {first:.3g} "
                "(eval.diverge_factor)"
            )
            return diverged(step, problem)
        return None
