"""MuJoCo hopper rollouts: the "MuJoCo" data of Diffusion-TS's table (Yuan & Qiao, ICLR 2024).

That benchmark's series come from DeepMind Control's `hopper` model (the same rollouts as the
Latent ODE paper's, Rubanova et al. 2019, cut to 24 steps): each series starts from a random state
and runs under gravity and contacts alone, no action applied (the controls stay 0), one raw
physics step (0.005 s) per observation. The start: the hopper's root x and z positions uniform in
[0, 0.5], its five angles (the root's pitch, waist, hip, knee, ankle) uniform in [-2, 2] radians,
which puts some joints past their limits so that the first steps carry large constraint forces, and
all seven velocities uniform in [-5, 5]. The draws come from numpy's legacy generator seeded with
123 in that order per series (root positions, angles, velocities), so the set does not depend on
the run's seed and, at 10,000 series of 24 steps (`data.size`, `data.t_size`), is the benchmark's
own. Fourteen channels: the seven positions, then the seven velocities. Complete, like the sines.

The physics engine ships in registry packages (`dm_control`, which brings `mujoco`): installed by
the `data` extra. Generating 10,000 series takes about 7 s of CPU, which every run, evaluation and
sweep trial would pay again: the series are kept in infgan's cache (`infgan/cache.py`) under their
count, length, the start ranges and the engine's versions, and read back (a few milliseconds) from then on.
"""

from __future__ import annotations

import importlib.metadata
import os
from typing import Any

import numpy as np
import torch

from infgan.cache import cached_array
from infgan.data.files import DataError

SEED = 123  # the benchmark's generator seed
ROOT_POSITION = (0.0, 0.5)  # root x and z
ANGLE = (-2.0, 2.0)  # the other positions, radians
VELOCITY = (-5.0, 5.0)
INSTALL = "pip install 'infgan[data]' (or pip install dm_control)"


def _physics() -> Any:
    """The hopper's physics, without a display (nothing here renders)."""
    os.environ.setdefault("MUJOCO_GL", "disable")  # else dm_control warns that no display is there
    try:
        from dm_control import suite
    except ImportError:
        raise DataError(f"data.dataset mujoco needs the physics engine, not installed: {INSTALL}") from None
    return suite.load("hopper", "stand").physics


JOINTS = ("rootx", "rootz", "rooty", "waist", "hip", "knee", "ankle")  # the hopper's, in its order


def _versions() -> dict[str, str]:
    """The engine's package versions (a different engine may step differently: another cache entry)."""
    out = {}
    for package in ("mujoco", "dm_control"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            raise DataError(f"data.dataset mujoco needs the physics engine, not installed: {INSTALL}") from None
    return out


def sample(n: int, t_size: int) -> tuple[torch.Tensor, list[str]]:
    """The first `n` series of `t_size` steps (n, t_size, 14), and the channels' names; simulated
    once per machine, then read from the cache."""
    key = {"n": n, "t_size": t_size, "seed": SEED, "starts": [ROOT_POSITION, ANGLE, VELOCITY], **_versions()}
    values = cached_array("mujoco", key, lambda: simulate(n, t_size))
    names = [f"{j}_pos" for j in JOINTS] + [f"{j}_vel" for j in JOINTS]
    return torch.from_numpy(values).to(torch.get_default_dtype()), names


def simulate(n: int, t_size: int) -> np.ndarray:
    """The first `n` series of `t_size` steps (n, t_size, 14), simulated now."""
    physics = _physics()
    if tuple(physics.named.data.qpos.axes.row.names) != JOINTS:  # the channels' names would be wrong
        raise RuntimeError(f"dm_control's hopper has joints {physics.named.data.qpos.axes.row.names}, not {JOINTS}")
    nq, nv = physics.model.nq, physics.model.nv
    rng = np.random.RandomState(SEED)
    out = np.empty((n, t_size, nq + nv))
    for i in range(n):
        with physics.reset_context():
            physics.data.qpos[:2] = rng.uniform(*ROOT_POSITION, size=2)
            physics.data.qpos[2:] = rng.uniform(*ANGLE, size=nq - 2)
            physics.data.qvel[:] = rng.uniform(*VELOCITY, size=nv)
        for t in range(t_size):
            out[i, t, :nq] = physics.data.qpos
            out[i, t, nq:] = physics.data.qvel
            physics.step()
    return out
