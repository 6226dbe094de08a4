"""Helpers for the DDP tests: the per-rank function run under torch.multiprocessing."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from infgan.data import build_dataset
from infgan.data.dataset import Batch, sample_batch
from infgan.train import losses
from infgan.train.context import DistributedContext
from infgan.train.state import init_state
from infgan.train.step import Players, critic_step, direct_step, generator_step, joint_step

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
# Losses that couple the paths of a batch (a kernel over pairs): the ranks' gradients averaged must be
# the gradient over the whole batch, which no average of per-half gradients gives.
COUPLED = [
    ("direct", "sig_score"),
    ("direct", "sig_score+full"),
    ("direct", "fdm"),
    ("direct", "fdm+partners"),
    ("joint", "fdm_gan"),
    ("joint", "gan+sig"),
    ("generator", "wgan_clip+sig"),
]
BATCH = 8
EXTRA = {"sig": ["loss.sig_weight=0.5"], "partners": ["loss.fdm_partners=3"], "full": ["loss.sig_partners=0"]}


def case_setup(kind: str):
    """The config, data and the real batch (with its observed mask) of a case; `KIND+sig` adds a kernel
    term, `fdm+partners` scores each point against 3 partners, `sig_score+full` against every path."""
    name, _, extra = kind.partition("+")
    cfg = tiny(f"loss.kind={name}", f"train.batch_size={BATCH}", *EXTRA.get(extra, []))
    data = build_dataset(cfg.data, cfg.seed)
    batch = sample_batch(data.coeffs(), BATCH, torch.Generator().manual_seed(11), None, data.observed())
    return cfg, data, batch


def run_step(which: str, cfg, state, players, batch: Batch, ts) -> None:
    loss = losses.build(cfg.loss)
    if which == "joint":
        joint_step(loss, state, players, batch, ts)
    elif which == "critic":
        critic_step(loss, state, players, batch, ts)
    elif which == "direct":
        direct_step(loss, state, players, batch, ts)
    else:
        generator_step(loss, state, players, batch, ts)


def half(batch: Batch, rank: int, world: int) -> Batch:
    """Rank `rank`'s share of `batch`."""
    share = BATCH // world
    return Batch(*(None if x is None else x[rank * share : (rank + 1) * share] for x in batch))


def params_of(state) -> dict:
    """Parameters after a step, and the generator's gradients of it (Adadelta's first step hardly
    changes with the gradient's scale: the gradients themselves say whether it was right)."""
    return {
        "g": [p.detach() for p in state.generator.parameters()],
        "grad": [p.grad.detach().clone() for p in state.generator.parameters() if p.grad is not None],
        "d": [] if state.critic is None else [p.detach() for p in state.critic.parameters()],
    }


def rank_main(rank: int, world: int, port: int, out_dir: str) -> None:
    """One rank: each case's step on this rank's half of the batch, DDP-wrapped; rank 0 saves params."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        for which, kind in CASES + COUPLED:
            cfg, data, batch = case_setup(kind)
            ctx = DistributedContext(rank=rank, world_size=world)
            state = init_state(cfg, data.channels, torch.device("cpu"), rank)
            critic = None if state.critic is None else ctx.wrap(state.critic)
            players = Players(ctx.wrap(state.generator), critic, ctx.shard())
            run_step(which, cfg, state, players, half(batch, rank, world), data.ts)
            if rank == 0:
                torch.save(params_of(state), os.path.join(out_dir, f"{which}-{kind}.pt"))
            dist.barrier()
    finally:
        dist.destroy_process_group()


def fit_rank_main(rank: int, world: int, port: int, out_dir: str) -> None:
    """One rank of a whole `fit` under DDP; each rank writes how often it evaluated the generator."""
    import json

    import infgan.train.loop as loop
    from infgan.train.sinks import Evaluator

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    calls = {"n": 0}
    evaluate = Evaluator.__call__

    def counted(self, state, final):
        calls["n"] += 1
        return evaluate(self, state, final)

    Evaluator.__call__ = counted
    try:
        summary = loop.fit(
            tiny(), os.path.join(out_dir, "run"), DistributedContext(rank=rank, world_size=world, progress=False)
        )
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
            json.dump({"evaluations": calls["n"], "best_score": summary["best_score"]}, fh)
    finally:
        dist.destroy_process_group()
