"""How a run's generated windows are shaped beside the real ones: roughness, turns, ties between
channels and values outside the real range, on the windows TimeGAN's protocol compares.

    python benchmarks/path_shape.py RUN [RUN ...] [--probes [--repeats 4] [--steps 2000]]

Prints JSON, one entry per run, each statistic for the real windows and the generated ones (both
min-max scaled by the real windows' range, as the protocol scales them):
- `second_difference`: mean |X_{t+1} - 2 X_t + X_{t-1}|, how rough the paths are;
- `turns`: how often a channel's increments change sign, per channel and window;
- `cross_channel_corr`: mean |correlation| between two channels of the last value, and of the rise
  over the first half of the window (`rise_corr`);
- `outside_range`: the share of windows with a value more than 1 % of its channel's range outside
  the range the real windows span.
With `--probes`, TimeGAN's classifier is also trained on four cases (`repeats` classifiers each):
the real windows against the generated ones as they are, against the generated ones made smooth
(each channel of each window projected on cubic polynomials in time), against real windows made
smooth the same way (smoothing alone is not found), and against the generated windows with each
channel taken from another generated window (the ties between channels broken): whether the
roughness, or the ties, are what the classifier finds. Where the TimeGAN score says a run is told
apart, these say in what (docs/quality.md, "Sines").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def shape(x, real) -> dict[str, float]:
    """The statistics of windows `x` (n, time, channels), the range taken from the real windows `real`."""
    import torch

    def cross(v: torch.Tensor) -> float:
        if v.size(-1) < 2:
            return float("nan")
        c = torch.corrcoef(v.T.double())
        i, j = torch.triu_indices(v.size(-1), v.size(-1), 1)
        return float(c[i, j].abs().mean())

    steps = torch.sign(torch.diff(x, dim=1))
    lo, hi = real.amin(dim=(0, 1)), real.amax(dim=(0, 1))
    slack = 0.01 * (hi - lo)
    return {
        "second_difference": float(torch.diff(x, n=2, dim=1).abs().mean()),
        "turns": float((torch.diff(steps, dim=1) != 0).sum(dim=1).double().mean()),
        "cross_channel_corr": cross(x[:, -1]),
        "rise_corr": cross(x[:, x.size(1) // 2] - x[:, 0]),
        "outside_range": float(((x < lo - slack) | (x > hi + slack)).flatten(1).any(dim=1).double().mean()),
    }


def probe_scores(real, fake, seed: int, repeats: int, steps: int) -> dict[str, list[float]]:
    """TimeGAN's discriminative score of real windows against the generated ones, the generated ones
    projected on cubics in time, real ones (another order of them) projected likewise, and the
    generated ones with each channel from a window of its own."""
    import torch

    from infgan.metrics import timegan

    t = torch.linspace(-1, 1, real.size(1), dtype=real.dtype)
    basis = torch.stack([t**k for k in range(min(4, real.size(1)))], dim=1)
    project = basis @ torch.linalg.pinv(basis)  # (time, time): least squares on the cubics

    def cubic(x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("st,ntc->nsc", project, x)

    g = torch.Generator().manual_seed(seed)
    others = real[torch.randperm(real.size(0), generator=g)]
    untied = torch.stack([fake[torch.randperm(fake.size(0), generator=g), :, c] for c in range(fake.size(-1))], -1)
    seeds = timegan.repeat_seeds(seed, repeats)
    cases = {
        "as is": fake,
        "generated made cubic": cubic(fake),
        "real made cubic": cubic(others),
        "generated, channels untied": untied,
    }
    return {name: timegan.discriminative_many(real, windows, seeds, steps) for name, windows in cases.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="trained run directories")
    parser.add_argument("--probes", action="store_true", help="TimeGAN's classifier on changed windows too")
    parser.add_argument("--repeats", type=int, default=4, help="classifiers per case with --probes (default 4)")
    parser.add_argument("--steps", type=int, default=2000, help="classifier steps (default the protocol's 2000)")
    args = parser.parse_args()
    if args.repeats < 1 or args.steps < 1:
        parser.exit(2, "path_shape.py: error: --repeats and --steps must be at least 1\n")

    import torch

    from infgan.commands.evaluate import timegan_sets
    from infgan.config import ConfigError

    torch.set_num_threads(1)
    out = {}
    for run in args.runs:
        try:
            real, fake, names, seed, _ = timegan_sets(run)
        except (ConfigError, FileNotFoundError) as e:
            parser.exit(2, f"path_shape.py: error: {run}: {e}\n")
        out[str(run)] = {"channels": names, "real": shape(real, real), "generated": shape(fake, real)}
        if args.probes:
            scores = probe_scores(real, fake, seed, args.repeats, args.steps)
            out[str(run)]["timegan_disc"] = {k: {"scores": v, "mean": sum(v) / len(v)} for k, v in scores.items()}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
