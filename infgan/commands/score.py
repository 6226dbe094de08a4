"""`infgan score`: the trained critic's score of every series or window of a file, as anomaly scores.

The critic learnt to score real paths above generated ones, so a path it scores low looks unlike
the training data to it. A run trained without a critic scores each path by its own loss's
kernel score against the generator's paths instead (`fdm`: the kernel score of (X_0, X_s, X_t -
X_s) over every start and lags 1, 2, 4, ...; `sig_score`: the signature kernel's, every point),
negated so that here too low means unusual: -phi(P, y) = 2 E k(X, y) - E k(X, X'), P the trained
generator's law (`SAMPLE` paths from a fixed seed; for a conditional run, under
conditions drawn from the training windows', so the score is against the generator's mixture over
conditions).

Each series of the file is cut into windows as training cut them
(`data.t_size` points every `data.stride` rows; a shorter series is one window), its times
rescaled by the run's time unit, its values transformed and normalised with the run's own
statistics (data.json) — the same path to the critic as a training window. The critic is the
latest checkpoint's (its weight average once averaging has begun, as the evaluated generator).

The held-out real windows of the run's own data are scored the same way; each score's
`percentile` is the share of those held-out scores at or below it (low: more unusual than almost
every real held-out window). Rows are ranked from the lowest score.

What a critic score is not: a calibrated likelihood. A WGAN critic is trained only to separate real
from generated paths, so its score ranks what it has learnt to look at; an anomaly unlike both can
score anywhere. The percentile against held-out real windows is the yardstick to read it by.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from infgan.config import ConfigError
from infgan.data import conditions, transforms
from infgan.data.dataset import build_dataset, interpolation_coeffs, stack_windows, windows
from infgan.data.files import DataError, Series, read_file
from infgan.metrics import generate
from infgan.outputs import check_output
from infgan.text import format_table
from infgan.train import losses
from infgan.train.losses.base import DirectLoss
from infgan.train.trained import TrainedRun

CHUNK = 1024  # paths per critic call
COLUMNS = ("rank", "series", "start", "end", "points", "score", "percentile")


Scorer = Callable[[torch.Tensor, "torch.Tensor | None"], np.ndarray]
SAMPLE = 256  # generated paths a kernel score is taken against (its cost grows with their square)


def _scorer(trained: TrainedRun) -> Scorer:
    """The run's scores of normalised paths: its critic's, or (no critic) its kernel score's."""
    root = trained.run.root
    state = trained.latest_state(f"no checkpoint to score with; train first (infgan train --out {root})")
    critic = state.eval_critic()
    if critic is not None:
        return lambda paths, cond: critic_scores(critic.eval(), paths, cond)
    described, ts, cfg = trained.data, trained.times, trained.cfg
    cond = None
    if trained.cond_width:
        pool = described["condition_pool"]
        rows = [pool[i] for i in torch.randint(0, len(pool), (SAMPLE,), generator=torch.Generator().manual_seed(0))]
        cond = conditions.encode(described["conditions"], rows)
    sample = generate(state.eval_generator().eval(), ts, SAMPLE, 0, cond=cond)
    loss = losses.build(cfg.loss)
    assert isinstance(loss, DirectLoss)
    return lambda paths, _: (-loss.per_path(sample, interpolation_coeffs(paths))).double().numpy()


@torch.no_grad()
def critic_scores(critic: torch.nn.Module, paths: torch.Tensor, cond: torch.Tensor | None = None) -> np.ndarray:
    """Scores (n,) of normalised paths (n, time, 1 + channels) with NaN gaps (and their conditions)."""
    coeffs = interpolation_coeffs(paths)
    parts = [
        critic(coeffs[i : i + CHUNK]) if cond is None else critic(coeffs[i : i + CHUNK], cond=cond[i : i + CHUNK])
        for i in range(0, coeffs.size(0), CHUNK)
    ]
    return torch.cat(parts).double().numpy()


def _as_paths(ws: list[Series], t_size: int, described: dict, source: str) -> torch.Tensor:
    """Windows as the critic's input: (n, t_size, 1 + channels), normalised like the run's data."""
    paths = stack_windows(ws, t_size, float(described.get("time_scale", 1.0)))
    kinds = described.get("transform") or ["none"] * (paths.size(-1) - 1)
    table = described.get("quantiles")
    table = None if table is None else torch.tensor(table, dtype=paths.dtype)
    paths[..., 1:] = transforms.forward(paths[..., 1:], kinds, described["channels"], source, table)
    mean, std = torch.tensor(described["mean"]), torch.tensor(described["std"])
    paths[..., 1:] = (paths[..., 1:] - mean.to(paths)) / std.to(paths)
    return paths


def score_file(run_dir: Path, data_path: Path) -> list[dict]:
    """Every window of `data_path`, scored and ranked (lowest score first), with its percentile."""
    trained = TrainedRun.open(run_dir)
    cfg, described = trained.cfg, trained.data
    names = list(described["channels"])
    if not Path(data_path).is_file():
        raise ConfigError(f"--data {data_path}: no such file; give a file in the run's data format (csv/parquet/npz)")
    # The run's own reading rules (columns, time and id columns), on the new file.
    file_cfg = dataclasses.replace(cfg.data, path=str(data_path))
    raw = read_file(file_cfg, str(data_path))
    if raw.channels != names:
        raise DataError(
            f"{data_path}: channels {', '.join(raw.channels)} are not the run's {', '.join(names)}; "
            "give a file with the run's channels (data.columns selects them)"
        )
    t_size, stride = cfg.data.t_size, cfg.data.stride or cfg.data.t_size
    ws = [w for s in raw.series for w in windows(s, t_size, stride)]
    specs = described.get("conditions") or []
    score = _scorer(trained)
    cond = conditions.encode(specs, [w.static for w in ws]) if specs else None  # the file's own conditions
    scores = score(_as_paths(ws, t_size, described, str(data_path)), cond)
    held_out = build_dataset(cfg.data, cfg.seed)
    reference = np.sort(score(held_out.val, held_out.cond_val))
    rows: list[dict[str, Any]] = [
        {
            "series": w.label,
            "start": float(w.times[0]),
            "end": float(w.times[-1]),
            "points": len(w.times),
            "score": float(s),
            "percentile": float(100.0 * np.searchsorted(reference, s, side="right") / len(reference)),
        }
        for w, s in zip(ws, scores)
    ]
    rows.sort(key=lambda r: r["score"])
    return [{"rank": i + 1, **r} for i, r in enumerate(rows)]


def write_scores(rows: list[dict], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return out


def scores_table(rows: list[dict], top: int) -> str:
    """The `top` lowest-scored windows as a table."""
    shown = [
        [str(r["rank"]), r["series"], f"{r['start']:g}", f"{r['end']:g}", f"{r['score']:.4g}", f"{r['percentile']:.1f}"]
        for r in rows[:top]
    ]
    return format_table(["rank", "series", "start", "end", "score", "held-out percentile"], shown)


# The command line


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--data", required=True, metavar="FILE", help="a file in the run's data format (csv/parquet/npz)")
    p.add_argument("--out", metavar="FILE.csv", help="write every window's row here (default: only the table)")
    p.add_argument("--top", type=int, default=10, metavar="K", help="rows shown, lowest score first (default 10)")


def run(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise ConfigError(f"--top must be a positive number of rows, got {args.top}")
    out = check_output(Path(args.out), "file", "--out") if args.out else None
    rows = score_file(Path(args.run_dir), Path(args.data))
    print(scores_table(rows, args.top))
    if out is not None:
        print(f"{len(rows)} windows ranked in {write_scores(rows, out)}")
    return 0
