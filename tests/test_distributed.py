"""DDP: a step on 2 workers with half the batch each updates the parameters exactly as one worker
whose gradient is the average of the two halves' (i.e. the full batch)."""

from __future__ import annotations

import json
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from infgan.train.state import init_state
from infgan.train.step import Players

from ddp_helpers import CASES, COUPLED, case_setup, fit_rank_main, half, params_of, rank_main, run_step

pytestmark = pytest.mark.slow  # spawns a process group of two ranks

WORLD = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_worker_reference(which: str, kind: str) -> dict[str, list[torch.Tensor]]:
    """One process: each rank's half (with that rank's noise stream) gives a gradient; average them and step once."""
    cfg, data, batch = case_setup(kind)
    target = init_state(cfg, data.channels, torch.device("cpu"), 0)
    g_sum = [torch.zeros_like(p) for p in target.generator.parameters()]
    d_sum = [torch.zeros_like(p) for p in target.critic.parameters()]
    for rank in range(WORLD):
        s = init_state(cfg, data.channels, torch.device("cpu"), rank)  # same weights, rank's noise
        s.g_opt.step = s.critic_opt.step = lambda: None  # gradients only
        s.critic.clip_weights = lambda: None
        run_step(which, cfg, s, Players(s.generator, s.critic), half(batch, rank, WORLD), data.ts)
        for acc, p in zip(g_sum, s.generator.parameters()):
            acc += p.grad / WORLD if p.grad is not None else 0
        for acc, p in zip(d_sum, s.critic.parameters()):
            acc += p.grad / WORLD if p.grad is not None else 0
    g_changes, d_changes = which in ("joint", "generator"), which in ("joint", "critic")
    for p, g in zip(target.generator.parameters(), g_sum):
        p.grad = g
    for p, g in zip(target.critic.parameters(), d_sum):
        p.grad = g
    if g_changes:
        target.g_opt.step()
    if d_changes:
        target.critic_opt.step()
        if kind == "wgan_clip":
            target.critic.clip_weights()
    return {
        "g": [p.detach() for p in target.generator.parameters()],
        "d": [p.detach() for p in target.critic.parameters()],
    }


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.start_processes(rank_main, args=(WORLD, free_port(), str(out)), nprocs=WORLD, join=True, start_method="spawn")
    return {case: torch.load(out / f"{case[0]}-{case[1]}.pt") for case in CASES + COUPLED}


class RankStreams(nn.Module):
    """One process's generator that draws each rank's half of the batch from that rank's own noise
    stream, as the ranks of a DDP run do: the whole batch of the DDP step, in one process."""

    def __init__(self, generator, rngs):
        super().__init__()
        self.generator, self.rngs = generator, rngs

    def forward(self, ts, batch_size, rng):
        share = batch_size // len(self.rngs)
        return torch.cat([self.generator(ts, share, g) for g in self.rngs])


@pytest.mark.parametrize("which, kind", COUPLED)
def test_coupled_losses_update_like_one_process_on_the_same_paths(ddp_results, which, kind):
    """A kernel over every pair of the batch: two ranks with half the batch each step exactly as one
    process scoring the whole batch of the same generated and real paths."""
    cfg, data, batch = case_setup(kind)
    state = init_state(cfg, data.channels, torch.device("cpu"), 0)
    rngs = [init_state(cfg, data.channels, torch.device("cpu"), r).rng for r in range(WORLD)]
    run_step(which, cfg, state, Players(RankStreams(state.generator, rngs), state.critic), batch, data.ts)
    got, want = ddp_results[(which, kind)], params_of(state)
    assert len(got["grad"]) == len(want["grad"]) > 0
    for part in ("g", "d", "grad"):
        for a, b in zip(got[part], want[part]):
            assert torch.allclose(a, b, atol=1e-6, rtol=1e-5), (part, (a - b).abs().max())
    init = init_state(cfg, data.channels, torch.device("cpu"), 0)
    assert any(not torch.equal(a, p.detach()) for a, p in zip(got["g"], init.generator.parameters()))


@pytest.mark.parametrize("which, kind", CASES)
def test_two_workers_update_like_one_worker_with_the_full_batch(ddp_results, which, kind):
    got, want = ddp_results[(which, kind)], one_worker_reference(which, kind)
    changed = False
    for part in ("g", "d"):
        for a, b in zip(got[part], want[part]):
            assert torch.allclose(a, b, atol=1e-6, rtol=1e-5), (part, (a - b).abs().max())
        init = init_state(case_setup(kind)[0], 1, torch.device("cpu"), 0)
        module = init.generator if part == "g" else init.critic
        changed |= any(not torch.equal(a, p.detach()) for a, p in zip(got[part], module.parameters()))
    assert changed  # the step did update something


def test_only_rank_zero_evaluates_and_every_rank_gets_its_record(tmp_path):
    mp.start_processes(
        fit_rank_main, args=(WORLD, free_port(), str(tmp_path)), nprocs=WORLD, join=True, start_method="spawn"
    )
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 4, 8, 12]
    assert [r["evaluations"] for r in ranks] == [len(records), 0]
    best = min(r["val/score"] for r in records)
    assert ranks[0]["best_score"] == ranks[1]["best_score"] == best  # rank 1 saw rank 0's scores
