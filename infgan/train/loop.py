"""`fit`: the training loop every path runs, with evaluation, checkpoints and the run directory."""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from infgan import metrics, plots
from infgan.config import Config
from infgan.data import Dataset, build_dataset
from infgan.data.dataset import sample_batch
from infgan.train.checkpoint import atomic_torch_save
from infgan.tracking import Tracker, Tracking
from infgan.train.context import RunContext, resolve_device
from infgan.train.run_dir import RunDir
from infgan.train.state import TrainState, init_state, rank_seed
from infgan.train.step import Players, train_step

DIAGNOSTICS = ("critic_loss", "generator_loss", "score_real", "score_fake", "gp")


class Evaluator:
    """Quality metrics of the evaluation generator on the held-out set, with fixed noise."""

    def __init__(self, cfg: Config, dataset: Dataset, ts: torch.Tensor):
        self.dataset, self.ts = dataset, ts
        self.seed = rank_seed(cfg.seed, 0, "eval")  # the same noise at every evaluation and on every rank
        self.last_fake: torch.Tensor | None = None

    def __call__(self, state: TrainState) -> dict[str, float]:
        fake = metrics.generate(state.eval_generator(), self.ts, self.dataset.val.size(0), self.seed).cpu()
        self.last_fake = fake
        return metrics.quality_metrics(self.dataset.val_grid, fake, self.dataset.names)


def _take_means(state: TrainState, ctx: RunContext) -> dict[str, float]:
    """Mean training diagnostics since the last evaluation, averaged over ranks; resets the sums."""
    sums, n = state.extra.get("sums", {}), state.extra.get("count", 0)
    means = {f"train/{k}": v / n for k, v in sums.items()} if n else {}
    state.extra["sums"], state.extra["count"] = {}, 0
    return ctx.reduce_mean(means)


def _accumulate(state: TrainState, out: dict[str, torch.Tensor]) -> None:
    sums = state.extra.setdefault("sums", {})
    for k in DIAGNOSTICS:
        if k in out:
            sums[k] = sums.get(k, 0.0) + float(out[k])
    state.extra["count"] = state.extra.get("count", 0) + 1


def _non_finite(out: dict[str, torch.Tensor]) -> str | None:
    for k in ("critic_loss", "generator_loss"):
        if k in out and not math.isfinite(float(out[k])):
            return f"the {k.replace('_', ' ')} is {float(out[k])}"
    return None


def _payload(state: TrainState, ctx: RunContext) -> dict[str, Any]:
    """The checkpoint: the state, plus every rank's own RNG and running sums (a collective)."""
    payload = state.state_dict()
    payload["ranks"] = ctx.gather({"rng": state.rng.get_state(), "extra": copy.deepcopy(state.extra)})
    return payload


def _load(state: TrainState, payload: dict[str, Any], ctx: RunContext) -> None:
    """Restore a checkpoint; each rank takes back its own RNG when the world size is unchanged."""
    state.load_state_dict(payload)
    ranks = payload.get("ranks", [])
    if len(ranks) == ctx.world_size:
        state.rng.set_state(ranks[ctx.rank]["rng"])
        state.extra = copy.deepcopy(ranks[ctx.rank]["extra"])
    elif ctx.rank > 0:
        # Another world size: give this rank a fresh stream rather than a copy of rank 0's.
        state.rng.manual_seed(rank_seed(state.step, ctx.rank, "resumed"))


def _write_final(run: RunDir, state: TrainState, dataset: Dataset, evaluator: Evaluator,
                 history: list[dict[str, Any]]) -> None:
    """Final generator weights and every plot, from rank 0."""
    atomic_torch_save({"generator": state.eval_generator().state_dict(), "data_size": dataset.channels,
                       "data": dataset.describe(), "step": state.step}, run.generator_path)
    if evaluator.last_fake is not None:
        fake = dataset.denormalise(evaluator.last_fake)
        plots.plot_samples(dataset.denormalise(dataset.val), fake, run.plots / "samples.png", dataset.names,
                           dataset.time_unit)
        plots.plot_marginals(dataset.denormalise(dataset.val_grid), fake, run.plots / "marginals.png", dataset.names)
    plots.plot_training_curves(history, run.plots / "losses.png")
    plots.plot_score(history, run.plots / "val_score.png")


def fit(cfg: Config, out_dir: str | Path, ctx: RunContext | None = None, resume: bool = False,
        tracker: Tracker | None = None) -> dict[str, Any]:
    """Train one SDE-GAN as `cfg` says, writing the run directory; returns the summary.

    `tracker` (rank 0's only) logs every evaluation and the final plots and summary to W&B.
    """
    ctx = ctx or RunContext(device=resolve_device(cfg.train.device))
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    run = RunDir(Path(out_dir))
    dataset = build_dataset(cfg.data, cfg.seed)
    state = init_state(cfg, dataset.channels, ctx.device, ctx.rank)
    players = Players(ctx.wrap(state.generator), ctx.wrap(state.discriminator))

    payload = ctx.restore(run.root, resume)
    if payload is not None:
        _load(state, payload, ctx)
        state.extra.setdefault("resumed_from", []).append(state.step)
    history: list[dict[str, Any]] = []
    if ctx.is_main:
        if resume and run.config_path.exists():
            history = run.truncate_metrics(state.step if payload else -1)
        else:
            run.create(cfg, dataset.describe())
    tracker = tracker if ctx.is_main and tracker is not None else Tracker(Tracking(), run.root)
    tracker.start(cfg)

    coeffs = dataset.coeffs(ctx.rank, ctx.world_size).to(ctx.device)
    ts = dataset.ts.to(ctx.device)
    local_batch = cfg.train.batch_size // ctx.world_size
    evaluator = Evaluator(cfg, dataset, ts)
    wall_before, started = state.extra.get("wall_s", 0.0), time.perf_counter()

    def record(step_record: dict[str, Any]) -> None:
        score = step_record["val/score"]
        if math.isfinite(score) and score < state.extra.get("best_score", math.inf):
            state.extra["best_score"], state.extra["best_step"] = score, state.step
        history.append(step_record)
        if ctx.is_main:
            run.append_metrics(step_record)
            tracker.log(step_record)

    def evaluate() -> dict[str, Any]:
        wall = wall_before + time.perf_counter() - started
        return {"step": state.step, **evaluator(state), **_take_means(state, ctx), "time/wall_s": wall,
                "time/unix": time.time()}

    if state.step == 0:
        first = evaluate()
        record(first)
        ctx.publish(run.root, 0, first, None, cfg.checkpoint.keep)
    status, message = "completed", None
    resumed_at_end = payload is not None and state.step >= cfg.train.steps
    bar = tqdm(total=cfg.train.steps, initial=state.step, desc="train", unit="step", disable=not (ctx.is_main and ctx.progress),
               dynamic_ncols=True)
    try:
        while state.step < cfg.train.steps:
            out = train_step(cfg, state, players, lambda: sample_batch(coeffs, local_batch, state.rng), ts)
            problem = _non_finite(out)
            if ctx.any_true(problem is not None):
                status = "diverged"
                message = (f"run diverged at step {state.step + 1}: {problem or 'a loss on another rank is non-finite'}"
                           "; lower train.generator_lr / train.discriminator_lr or change loss.kind")
                break
            _accumulate(state, out)
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
                record(rec)
                bar.set_postfix({"val/score": f"{rec['val/score']:.3f}", "best": f"{state.extra['best_score']:.3f}"})
            ckpt = None
            if is_ckpt:
                state.extra["wall_s"] = wall_before + time.perf_counter() - started
                ckpt = _payload(state, ctx)
            ctx.publish(run.root, state.step, rec, ckpt, cfg.checkpoint.keep)
    finally:
        bar.close()
    if resumed_at_end and history:
        # Resumed with nothing left to train: hand on the last result again (a restarted Tune
        # trial must report something).
        ctx.publish(run.root, state.step, history[-1], None, cfg.checkpoint.keep)

    summary = {
        "status": status,
        "steps": state.step,
        "final_score": history[-1]["val/score"] if history else None,
        "best_score": state.extra.get("best_score"),
        "best_step": state.extra.get("best_step"),
        "wall_time_s": round(wall_before + time.perf_counter() - started, 3),
        "message": message,
        "resumed_from": state.extra.get("resumed_from", []),
        "world_size": ctx.world_size,
    }
    if resumed_at_end and run.summary_path.exists():
        tracker.finish(None)
        return json.loads(run.summary_path.read_text())  # finished before: leave its files as they are
    if ctx.is_main:
        _write_final(run, state, dataset, evaluator, history)
        run.write_summary(summary)
    tracker.finish(summary, run.plots)
    return summary
