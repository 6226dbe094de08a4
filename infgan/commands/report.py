"""`infgan report`: the table, CSV, best config and plots of a finished or interrupted sweep."""

from __future__ import annotations

import argparse
from pathlib import Path


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("exp_dir", metavar="EXP_DIR")


def run(args: argparse.Namespace) -> int:
    from infgan.tune.report import build_report

    build_report(Path(args.exp_dir))
    return 0
