"""The CUDA path: skipped on machines without a CUDA device (CI's), run on one with a GPU
(`benchmarks/gpu_check.sh` runs these first)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from infgan.models import Critic, Generator
from infgan.train.context import resolve_device

from conftest import TINY, set_args, tiny

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def test_models_on_cuda_match_the_cpu_on_the_same_noise():
    # The Brownian increments are drawn on the CPU from the run's generator: the same numbers on
    # any device, so the two devices differ by rounding only.
    cfg = tiny("model.hidden_size=16", "model.mlp_size=16").model
    torch.manual_seed(0)
    gen, critic = Generator(1, cfg), Critic(1, cfg)
    ts = torch.arange(32.0)
    cpu = gen(ts, 64, torch.Generator().manual_seed(3))
    gpu = gen.cuda()(ts.cuda(), 64, torch.Generator().manual_seed(3))
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-4)
    scores_cpu = critic(cpu.detach())
    scores_gpu = critic.cuda()(gpu.detach())
    torch.testing.assert_close(scores_gpu.cpu(), scores_cpu, rtol=1e-4, atol=1e-4)


def test_auto_device_is_cuda():
    assert resolve_device("auto").type == "cuda"


def _infgan(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run(
        [sys.executable, "-m", "infgan", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def test_train_on_cuda_completes(tmp_path):
    proc = _infgan("train", "--out", str(tmp_path / "r"), "--no-progress", *set_args([*TINY, "train.device=cuda"]))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["status"] == "completed"


def test_ray_train_worker_on_a_gpu_with_nccl_completes(tmp_path):
    out = tmp_path / "r"
    proc = _infgan(
        "train", "--workers", "1", "--gpus-per-worker", "1", "--out", str(out), "--no-progress", *set_args(TINY)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["status"] == "completed"
