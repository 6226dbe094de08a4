"""Where a run's evaluations go: the evaluator's quality metrics, then `metrics.jsonl`, W&B,
TensorBoard and the samples animation on rank 0, and every rank's copy of the record; at the end,
the final generator and every plot.

`fit` (loop.py) holds one `Sinks` and calls `evaluate` at each evaluation step, `close` when the
loop ends (also when interrupted) and `write_final` once the run is done.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import torch

from infgan import metrics, plots
from infgan.config import Config
from infgan.data import Dataset
from infgan.diagnostics import plot_diagnostics
from infgan.metrics.discriminative import small_held_out
from infgan.metrics.path_level import metric_threads
from infgan.train.animation import FRAME_PATHS, FrameCanvas, SampleFrames
from infgan.train.board import Board
from infgan.train.checkpoint import atomic_torch_save
from infgan.train.context import RunContext
from infgan.train.run_dir import RunDir
from infgan.train.state import TrainState, rank_seed
from infgan.wandb.tracking import Tracker, Tracking


class Evaluator:
    """Quality metrics of the evaluation generator on the held-out set, with fixed noise (rank 0 only).

    Every record holds `val/score` and its parts, the path-level metrics when `eval.path_metrics`
    asks for them (`every` evaluation, the `end`: the final step's, or one of them at every evaluation
    and all at the end), and the real-data floors.
    """

    def __init__(self, cfg: Config, dataset: Dataset, ts: torch.Tensor, floors: dict[str, float]):
        self.dataset, self.ts, self.floors, self.when = dataset, ts, floors, cfg.eval.path_metrics
        self.seed = rank_seed(cfg.seed, 0, "eval")  # the same noise at every evaluation
        self.threads = metric_threads(cfg.eval.threads)
        self.last_fake: torch.Tensor | None = None

    def __call__(self, state: TrainState, final: bool) -> dict[str, float]:
        ds = self.dataset
        # A conditional generator makes each held-out path's twin: the same conditions, row by row.
        cond = None if ds.cond_val is None else ds.cond_val.to(self.ts.device)
        fake = metrics.generate(state.eval_generator(), self.ts, ds.val.size(0), self.seed, cond=cond).cpu()
        self.last_fake = fake
        out = metrics.quality_metrics(ds.val_grid, fake, ds.names)
        out.update(metrics.per_condition(ds, fake))
        if self.when != "off" and (final or self.when != "end"):
            only = None if final or self.when == "every" else self.when
            trtr = self.floors.get("val/pred_trtr", math.nan)
            out.update(metrics.path_metrics(ds.val_grid, fake, float(ds.ts[-1]), self.seed, trtr, self.threads, only))
        return {**out, **self.floors}


class Clock:
    """The run's wall time across sessions: what earlier sessions took plus this one's so far."""

    def __init__(self, before: float):
        self.before, self.started = before, time.perf_counter()

    def __call__(self) -> float:
        return self.before + time.perf_counter() - self.started


class Sinks:
    """One run's evaluations and where they go (see the module docstring)."""

    def __init__(
        self,
        cfg: Config,
        run: RunDir,
        dataset: Dataset,
        ctx: RunContext,
        floors: dict[str, float],
        history: list[dict[str, Any]],
        tracker: Tracker | None,
        resumed_at: int | None,
        clock: Clock,
    ):
        self.cfg, self.run, self.dataset, self.ctx, self.history, self.clock = cfg, run, dataset, ctx, history, clock
        self.evaluator = Evaluator(cfg, dataset, dataset.ts.to(ctx.device), floors)
        if ctx.is_main and ctx.progress and cfg.eval.path_metrics != "off" and resumed_at in (None, 0):
            note = small_held_out(dataset.val.size(0))
            if note:
                print(f"infgan: note: {note}", file=sys.stderr, flush=True)
        self.tracker = tracker if ctx.is_main and tracker is not None else Tracker(Tracking(), run.root)
        self.tracker.start(cfg)
        self.board = Board(run.root, ctx.is_main and cfg.eval.tensorboard, resumed_at)
        self.frames = SampleFrames(run.frames_path, cfg.eval.gif_frames if ctx.is_main else 0)
        if resumed_at is not None:
            self.frames.load(resumed_at)
        real = dataset.denormalise(dataset.val, dataset.val_anchors) if self.board.enabled else None
        self.canvas = FrameCanvas(real, dataset.names, dataset.time_unit) if real is not None else None

    def evaluate(self, state: TrainState) -> dict[str, Any]:
        """Rank 0 evaluates; every rank gets its record, with the diagnostics of all ranks (a collective)."""
        ctx, progress = self.ctx, state.progress
        means = ctx.reduce_mean(progress.take_means())
        record = None
        if ctx.is_main:
            wall = self.clock()
            quality = self.evaluator(state, final=state.step >= self.cfg.train.steps)
            record = {"step": state.step, **quality, **means, "time/wall_s": wall, "time/unix": time.time()}
            self.run.append_metrics(record)
            self.tracker.log(record)
            self._show(record)
        record = ctx.broadcast(record)
        progress.note_score(record["val/score"], state.step)
        self.history.append(record)
        return record

    def _show(self, record: dict[str, Any]) -> None:
        """One evaluation's TensorBoard scalars and sample image, and its frame of the animation."""
        fake = self.evaluator.last_fake
        if fake is None or not bool(torch.isfinite(fake).all()):  # a diverging generator: numbers only
            self.board.log(record)
            return
        shown = self.dataset.denormalise(fake[:FRAME_PATHS])
        self.frames.add(record["step"], shown)
        image = self.canvas.render(record["step"], shown.numpy()) if self.canvas is not None else None
        self.board.log(record, image)

    def close(self) -> None:
        self.board.close()  # every evaluation is behind: flushed, also when interrupted

    def write_final(self, state: TrainState) -> None:
        """Final generator weights and every plot, from rank 0."""
        run, dataset = self.run, self.dataset
        atomic_torch_save(
            {
                "generator": state.eval_generator().state_dict(),
                "data_size": dataset.channels,
                "data": dataset.describe(),
                "step": state.step,
            },
            run.generator_path,
        )
        if not self.cfg.eval.plots:
            return
        fake = self.evaluator.last_fake
        if fake is not None and bool(torch.isfinite(fake).all()):  # a diverged generator has nothing to show
            fake = dataset.denormalise(fake)
            real_paths = dataset.denormalise(dataset.val, dataset.val_anchors)
            plots.plot_samples(real_paths, fake, run.plots / "samples.png", dataset.names, dataset.time_unit)
            real = dataset.denormalise(dataset.val_grid, dataset.val_anchors)
            plots.plot_marginals(real, fake, run.plots / "marginals.png", dataset.names)
            plot_diagnostics(real, fake, run.plots, dataset.names)
            self.frames.write_gif(real_paths, run.plots / "samples.gif", dataset.names, dataset.time_unit, self.canvas)
        plots.plot_training_curves(self.history, run.plots / "losses.png")
        plots.plot_score(self.history, run.plots / "val_score.png")
        plots.plot_path_metrics(self.history, run.plots / "path_metrics.png")
