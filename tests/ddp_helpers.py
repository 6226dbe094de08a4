"""Helpers for the DDP tests: the per-rank function run under torch.multiprocessing."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from infgan.data import build_dataset
from infgan.data.dataset import sample_batch
from infgan.train.context import DistributedContext
from infgan.train.state import init_state
from infgan.train.step import Players, critic_step, generator_step, joint_step

from conftest import tiny

CASES = [
    ("joint", "wgan_clip"),
    ("joint", "wgan_gp"),
    ("joint", "gan"),
    ("critic", "wgan_gp"),
    ("critic", "gan"),
    ("generator", "wgan_gp"),
    ("generator", "gan"),
]
BATCH = 8


def case_setup(kind: str):
    cfg = tiny(f"loss.kind={kind}", f"train.batch_size={BATCH}")
    data = build_dataset(cfg.data, cfg.seed)
    real, _ = sample_batch(data.coeffs(), BATCH, torch.Generator().manual_seed(11))
    return cfg, data, real


def run_step(which: str, cfg, state, players, real, ts) -> None:
    if which == "joint":
        joint_step(cfg, state, players, (real, None), ts)
    elif which == "critic":
        critic_step(cfg, state, players, (real, None), ts)
    else:
        generator_step(cfg, state, players, real.size(0), ts, None)


def rank_main(rank: int, world: int, port: int, out_dir: str) -> None:
    """One rank: each case's step on this rank's half of the batch, DDP-wrapped; rank 0 saves params."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        for which, kind in CASES:
            cfg, data, real = case_setup(kind)
            ctx = DistributedContext(rank=rank, world_size=world)
            state = init_state(cfg, data.channels, torch.device("cpu"), rank)
            players = Players(ctx.wrap(state.generator), ctx.wrap(state.discriminator))
            share = BATCH // world
            run_step(which, cfg, state, players, real[rank * share : (rank + 1) * share], data.ts)
            if rank == 0:
                torch.save(
                    {
                        "g": [p.detach() for p in state.generator.parameters()],
                        "d": [p.detach() for p in state.discriminator.parameters()],
                    },
                    os.path.join(out_dir, f"{which}-{kind}.pt"),
                )
            dist.barrier()
    finally:
        dist.destroy_process_group()


def fit_rank_main(rank: int, world: int, port: int, out_dir: str) -> None:
    """One rank of a whole `fit` under DDP; each rank writes how often it evaluated the generator."""
    import json

    import infgan.train.loop as loop

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    calls = {"n": 0}
    evaluate = loop.Evaluator.__call__

    def counted(self, state, final):
        calls["n"] += 1
        return evaluate(self, state, final)

    loop.Evaluator.__call__ = counted
    try:
        summary = loop.fit(
            tiny(), os.path.join(out_dir, "run"), DistributedContext(rank=rank, world_size=world, progress=False)
        )
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
            json.dump({"evaluations": calls["n"], "best_score": summary["best_score"]}, fh)
    finally:
        dist.destroy_process_group()
