"""Which channels give a run's generator away: TimeGAN's classifier with groups of channels made real.

For each group, the generated windows' channels in the group are replaced by those of real windows
drawn at random (each channel keeps its real dynamics; its ties to the other channels are broken),
and TimeGAN's classifier is trained again. A group whose swap brings the score down is where the
generator is told from the data; swapping every channel but one group shows that group beside real
channels. Where a group's channels move with the others (temperatures with humidities and dew
point), both swaps break those ties and the classifier finds the break, so a third case trains the
classifier on the group's channels alone, in real and generated windows both ("alone GROUP"): how
well the generator makes that group's own joint law.

    python benchmarks/timegan_channels.py RUN --group rv=rv1,rv2 --group spiky=Appliances,lights \
        [--repeats 2] [--steps 2000]

Prints JSON: each case's scores (one per repeat) and mean; "as is" first, then each group swapped
("real GROUP"), each group beside real channels ("only GROUP": every other channel swapped) and each
group on its own ("alone GROUP"). Fewer classifier
steps than the protocol's 2000 (--steps) make a quicker, weaker probe: compare cases of one call only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a trained run directory")
    parser.add_argument(
        "--group", action="append", default=[], metavar="NAME=CH1,CH2", help="channels swapped together"
    )
    parser.add_argument("--repeats", type=int, default=2, help="classifiers per case (default 2)")
    parser.add_argument("--steps", type=int, default=2000, help="classifier steps (default the protocol's 2000)")
    parser.add_argument(
        "--cases",
        default="real,only,alone",
        help="which cases per group, comma-separated among real, only, alone (default all three)",
    )
    args = parser.parse_args()
    kinds = args.cases.split(",")
    if not args.group or args.repeats < 1 or args.steps < 1 or not set(kinds) <= {"real", "only", "alone"}:
        parser.exit(
            2,
            "timegan_channels.py: error: give at least one --group NAME=CH1,CH2; --repeats, --steps >= 1; "
            f"--cases among real, only, alone (got {args.cases!r})\n",
        )

    import torch

    from infgan.commands.evaluate import timegan_sets
    from infgan.config import ConfigError
    from infgan.metrics import timegan

    torch.set_num_threads(1)
    try:
        real, fake, names, seed, _ = timegan_sets(args.run)
    except (ConfigError, FileNotFoundError) as e:
        parser.exit(2, f"timegan_channels.py: error: {e}\n")
    groups: dict[str, list[int]] = {}
    for g in args.group:
        name, _, channels = g.partition("=")
        unknown = [c for c in channels.split(",") if c not in names]
        if not name or not channels or unknown:
            parser.exit(2, f"timegan_channels.py: error: --group {g!r}: write NAME=CH1,CH2 with channels of {names}\n")
        groups[name] = [names.index(c) for c in channels.split(",")]
    donors = real[torch.randperm(real.size(0), generator=torch.Generator().manual_seed(seed))]

    def swapped(channels: list[int]) -> torch.Tensor:
        out = fake.clone()
        out[..., channels] = donors[..., channels]
        return out

    every = set(range(len(names)))

    def windows_of(kind: str, channels: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The real and generated windows the classifier compares in one case."""
        if kind == "alone":
            return real[..., channels], fake[..., channels]
        return real, swapped(channels if kind == "real" else sorted(every - set(channels)))

    cases = {"as is": (real, fake)}
    for name, channels in groups.items():
        cases.update({f"{kind} {name}": windows_of(kind, channels) for kind in kinds})
    seeds = timegan.repeat_seeds(seed, args.repeats)
    out = {}
    for case, (reals, windows) in cases.items():
        scores = timegan.discriminative_many(reals, windows, seeds, args.steps)
        out[case] = {"disc": scores, "mean": statistics.fmean(scores)}
        print(f"{case:30s} {statistics.fmean(scores):.3f}  {[round(s, 3) for s in scores]}", file=sys.stderr)
    print(json.dumps({"run": str(args.run), "repeats": args.repeats, "steps": args.steps, "cases": out}, indent=2))


if __name__ == "__main__":
    main()
