"""What a sweep prints while it runs (a Tune callback, in place of Tune's own trial tables).

Tune's default output is a config table and a result table for every trial, about 35 lines each:
a 32-trial sweep, or the resume of one, prints over a thousand lines. Instead: one line per trial
that ends (how it ended, at which step, its value against the metric's real-data floor, its
parameters) and, on a terminal, one bar of trials ended with the best value so far.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from ray.tune import Callback
from tqdm.auto import tqdm

from infgan.tune.space import SearchSpace

_ENDED = ("TERMINATED", "ERROR")


class SweepProgress(Callback):
    """One line per ended trial on stdout; a bar of ended trials on stderr when it is a terminal."""

    def __init__(self, space: SearchSpace, heading: str, stream: Any = None, total: int | None = None):
        self.space, self.heading, self.total = space, heading, total or space.samples
        self.stream = stream  # None: sys.stdout at the time of writing (Tune pickles its callbacks)
        self.bar: Any = None
        self.best: float | None = None

    def setup(self, stop: Any = None, num_samples: Any = None, total_num_samples: Any = None, **info: Any) -> None:
        tqdm.write(self.heading, file=self.stream or sys.stdout)
        self.bar = tqdm(total=self.total, desc="trials", unit="trial", disable=not sys.stderr.isatty())

    def on_step(self, iteration: int, trials: list, **info: Any) -> None:
        if self.bar is None:
            return
        ended = sum(t.status in _ENDED for t in trials)
        if ended != self.bar.n:
            self.bar.n = ended
            self.bar.refresh()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trial, None)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trial, f"failed (Tune's error file: {getattr(trial, 'error_file', None) or trial.local_path})")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self.bar is not None:
            self.on_step(0, trials)
            self.bar.close()
            self.bar = None

    def _line(self, trial: Any, failure: str | None) -> None:
        space, result = self.space, trial.last_result or {}
        metric, step = space.metric, result.get("step")
        value, floor = result.get(metric), result.get(f"{metric}_floor")
        if failure is None:
            if result.get("diverged"):
                how = "diverged"
            elif isinstance(step, int) and step < space.steps:
                how = "stopped early"
            else:
                how = "finished"
            how = f"{how} at step {step}/{space.steps}"
            if isinstance(value, (int, float)) and math.isfinite(value) and not result.get("diverged"):
                how += f"  {metric} {value:.4g}" + (f" (floor {floor:.3g})" if isinstance(floor, float) else "")
                if self.best is None or (value < self.best if space.mode == "min" else value > self.best):
                    self.best = value
                    if self.bar is not None:
                        self.bar.set_postfix_str(f"best {metric} {value:.4g}")
        else:
            how = failure
        shown = trial.config
        if "point" in shown:  # a confirmation run: the search trial it re-checks and its seed
            shown = {"of": shown["point"]["of"], "seed": shown["point"]["seed"]}
        params = " ".join(f"{k}={_short(v)}" for k, v in sorted(shown.items()))
        tqdm.write(f"{trial.trial_id}  {how}  {params}", file=self.stream or sys.stdout)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
