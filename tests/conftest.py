"""Shared test setup: one intra-op thread, tiny sizes, W&B off."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
# Floors computed by the tests are cached here, not in the user's ~/.cache (subprocesses inherit it).
os.environ.setdefault("INFGAN_CACHE_DIR", tempfile.mkdtemp(prefix="infgan-test-cache-"))

import pytest
import torch

from infgan.config import Config, resolve

torch.set_num_threads(1)

TINY = [
    # Most tests are about the machinery around a critic (its steps, checkpoints, scores): they train
    # the adversarial `gan` at its own rate; tests of the kinds without a critic set loss.kind.
    "loss.kind=gan",
    "train.generator_lr=0.046",
    "data.size=64",
    "data.t_size=8",
    "model.hidden_size=4",
    "model.mlp_size=4",
    "model.initial_noise_size=3",
    "model.noise_size=2",
    "train.batch_size=8",
    "train.steps=12",
    "train.swa_start=6",
    "eval.every=4",
    "checkpoint.every=4",
    # The path-level metrics train small models (seconds each): tests that need them turn them on.
    "eval.path_metrics=off",
    # Drawing the final plots, TensorBoard's sample figures and the animation is most of a tiny run's
    # time (2.4 of 2.8 s): on only where a test reads them (DRAWN).
    "eval.plots=false",
    "eval.tensorboard=false",
    "eval.gif_frames=0",
]

# What a run draws, as by default: added after TINY by the tests that read plots, TensorBoard or the animation.
DRAWN = ["eval.plots=true", "eval.tensorboard=true", "eval.gif_frames=40"]

# What every finished run directory holds, however it was trained.
ARTEFACTS = [
    "config.yaml",
    "data.json",
    "metrics.jsonl",
    "summary.json",
    "generator.pt",
    "plots/samples.png",
    "plots/marginals.png",
    "plots/losses.png",
    "plots/val_score.png",
    "plots/samples.gif",
    "plots/correlation.png",
    "plots/norms.png",
    "plots/ks.png",
    "samples_frames.npz",
]


def tiny(*sets: str) -> Config:
    """The default run shrunk to test size, with extra `--set` overrides."""
    return resolve(sets=[*TINY, *sets])


@pytest.fixture
def tiny_cfg() -> Config:
    return tiny()


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the whole test session (2 CPUs, one thread per worker)."""
    ray = pytest.importorskip("ray")
    from infgan.cluster import local_init_args

    ray.init(**local_init_args(num_cpus=2), log_to_driver=False)
    yield ray
    ray.shutdown()


def set_args(sets) -> list[str]:
    """`--set` arguments for a list of KEY=VALUE strings."""
    return [x for s in sets for x in ("--set", s)]


# Tests that start daemons or Ray heads at fixed ports (a real SLURM, the sbatch cluster scripts) never
# run at the same time on two pytest-xdist workers. (The README's check runs them in a pytest of their
# own after the rest: beside other tests their timed jobs failed. Run beside the rest, the fake-SLURM
# cluster tests made the first pytest longer by as much as they took alone: 519 s and 154 s against
# 405 s and 266 s.)
EXCLUSIVE = {"test_slurm.py": "cluster", "test_cluster.py": "cluster"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups (--dist loadgroup)
def pytest_collection_modifyitems(items):
    """A test marked `ray` is also `slow`: starting or joining Ray alone takes seconds. Slow tests run first.

    Under pytest-xdist (`-n 2 --dist loadgroup`, pyproject.toml) every test runs on whichever worker
    is free, except that the tests sharing a module-scoped fixture (one tiny run or sweep that
    several tests read) run on one worker, so that fixture is built once, and the cluster tests run
    one at a time (EXCLUSIVE).
    """
    for item in items:
        if item.get_closest_marker("ray") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
        group = EXCLUSIVE.get(item.path.name)
        if group is None:
            info = getattr(item, "_fixtureinfo", None)
            shared = sorted(
                name
                for name, defs in (info.name2fixturedefs.items() if info else [])
                if defs and defs[-1].scope in ("module", "class", "package")
            )
            group = f"{item.path.stem}:{'+'.join(shared)}" if shared else None
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
    # The longest first (Ray's, then other slow ones), so that no worker is left running a
    # minute-long test alone at the end; the order within each kind (and so each group) is kept.
    items.sort(key=lambda item: 0 if item.get_closest_marker("ray") else 1 if item.get_closest_marker("slow") else 2)


def stops_at(call: int):
    """A training step for `fit(step=...)` that stops the run (as a kill would) at its `call`-th call."""
    from infgan.train.step import train_step

    calls = {"n": 0}

    def step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return train_step(*args, **kwargs)

    return step
