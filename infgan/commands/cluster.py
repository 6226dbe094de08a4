"""`infgan cluster check`: a running Ray cluster checked before work is sent to it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from infgan.config import ConfigError


def arguments(p: argparse.ArgumentParser) -> None:
    cluster_sub = p.add_subparsers(dest="cluster_command", required=True, parser_class=type(p))
    c = cluster_sub.add_parser("check", help="wait for the nodes to join, then check resources, State API, storage")
    c.add_argument(
        "--address",
        default=os.environ.get("RAY_ADDRESS"),
        metavar="HOST:PORT",
        help="the cluster's head (default: RAY_ADDRESS)",
    )
    c.add_argument("--nodes", type=int, default=1, metavar="N", help="nodes that must have joined (default 1)")
    c.add_argument("--cpus", type=float, default=0.0, metavar="C", help="CPUs the cluster must have in all")
    c.add_argument("--gpus", type=float, default=0.0, metavar="G", help="GPUs the cluster must have in all")
    c.add_argument("--storage", metavar="DIR", help="a directory every node must be able to write and share")
    c.add_argument(
        "--timeout", type=float, default=300.0, metavar="S", help="seconds to wait for the nodes to join (default 300)"
    )


def run(args: argparse.Namespace) -> int:
    from infgan.cluster import check_cluster, ray_session

    if not args.address:
        raise ConfigError("cluster check needs --address HOST:PORT (or RAY_ADDRESS) of a running Ray cluster")
    if args.nodes < 1 or args.cpus < 0 or args.gpus < 0 or args.timeout <= 0:
        raise ConfigError("--nodes must be >= 1, --cpus and --gpus >= 0, --timeout > 0")
    with ray_session(args.address, timeout_s=args.timeout):
        print(
            check_cluster(args.nodes, args.cpus, args.gpus, Path(args.storage) if args.storage else None, args.timeout),
            flush=True,
        )
    return 0
