"""`fit`: the training loop every path runs, with evaluation, checkpoints and the run directory."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from infgan import losses, metrics, plots
from infgan.animation import FRAME_PATHS, FrameCanvas, SampleFrames
from infgan.board import Board
from infgan.config import Config
from infgan.data import Dataset, build_dataset
from infgan.data.dataset import sample_batch
from infgan.diagnostics import plot_diagnostics
from infgan.metrics.discriminative import small_held_out
from infgan.metrics.floors import VERSION as FLOORS_VERSION
from infgan.metrics.floors import floors as metric_floors
from infgan.objective import with_floor
from infgan.tracking import Tracker, Tracking
from infgan.train.checkpoint import atomic_torch_save
from infgan.train.context import RunContext, resolve_device
from infgan.train.run_dir import RunDir
from infgan.train.state import Progress, TrainState, init_state, rank_seed
from infgan.train.step import Players, train_step

DIAGNOSTICS = ("critic_loss", "generator_loss", "score_real", "score_fake", "gp", "sig_score")


class Evaluator:
    """Quality metrics of the evaluation generator on the held-out set, with fixed noise (rank 0 only).

    Every record holds `val/score` and its parts, the path-level metrics when `eval.path_metrics`
    asks for them (`every` evaluation, or the `end`: the final step's), and the real-data floors.
    """

    def __init__(self, cfg: Config, dataset: Dataset, ts: torch.Tensor, floors: dict[str, float]):
        self.dataset, self.ts, self.floors, self.when = dataset, ts, floors, cfg.eval.path_metrics
        self.seed = rank_seed(cfg.seed, 0, "eval")  # the same noise at every evaluation
        self.last_fake: torch.Tensor | None = None

    def __call__(self, state: TrainState, final: bool) -> dict[str, float]:
        ds = self.dataset
        # A conditional generator makes each held-out path's twin: the same conditions, row by row.
        cond = None if ds.cond_val is None else ds.cond_val.to(self.ts.device)
        fake = metrics.generate(state.eval_generator(), self.ts, ds.val.size(0), self.seed, cond=cond).cpu()
        self.last_fake = fake
        out = metrics.quality_metrics(ds.val_grid, fake, ds.names)
        out.update(metrics.per_condition(ds, fake))
        if self.when == "every" or (self.when == "end" and final):
            trtr = self.floors.get("val/pred_trtr", math.nan)
            out.update(metrics.path_metrics(ds.val_grid, fake, float(ds.ts[-1]), self.seed, trtr))
        return {**out, **self.floors}


def _non_finite(out: dict[str, torch.Tensor]) -> str | None:
    for k in ("critic_loss", "generator_loss"):
        if k in out and not math.isfinite(float(out[k])):
            return f"the {k.replace('_', ' ')} is {float(out[k])}"
    return None


def _diverged(step: int, problem: str) -> str:
    """The one-line message of a diverged run, with what to change."""
    hint = (
        "the untrained generator already fails: lower model.initial_scale / model.field_scale"
        if step == 0
        else "lower train.generator_lr / train.discriminator_lr or change loss.kind"
    )
    return f"run diverged at step {step}: {problem}; {hint}"


def _payload(state: TrainState, ctx: RunContext) -> dict[str, Any]:
    """The checkpoint: the state, plus every rank's own RNG and running sums (a collective)."""
    payload = state.state_dict()
    payload["ranks"] = ctx.gather({"rng": state.rng.get_state(), "progress": state.progress.to_dict()})
    return payload


def _load(state: TrainState, payload: dict[str, Any], ctx: RunContext) -> None:
    """Restore a checkpoint; each rank takes back its own RNG when the world size is unchanged."""
    state.load_state_dict(payload)
    ranks = payload.get("ranks", [])
    if len(ranks) == ctx.world_size:
        mine = ranks[ctx.rank]
        state.rng.set_state(mine["rng"])
        state.progress = Progress.from_dict(mine["progress"] if "progress" in mine else mine.get("extra", {}))
    elif ctx.rank > 0:
        # Another world size: give this rank a fresh stream rather than a copy of rank 0's.
        state.rng.manual_seed(rank_seed(state.step, ctx.rank, "resumed"))


def _write_final(
    run: RunDir,
    state: TrainState,
    dataset: Dataset,
    evaluator: Evaluator,
    history: list[dict[str, Any]],
    frames: SampleFrames,
) -> None:
    """Final generator weights and every plot, from rank 0."""
    atomic_torch_save(
        {
            "generator": state.eval_generator().state_dict(),
            "data_size": dataset.channels,
            "data": dataset.describe(),
            "step": state.step,
        },
        run.generator_path,
    )
    fake = evaluator.last_fake
    if fake is not None and bool(torch.isfinite(fake).all()):  # a diverged generator has nothing to show
        fake = dataset.denormalise(fake)
        plots.plot_samples(
            dataset.denormalise(dataset.val, dataset.val_anchors),
            fake,
            run.plots / "samples.png",
            dataset.names,
            dataset.time_unit,
        )
        real = dataset.denormalise(dataset.val_grid, dataset.val_anchors)
        plots.plot_marginals(real, fake, run.plots / "marginals.png", dataset.names)
        plot_diagnostics(real, fake, run.plots, dataset.names)
        frames.write_gif(real, run.plots / "samples.gif", dataset.names, dataset.time_unit)
    plots.plot_training_curves(history, run.plots / "losses.png")
    plots.plot_score(history, run.plots / "val_score.png")
    plots.plot_path_metrics(history, run.plots / "path_metrics.png")


def _show(
    evaluator: Evaluator,
    dataset: Dataset,
    record: dict[str, Any],
    board: Board,
    frames: SampleFrames,
    canvas: FrameCanvas | None,
) -> None:
    """One evaluation's TensorBoard scalars and sample image, and its frame of the animation."""
    fake = evaluator.last_fake
    if fake is None or not bool(torch.isfinite(fake).all()):  # a diverging generator: numbers only
        board.log(record)
        return
    shown = dataset.denormalise(fake[:FRAME_PATHS])
    frames.add(record["step"], shown)
    board.log(record, canvas.render(record["step"], shown.numpy()) if canvas is not None else None)


def _postfix(record: dict[str, Any], progress: Progress) -> dict[str, str]:
    best = "-" if progress.best_score is None else f"{progress.best_score:.3f}"
    out = {"val/score": with_floor(record, "val/score"), "best": best}
    out.update({k: with_floor(record, k) for k in metrics.PATH_METRICS if k in record})
    return out


def fit(
    cfg: Config,
    out_dir: str | Path,
    ctx: RunContext | None = None,
    resume: bool = False,
    tracker: Tracker | None = None,
) -> dict[str, Any]:
    """Train one SDE-GAN as `cfg` says, writing the run directory; returns the summary.

    Every path runs this (see `infgan.train`); `ctx` holds what differs between them. `tracker`
    (rank 0's only) logs every evaluation and the final plots and summary to W&B.
    """
    ctx = ctx or RunContext(device=resolve_device(cfg.train.device))
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    run = RunDir(Path(out_dir))
    dataset = build_dataset(cfg.data, cfg.seed)
    state = init_state(cfg, dataset.channels, ctx.device, ctx.rank, dataset.cond_width)
    critic = None if state.discriminator is None else ctx.wrap(state.discriminator)
    players = Players(ctx.wrap(state.generator), critic, ctx.shard())
    loss = losses.build(cfg.loss)

    payload = ctx.restore(run.root, resume)
    if payload is not None:
        _load(state, payload, ctx)
        state.set_rates(cfg)  # the same values for a resume; a PBT member's new ones after an exploit
        state.progress.resumed_from.append(state.step)
    progress = state.progress
    history: list[dict[str, Any]] = []  # this run's records (rank 0: all of them, others: this session's)
    floors: dict[str, float] = {}  # rank 0 evaluates, so rank 0 alone needs them
    if ctx.is_main:
        path_level = cfg.eval.path_metrics != "off"
        if resume and run.config_path.exists():
            history = run.truncate_metrics(state.step if payload else -1)
            floors = run.saved_floors() or metric_floors(dataset, cfg.data, cfg.seed, path_level)
        else:
            run.refuse_existing()  # before the floors are computed
            floors = metric_floors(dataset, cfg.data, cfg.seed, path_level)
            run.create(cfg, {**dataset.describe(), "floors": floors, "floors_version": FLOORS_VERSION})
    if ctx.is_main and ctx.progress and cfg.eval.path_metrics != "off" and state.step == 0:
        note = small_held_out(dataset.val.size(0))
        if note:
            print(f"infgan: note: {note}", file=sys.stderr, flush=True)
    tracker = tracker if ctx.is_main and tracker is not None else Tracker(Tracking(), run.root)
    tracker.start(cfg)
    resumed_at = state.step if payload is not None else None
    board = Board(run.root, ctx.is_main and cfg.eval.tensorboard, resumed_at)
    frames = SampleFrames(run.frames_path, cfg.eval.gif_frames if ctx.is_main else 0)
    if resumed_at is not None:
        frames.load(resumed_at)
    real = dataset.denormalise(dataset.val, dataset.val_anchors) if board.enabled else None
    canvas = FrameCanvas(real, dataset.names, dataset.time_unit) if real is not None else None

    coeffs = dataset.coeffs(ctx.rank, ctx.world_size).to(ctx.device)
    conds = dataset.conditions(ctx.rank, ctx.world_size)
    conds = None if conds is None else conds.to(ctx.device)
    observed = dataset.observed(ctx.rank, ctx.world_size)
    observed = None if observed is None else observed.to(ctx.device)
    ts = dataset.ts.to(ctx.device)
    local_batch = cfg.train.batch_size // ctx.world_size
    evaluator = Evaluator(cfg, dataset, ts, floors)
    wall_before, started = progress.wall_s, time.perf_counter()

    def evaluate() -> dict[str, Any]:
        """Rank 0 evaluates; every rank gets its record, with the diagnostics of all ranks (a collective)."""
        means = ctx.reduce_mean(progress.take_means())
        record = None
        if ctx.is_main:
            wall = wall_before + time.perf_counter() - started
            quality = evaluator(state, final=state.step >= cfg.train.steps)
            record = {"step": state.step, **quality, **means, "time/wall_s": wall, "time/unix": time.time()}
            run.append_metrics(record)
            tracker.log(record)
            _show(evaluator, dataset, record, board, frames, canvas)
        record = ctx.broadcast(record)
        progress.note_score(record["val/score"], state.step)
        history.append(record)
        return record

    def bad_score(record: dict[str, Any]) -> str | None:
        score, first, factor = record["val/score"], progress.first_score, cfg.eval.diverge_factor
        if not math.isfinite(score):
            return f"the generated paths are not finite (val/score {score})"
        if factor and first is not None and first > 0 and score > factor * first:
            # Clipped critics keep the losses finite while the generator runs away: the score sees it.
            return (
                f"val/score {score:.3g} is over {factor:g} times the untrained generator's {first:.3g} "
                "(eval.diverge_factor)"
            )
        return None

    status, message = "completed", None
    if state.step == 0:
        first = evaluate()
        ctx.publish(run.root, 0, first, None, cfg.checkpoint.keep)
        problem = bad_score(first)
        if problem:
            status, message = "diverged", _diverged(0, problem)
    resumed_at_end = payload is not None and state.step >= cfg.train.steps
    bar = tqdm(
        total=cfg.train.steps,
        initial=state.step,
        desc="train",
        unit="step",
        disable=not (ctx.is_main and ctx.progress),
        dynamic_ncols=True,
    )
    try:
        while status == "completed" and state.step < cfg.train.steps:
            out = train_step(
                loss,
                state,
                players,
                lambda: sample_batch(coeffs, local_batch, state.rng, conds, observed),
                ts,
                cfg.train.n_critic,
            )
            problem = _non_finite(out)
            if ctx.any_true(problem is not None):
                status = "diverged"
                message = _diverged(state.step + 1, problem or "a loss on another rank is non-finite")
                break
            progress.add({k: float(out[k]) for k in DIAGNOSTICS if k in out})
            state.step += 1
            if state.step > cfg.train.swa_start:
                state.update_averages()
            bar.update(1)
            last = state.step == cfg.train.steps
            is_eval = state.step % cfg.eval.every == 0 or last
            is_ckpt = state.step % cfg.checkpoint.every == 0 or last
            if not (is_eval or is_ckpt):
                continue
            rec = evaluate() if is_eval else None
            if rec is not None:
                bar.set_postfix(_postfix(rec, progress))
            ckpt = None
            if is_ckpt:
                progress.wall_s = wall_before + time.perf_counter() - started
                ckpt = _payload(state, ctx)
            ctx.publish(run.root, state.step, rec, ckpt, cfg.checkpoint.keep)
            problem = bad_score(rec) if rec is not None else None
            if problem:
                status, message = "diverged", _diverged(state.step, problem)
    finally:
        bar.close()
        board.close()  # every evaluation is behind: flushed, also when interrupted
        if canvas is not None:
            canvas.close()
    if resumed_at_end:
        # Resumed with nothing left to train: hand on the last result again (a restarted Tune
        # trial must report something). Only rank 0 has read the run's history, and every Ray
        # Train worker must reach the report, so rank 0's last record goes to all ranks.
        last_record = ctx.broadcast(history[-1] if history else None)
        if last_record is not None:
            ctx.publish(run.root, state.step, last_record, None, cfg.checkpoint.keep)

    summary = {
        "status": status,
        "steps": state.step,
        "final_score": history[-1]["val/score"] if history else None,
        "best_score": progress.best_score,
        "best_step": progress.best_step,
        "wall_time_s": round(wall_before + time.perf_counter() - started, 3),
        "message": message,
        "resumed_from": progress.resumed_from,
        "world_size": ctx.world_size,
        "path_metrics": {
            k: history[-1][k] for m in metrics.PATH_METRICS for k in (m, f"{m}_se") if history and k in history[-1]
        },
        "floors": floors,
    }
    if resumed_at_end and run.summary_path.exists():
        tracker.finish(None)
        return json.loads(run.summary_path.read_text())  # finished before: leave its files as they are
    if ctx.is_main:
        _write_final(run, state, dataset, evaluator, history, frames)
        run.write_summary(summary)
    tracker.finish(summary, run.plots)
    return summary
