"""ASHA + TPE against random search without early stopping, on one OU space and one total budget.

    python benchmarks/hpo_efficiency.py [--repeats 3] [--trials 8] [--steps 160] [--space SPACE.yaml]

The budget is `trials x steps` training steps (summed over trials). Random search spends it on
`trials` full-length trials; ASHA + TPE starts trials until the budget is spent, stopping weak ones
early. For each repeat (searcher seed = repeat) it prints the best val/score against cumulative
training steps for both, then a summary: each method's final best, and the fraction of random
search's steps that ASHA + TPE needed to reach random search's final best (null if it never did).
Trials run on the base config of the space shrunk for speed (t_size 32, batch 64), 2 at a time.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

SHRINK = {"data": {"t_size": 32}, "train": {"batch_size": 64, "swa_start": 80}}


def sweep(space, exp: Path, strategy: str, budget: int) -> list[list[float]]:
    """Run one sweep; return its [cumulative steps, best so far] curve."""
    from infgan.tune.report import best_so_far, collect
    from infgan.tune.run import run_sweep

    asha = strategy == "asha_tpe"
    if not asha:
        # A seed stream of its own: TPE's random start-up trials come from the same kind of
        # seeded sampler, so with equal seeds both methods would try the same first configs.
        space = dataclasses.replace(space, seed=space.seed + 1000)
    with contextlib.redirect_stdout(sys.stderr):  # Tune's progress tables: stdout stays JSON only
        run_sweep(
            space,
            exp,
            resume=False,
            concurrency=2,
            address=None,
            sampler="tpe" if asha else "random",
            early_stopping=asha,
            first_points=asha,
            max_total_steps=budget,
        )
    _, trials = collect(exp)
    return [[steps, best] for steps, _, best in best_so_far(trials) if steps <= budget]


def steps_to_reach(curve: list[list[float]], target: float) -> int | None:
    """The first cumulative step count at which the best so far is <= target."""
    return next((int(s) for s, b in curve if b <= target), None)


def main() -> None:
    from infgan.config import merge
    from infgan.tune.space import load_space

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", help="search space (default: search_spaces/ou.yaml)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trials", type=int, default=8, help="random search's number of full trials")
    parser.add_argument("--steps", type=int, default=160, help="full trial length (training steps)")
    args = parser.parse_args()
    base = load_space(args.space)
    budget = args.trials * args.steps
    fractions, finals = [], {"asha_tpe": [], "random": []}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            space = dataclasses.replace(
                base,
                seed=repeat,
                samples=10 * args.trials,
                steps=args.steps,
                eval_every=args.steps // 8,
                grace_period=args.steps // 8,
                reduction_factor=3,
                base=merge(
                    base.base,
                    {
                        **SHRINK,
                        "train": {**SHRINK["train"], "steps": args.steps},
                        "eval": {"every": args.steps // 8},
                        "checkpoint": {"every": args.steps // 8},
                    },
                ),
            )
            curves = {}
            for strategy in ("random", "asha_tpe"):
                curves[strategy] = sweep(space, Path(tmp) / f"{strategy}-{repeat}", strategy, budget)
                finals[strategy].append(curves[strategy][-1][1])
                print(
                    json.dumps(
                        {
                            "repeat": repeat,
                            "strategy": strategy,
                            "budget_steps": budget,
                            "final_best": curves[strategy][-1][1],
                            "curve": curves[strategy],
                        }
                    ),
                    flush=True,
                )
            reached = steps_to_reach(curves["asha_tpe"], curves["random"][-1][1])
            fractions.append(None if reached is None else round(reached / budget, 3))
    done = [f for f in fractions if f is not None]
    print(
        json.dumps(
            {
                "summary": True,
                "repeats": args.repeats,
                "budget_steps": budget,
                "trial_steps": args.steps,
                "final_best_random": finals["random"],
                "final_best_asha_tpe": finals["asha_tpe"],
                "asha_tpe_fraction_of_random_steps_to_match": fractions,
                "median_fraction": statistics.median(done) if done else None,
                "repeats_where_asha_tpe_matched": len(done),
            }
        )
    )


if __name__ == "__main__":
    main()
