"""TimeGAN's published discriminative and predictive scores, as its code defines them, so that
numbers compare with the published tables (TimeGAN, Diffusion-TS, ...) on the same data.

This is a named variant beside infgan's own `val/disc` and `val/pred` (which handle missing
values, irregular time and one-channel data, and share one classifier design). What TimeGAN's
code does, and this module repeats (docs/metrics.md, "TimeGAN's protocol"):

- Data: every window of the whole series (no held-out part), each channel min-max scaled over
  the whole series to [0, 1]; as many generated windows as real ones, on the same scale.
- Discriminative: a one-layer GRU with int(dim / 2) units read at the last step, a linear logit,
  sigmoid cross-entropy; real and generated windows each split 80/20 at random; 2000 Adam steps
  (learning rate 1e-3) on 128 real and 128 generated training windows drawn without replacement;
  the score is |accuracy - 0.5| on both test parts, thresholded at probability 0.5.
- Predictive: a one-layer GRU with int(dim / 2) units over the first dim - 1 channels, a sigmoid
  read-out at every step predicting the last channel one step ahead; 5000 Adam steps of 128
  generated windows, L1 loss; the score is the mean absolute error on every real window.
- TimeGAN's `main_timegan.py` repeats each score 10 times and reports the mean.

Weights start as TensorFlow 1's would (Glorot-uniform kernels, GRU gate biases 1, others 0).
One difference stays: TensorFlow's GRU cell applies the reset gate to the state before the
recurrent product, PyTorch's after it; both are standard GRUs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.functional import binary_cross_entropy_with_logits

from infgan.metrics.sequence import Stacked

DISC_STEPS = 2000
PRED_STEPS = 5000
BATCH = 128
TRAIN_RATE = 0.8
REPEATS = 10  # TimeGAN's metric_iteration
# Data TimeGAN's code does not min-max scale: its sines are generated in [0, 1] (its loader scales files only).
UNSCALED = ("sines",)


class _GRU(nn.Module):
    """One GRU layer with int(dim / 2) units (at least 1) and a linear read-out, TensorFlow-1 initialised."""

    def __init__(self, inputs: int, hidden: int):
        super().__init__()
        self.gru = nn.GRU(inputs, hidden, batch_first=True)
        self.readout = nn.Linear(hidden, 1)
        w_ih, w_hh, b_ih, b_hh = (
            getattr(self.gru, n) for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
        )
        with torch.no_grad():
            # TensorFlow's GRU cell keeps one Glorot-uniform kernel over [input, state] for both gates
            # (fan-out 2 * hidden) and one for the candidate (fan-out hidden); gate biases start at 1.
            for gate, fan_out in enumerate((2 * hidden, 2 * hidden, hidden)):  # PyTorch's order: reset, update, new
                rows = slice(gate * hidden, (gate + 1) * hidden)
                bound = math.sqrt(6 / (inputs + hidden + fan_out))
                w_ih[rows].uniform_(-bound, bound)
                w_hh[rows].uniform_(-bound, bound)
                b_ih[rows].fill_(1.0 if gate < 2 else 0.0)
                b_hh[rows].zero_()
            nn.init.xavier_uniform_(self.readout.weight)
            self.readout.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (batch, time, inputs) -> (batch, time) logits
        return self.readout(self.gru(x)[0]).squeeze(-1)


def minmax(real: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Every set (n, time, channels) scaled by the real set's per-channel min and max, as TimeGAN scales."""
    flat = real.reshape(-1, real.size(-1))
    low, high = flat.min(0).values, flat.max(0).values
    return [(x - low) / (high - low + 1e-7) for x in (real, *others)]


def _model(inputs: int, dim: int, seed: int) -> _GRU:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _GRU(inputs, max(1, dim // 2))


def _batch(n: int, g: torch.Generator) -> torch.Tensor:
    """Row indices of one batch of BATCH rows drawn without replacement (TimeGAN's batch_generator)."""
    return torch.randperm(n, generator=g)[:BATCH]


def _split(rows: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`rows` (indices into a set) shuffled by `g` and cut TRAIN_RATE / rest (TimeGAN's train_test_divide)."""
    order = rows[torch.randperm(rows.numel(), generator=g)]
    cut = int(rows.numel() * TRAIN_RATE)
    return order[:cut], order[cut:]


Progress = Callable[[float], object] | None  # told how many repeats' worth of work was done


def _steps(steps: int, repeats: int, progress: Progress):
    """range(steps), telling `progress` at each tenth of the steps how much was done (in repeats' worth)."""
    tenth, told = max(1, steps // 10), 0
    for k in range(steps):
        yield k
        done = k + 1
        if progress is not None and (done % tenth == 0 or done == steps):
            progress(repeats * (done - told) / steps)
            told = done


def discriminative_many(
    a: torch.Tensor,
    b: torch.Tensor,
    seeds: list[int],
    steps: int = DISC_STEPS,
    rows: tuple[torch.Tensor, torch.Tensor] | None = None,
    progress: Progress = None,
) -> list[float]:
    """TimeGAN's discriminative score, |accuracy - 0.5|, once per seed: set `a` (label real) against set
    `b` (n, time, channels; min-max scaled). `rows`: per repeat the rows of `a` and of `b` it uses
    ((R, n_a), (R, n_b)); default every row."""
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    if rows is None:
        rows = (torch.arange(a.size(0)).expand(len(seeds), -1), torch.arange(b.size(0)).expand(len(seeds), -1))
    splits = [(_split(rows[0][r], g), _split(rows[1][r], g)) for r, g in enumerate(gens)]
    a_fit, a_test = (torch.stack([s[0][k] for s in splits]) for k in (0, 1))
    b_fit, b_test = (torch.stack([s[1][k] for s in splits]) for k in (0, 1))
    a, b = a.float(), b.float()
    model = Stacked([_model(a.size(-1), a.size(-1), s) for s in seeds])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in _steps(steps, len(seeds), progress):
        picks = [(_batch(a_fit.size(1), g), _batch(b_fit.size(1), g)) for g in gens]
        i = torch.stack([a_fit[r, p[0]] for r, p in enumerate(picks)])
        j = torch.stack([b_fit[r, p[1]] for r, p in enumerate(picks)])
        logits = model(torch.cat([a[i], b[j]], dim=1))[..., -1, 0]  # (R, batch of a + batch of b)
        labels = torch.cat([torch.ones_like(i, dtype=logits.dtype), torch.zeros_like(j, dtype=logits.dtype)], 1)
        # Each repeat's loss as TimeGAN's: the mean over real plus the mean over generated windows.
        loss = binary_cross_entropy_with_logits(logits, labels, reduction="none")
        (loss[:, : i.size(1)].mean(dim=1) + loss[:, i.size(1) :].mean(dim=1)).sum().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    out = []
    with torch.no_grad():
        for r in range(len(seeds)):
            one = model.one(r)
            right = (one(a[a_test[r]])[:, -1, 0] > 0).sum() + (one(b[b_test[r]])[:, -1, 0] <= 0).sum()
            out.append(abs(0.5 - right.item() / (a_test.size(1) + b_test.size(1))))
    return out


def discriminative(real: torch.Tensor, fake: torch.Tensor, seed: int, steps: int = DISC_STEPS) -> float:
    """|accuracy - 0.5| of TimeGAN's post-hoc classifier; both sets (n, time, channels) already min-max scaled."""
    return discriminative_many(real, fake, [seed], steps)[0]


def predictive_many(
    fit: torch.Tensor, test: torch.Tensor, seeds: list[int], steps: int = PRED_STEPS, progress: Progress = None
) -> list[float]:
    """TimeGAN's next-step MAE of the last channel, once per seed: trained on `fit`, tested on `test`."""
    dim = fit.size(-1)
    if dim < 2:
        raise ValueError("TimeGAN's predictive score needs at least 2 channels (it predicts the last from the others)")
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    fit, test = fit.float(), test.float()
    model = Stacked([_model(dim - 1, dim, s) for s in seeds])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in _steps(steps, len(seeds), progress):
        x = fit[torch.stack([_batch(fit.size(0), g) for g in gens])]  # (R, BATCH, time, dim)
        loss = (torch.sigmoid(model(x[:, :, :-1, :-1])[..., 0]) - x[:, :, 1:, -1]).abs().mean(dim=(1, 2))
        loss.sum().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    with torch.no_grad():
        return [
            (torch.sigmoid(model.one(r)(test[:, :-1, :-1])[..., 0]) - test[:, 1:, -1]).abs().mean().item()
            for r in range(len(seeds))
        ]


def predictive(fit: torch.Tensor, test: torch.Tensor, seed: int, steps: int = PRED_STEPS) -> float:
    """TimeGAN's next-step MAE of the last channel: trained on `fit`, tested on `test` (min-max scaled)."""
    return predictive_many(fit, test, [seed], steps)[0]


def _summary(runs: dict[str, list[float]]) -> dict[str, float]:
    out = {}
    for k, v in runs.items():
        t = torch.tensor(v, dtype=torch.float64)
        out[f"timegan/{k}"] = float(t.mean())
        out[f"timegan/{k}_std"] = float(t.std()) if len(v) > 1 else math.nan
    return out


def repeat_seeds(seed: int, repeats: int) -> list[int]:
    """The seeds of a run's `repeats` classifiers (and of the floors' halves): far apart, so that the
    repeats of two neighbouring run seeds never share one."""
    return [seed + 1000 * r for r in range(repeats)]


def scores(
    real: torch.Tensor,
    fake: torch.Tensor,
    seed: int,
    repeats: int = REPEATS,
    progress: Progress = None,
    shrink: int = 1,
) -> dict:
    """Both scores, mean and std over `repeats` seeds; `real` and `fake` min-max scaled, as many of each.
    `shrink` > 1 divides the classifiers' training steps (tests and toy runs only: not the protocol)."""
    seeds = repeat_seeds(seed, repeats)
    return _summary(
        {
            "disc": discriminative_many(real, fake, seeds, DISC_STEPS // shrink, progress=progress),
            "pred": predictive_many(fake, real, seeds, PRED_STEPS // shrink, progress=progress),
        }
    )


def protocol_floors(
    real: torch.Tensor, seed: int, repeats: int = REPEATS, progress: Progress = None, shrink: int = 1
) -> dict:
    """The scores' real-data floors: discriminative between two random halves of the real windows,
    predictive trained and tested on the real windows (the papers' "original data" row)."""
    seeds = repeat_seeds(seed, repeats)
    halves = [torch.randperm(real.size(0), generator=torch.Generator().manual_seed(s)) for s in seeds]
    n = real.size(0) // 2
    rows = (torch.stack([h[:n] for h in halves]), torch.stack([h[n:] for h in halves]))
    return _summary(
        {
            "disc_floor": discriminative_many(real, real, seeds, DISC_STEPS // shrink, rows, progress),
            "pred_floor": predictive_many(real, real, seeds, PRED_STEPS // shrink, progress),
        }
    )
