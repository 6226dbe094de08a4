"""`fit`: the training loop every path runs, with evaluation, checkpoints and the run directory.

Its parts: `_open` (start or resume the run directory, the floors), `Sinks` (sinks.py: where each
evaluation goes), `DivergenceGuard` (guard.py), and the step function (`train_step` unless a
caller passes another, as the tests do to stop a run at a chosen step).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from infgan import metrics
from infgan.config import Config
from infgan.data import Dataset, build_dataset
from infgan.data.dataset import sample_batch
from infgan.data.noise import increment_correlation, quiet_channels, white_noise
from infgan.metrics.floors import VERSION as FLOORS_VERSION
from infgan.metrics.floors import floors as metric_floors
from infgan.metrics.path_level import metric_threads
from infgan.objective import with_floor
from infgan.train import losses
from infgan.train.context import RunContext, resolve_device
from infgan.train.guard import DivergenceGuard
from infgan.train.run_dir import RunDir
from infgan.train.sinks import Clock, Sinks
from infgan.train.state import Progress, TrainState, init_state, rank_seed
from infgan.train.step import Players, train_step
from infgan.wandb.tracking import Tracker

DIAGNOSTICS = ("critic_loss", "generator_loss", "score_real", "score_fake", "gp", "sig_score", "fdm")


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
        state.progress = Progress.from_dict(mine["progress"])
    elif ctx.rank > 0:
        # Another world size (or an adopted PBT state): a fresh stream rather than a copy of rank 0's.
        state.rng.manual_seed(rank_seed(state.step, ctx.rank, payload.get("reseed", "resumed")))


def _postfix(record: dict[str, Any], progress: Progress) -> dict[str, str]:
    best = "-" if progress.best_score is None else f"{progress.best_score:.3f}"
    out = {"val/score": with_floor(record, "val/score"), "best": best}
    out.update({k: with_floor(record, k) for k in metrics.PATH_METRICS if k in record})
    return out


@dataclass
class _Opened:
    """What `_open` found: the checkpoint resumed from (or None), the records so far and the floors."""

    payload: dict[str, Any] | None
    history: list[dict[str, Any]] = field(default_factory=list)  # rank 0: all, others: this session's
    floors: dict[str, float] = field(default_factory=dict)  # rank 0 evaluates, so rank 0 alone needs them


def _open(cfg: Config, run: RunDir, dataset: Dataset, state: TrainState, ctx: RunContext, resume: bool) -> _Opened:
    """Resume from the latest intact checkpoint (when asked and there is one) or start afresh; rank 0
    cuts `metrics.jsonl` back to the step resumed from, or refuses a run directory in use and creates it."""
    opened = _Opened(ctx.restore(run.root, resume))
    if opened.payload is not None:
        _load(state, opened.payload, ctx)
        state.set_rates(cfg)  # the same values for a resume; a PBT member's new ones after an exploit
        state.progress.resumed_from.append(state.step)
    if ctx.is_main:
        path_level, threads = cfg.eval.path_metrics != "off", metric_threads(cfg.eval.threads)
        if resume and run.config_path.exists():
            opened.history = run.truncate_metrics(state.step if opened.payload else -1)
            opened.floors = run.saved_floors() or metric_floors(dataset, cfg.data, cfg.seed, path_level, threads)
        else:
            run.refuse_existing()  # before the floors are computed
            opened.floors = metric_floors(dataset, cfg.data, cfg.seed, path_level, threads)
            run.create(cfg, {**dataset.describe(), "floors": opened.floors, "floors_version": FLOORS_VERSION})
    return opened


def _batches(cfg: Config, dataset: Dataset, state: TrainState, ctx: RunContext) -> Callable[[], Any]:
    """This rank's share of the training set, drawn from as one batch per call."""
    coeffs = dataset.coeffs(ctx.rank, ctx.world_size).to(ctx.device)
    conds, observed = dataset.conditions(ctx.rank, ctx.world_size), dataset.observed(ctx.rank, ctx.world_size)
    conds = None if conds is None else conds.to(ctx.device)
    observed = None if observed is None else observed.to(ctx.device)
    local_batch = cfg.train.batch_size // ctx.world_size
    return lambda: sample_batch(coeffs, local_batch, state.rng, conds, observed)


def _summary(
    state: TrainState, ctx: RunContext, sinks: Sinks, floors: dict[str, float], message: str | None
) -> dict[str, Any]:
    history, progress = sinks.history, state.progress
    last = history[-1] if history else {}
    return {
        "status": "completed" if message is None else "diverged",
        "steps": state.step,
        "final_score": last["val/score"] if history else None,
        "best_score": progress.best_score,
        "best_step": progress.best_step,
        "wall_time_s": round(sinks.clock(), 3),
        "message": message,
        "resumed_from": progress.resumed_from,
        "world_size": ctx.world_size,
        "path_metrics": {k: last[k] for m in metrics.PATH_METRICS for k in (m, f"{m}_se") if k in last},
        "floors": floors,
    }


def _after_step(cfg: Config, run: RunDir, state: TrainState, ctx: RunContext, sinks: Sinks, bar: Any) -> bool:
    """Evaluate and/or checkpoint when the step just taken asks for it; whether it evaluated."""
    last = state.step == cfg.train.steps
    is_eval, is_ckpt = state.step % cfg.eval.every == 0 or last, state.step % cfg.checkpoint.every == 0 or last
    if not (is_eval or is_ckpt):
        return False
    rec = sinks.evaluate(state) if is_eval else None
    if rec is not None:
        bar.set_postfix(_postfix(rec, state.progress))
    if is_ckpt:
        state.progress.wall_s = sinks.clock()
    ctx.publish(run.root, state.step, rec, _payload(state, ctx) if is_ckpt else None, cfg.checkpoint.keep)
    return is_eval


def _finish(
    run: RunDir, state: TrainState, ctx: RunContext, sinks: Sinks, summary: dict[str, Any], resumed_at_end: bool
) -> dict[str, Any]:
    """Write the final files and summary; a run resumed with nothing left to train hands on its
    last result again (a restarted Tune trial must report something) and keeps its files."""
    if resumed_at_end:
        # Only rank 0 has read the run's history, and every Ray Train worker must reach the
        # report, so rank 0's last record goes to all ranks.
        last_record = ctx.broadcast(sinks.history[-1] if sinks.history else None)
        if last_record is not None:
            ctx.publish(run.root, state.step, last_record, None, sinks.cfg.checkpoint.keep)
        if run.summary_path.exists():
            sinks.tracker.finish(None)
            return json.loads(run.summary_path.read_text())
    if ctx.is_main:
        sinks.write_final(state)
        run.write_summary(summary)
    sinks.tracker.finish(summary, run.plots)
    return summary


def fit(
    cfg: Config,
    out_dir: str | Path,
    ctx: RunContext | None = None,
    resume: bool = False,
    tracker: Tracker | None = None,
    step: Callable[..., dict[str, torch.Tensor]] | None = None,
) -> dict[str, Any]:
    """Train one SDE-GAN as `cfg` says, writing the run directory; returns the summary.

    Every path runs this (see `infgan.train`); `ctx` holds what differs between them. `tracker`
    (rank 0's only) logs every evaluation and the final plots and summary to W&B. `step` is the
    training step (`train_step`, the default; another takes its arguments and gives its result).
    """
    ctx = ctx or RunContext(device=resolve_device(cfg.train.device))
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    run, dataset = RunDir(Path(out_dir)), build_dataset(cfg.data, cfg.seed)
    noise = None
    if cfg.model.obs_noise_start == "data":
        values = dataset.train[..., 1:]
        noise = (white_noise(values), increment_correlation(values))
    quiet = quiet_channels(cfg.model.obs_noise_channels, dataset.names, cfg.data.dataset)
    state = init_state(cfg, dataset.channels, ctx.device, ctx.rank, dataset.cond_width, dataset.constant, noise, quiet)
    critic = None if state.critic is None else ctx.wrap(state.critic)
    players, loss = Players(ctx.wrap(state.generator), critic, ctx.shard()), losses.build(cfg.loss)
    opened = _open(cfg, run, dataset, state, ctx, resume)
    resumed_at = state.step if opened.payload is not None else None
    clock = Clock(state.progress.wall_s)
    sinks = Sinks(cfg, run, dataset, ctx, opened.floors, opened.history, tracker, resumed_at, clock)
    guard, batch, ts = (
        DivergenceGuard(cfg.eval.diverge_factor),
        _batches(cfg, dataset, state, ctx),
        dataset.ts.to(ctx.device),
    )
    message = None
    if state.step == 0:
        first = sinks.evaluate(state)
        ctx.publish(run.root, 0, first, None, cfg.checkpoint.keep)
        message = guard.score(first, state.progress)
    resumed_at_end = resumed_at is not None and state.step >= cfg.train.steps
    shown = ctx.is_main and ctx.progress
    bar = tqdm(
        total=cfg.train.steps, initial=state.step, desc="train", unit="step", disable=not shown, dynamic_ncols=True
    )
    try:
        while message is None and state.step < cfg.train.steps:
            state.set_rates(cfg)  # the schedule's rates for this step
            out = (step or train_step)(loss, state, players, batch, ts, cfg.train.n_critic)
            message = guard.losses(out, state.step + 1, ctx)
            if message is not None:
                break
            state.progress.add({k: float(out[k]) for k in DIAGNOSTICS if k in out})
            state.step += 1
            if state.step > cfg.train.swa_start:
                state.update_averages()
            bar.update(1)
            if _after_step(cfg, run, state, ctx, sinks, bar):
                message = guard.score(sinks.history[-1], state.progress)
    finally:
        bar.close()
        sinks.close()
    summary = _summary(state, ctx, sinks, opened.floors, message)
    return _finish(run, state, ctx, sinks, summary, resumed_at_end)
