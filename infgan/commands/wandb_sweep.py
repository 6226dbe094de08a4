"""`infgan wandb-sweep`: a search space as a W&B sweep file."""

from __future__ import annotations

import argparse
from pathlib import Path

from infgan.commands.args import (
    add_set_arg,
)
from infgan.outputs import check_output


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("space", nargs="?", metavar="SPACE.yaml", help="search space (default: search_spaces/ou.yaml)")
    p.add_argument("-o", "--out", required=True, metavar="SWEEP.yaml", help="the sweep file to write")
    p.add_argument("--method", choices=("bayes", "random"), default="bayes", help="W&B search method (default bayes)")
    add_set_arg(p, "override the base config (repeatable)")


def run(args: argparse.Namespace) -> int:
    from infgan.config import parse_set
    from infgan.tune.space import load_space
    from infgan.tune.wandb_file import write_sweep

    space = load_space(args.space, parse_set(args.sets))
    path = write_sweep(space, check_output(Path(args.out), "file", "--out"), args.method)
    print(
        f"wrote {path}: {len(space.params)} parameters, method {args.method}; "
        f"start it with `wandb sweep {path}` and `wandb agent ENTITY/PROJECT/SWEEP_ID`"
    )
    return 0
