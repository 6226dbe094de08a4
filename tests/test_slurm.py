"""cluster/ and sbatch/ under a real SLURM: two `slurmd` nodes in their own network and UTS
namespaces on this machine (tests/slurm/harness.sh), jobs submitted with the real `sbatch`, signalled
with the real `scancel` and the real time-limit warning.

Needs root and Debian's munge, slurmctld, slurmd and slurm-client (`.ci/run` installs them where it
can); skipped otherwise, with the reason. tests/test_cluster.py covers the same scripts under a fake
SLURM on machines without root.

After every job: no process of its Ray nodes, no /tmp/ray-<job>-* directory, no `error:` line in the
job's log (SLURM writes one for a step that is cancelled or killed, srun for a task that fails).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
HARNESS = REPO / "tests" / "slurm" / "harness.sh"
TINY = {
    "data": {"size": 64, "t_size": 8},
    "train": {"batch_size": 8},
    "model": {"hidden_size": 4, "mlp_size": 4, "initial_noise_size": 3, "noise_size": 2},
    "eval": {"path_metrics": "off", "plots": False, "tensorboard": False, "gif_frames": 0},  # seconds a run
}

pytestmark = [pytest.mark.slurm, pytest.mark.ray, pytest.mark.slow]


def _missing() -> str | None:
    """Why the harness cannot start here, or None."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return "needs root on Linux (network namespaces, a bridge, SLURM daemons)"
    tools = ["munged", "slurmctld", "slurmd", "sbatch", "scancel", "squeue", "ip", "nsenter", "unshare"]
    absent = [t for t in tools if shutil.which(t, path=os.environ["PATH"] + ":/usr/sbin:/sbin") is None]
    if absent:
        packages = "munge slurmctld slurmd slurm-client"
        return f"SLURM and MUNGE are not installed ({', '.join(absent)} missing): apt-get install {packages}"
    return None


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A running two-node SLURM; yields the base environment of a submitting user."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("slurm")
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}:/usr/sbin:/sbin"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "SLURM", "WANDB_", "INFGAN_"))}
    env["PATH"] = path
    # Job ids unlike an earlier run's, so that what one left behind cannot pass for this one's.
    env["INFGAN_SLURM_FIRST_JOB_ID"] = str(random.randrange(1000, 1_000_000))
    up = subprocess.run(["bash", str(HARNESS), "up", str(work / "cluster")], env=env, capture_output=True, text=True)
    if up.returncode != 0:
        pytest.fail(f"the SLURM harness did not start:\n{up.stderr[-3000:]}")
    env.update(
        SLURM_CONF=str(work / "cluster" / "etc" / "slurm.conf"),
        SCRATCH=str(work / "scratch"),
        RAY_AUTH_TOKEN_PATH=str(work / "token"),
        INFGAN_OBJECT_STORE_BYTES=str(100_000_000),  # both nodes share this machine's /dev/shm
        INFGAN_CPUS_PER_NODE="1",  # two cores here, two nodes
        INFGAN_CACHE_DIR=os.environ.get("INFGAN_CACHE_DIR", str(work / "cache")),
        OMP_NUM_THREADS="1",
        WANDB_MODE="disabled",
    )
    yield env, work
    subprocess.run(["bash", str(HARNESS), "down", str(work / "cluster")], env=env, capture_output=True)


def submit(env: dict, log: Path, script: str, *args: str, sbatch: tuple[str, ...] = ()) -> int:
    """Submit a job script from the checkout (as a user does); returns the job id."""
    out = subprocess.run(
        ["sbatch", "--parsable", "-N", "2", "-o", str(log), *sbatch, str(REPO / "sbatch" / script), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip().split(";")[0])


def job_state(env: dict, job: int) -> tuple[str, str]:
    """(state, exit code) of a job, from the controller (no accounting database here)."""
    out = subprocess.run(["scontrol", "show", "job", str(job)], env=env, capture_output=True, text=True).stdout
    fields = dict(f.split("=", 1) for f in out.split() if "=" in f)
    return fields.get("JobState", "?"), fields.get("ExitCode", "?")


def wait_job(env: dict, job: int, timeout: float = 300) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        state = job_state(env, job)
        if state[0] not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "?"):
            return state
        assert time.monotonic() < deadline, f"job {job} still {state[0]} after {timeout} s"
        time.sleep(1)


def assert_clean(job: int, log: Path, signalled: bool = False) -> str:
    """Nothing of the job's Ray is left, and its log holds no error line; returns the log.

    A job that SLURM signalled (the time-limit warning, `scancel -b`) has SLURM's own record of
    the signal, "slurmstepd-NODE: error: *** JOB N ON NODE CANCELLED AT ... ***", and no other.
    """

    def leftovers() -> list[str]:
        ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
        return [line for line in ps.splitlines() if f"/tmp/ray-{job}-" in line]

    deadline = time.monotonic() + 20  # processes the step has signalled may take a moment to go
    while leftovers() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not leftovers(), f"Ray processes of job {job} left behind: {leftovers()}"
    assert not list(Path("/tmp").glob(f"ray-{job}-*")), "Ray temp dirs left behind"
    text = log.read_text()
    errors = [line for line in text.splitlines() if "error:" in line]
    if signalled:
        slurms = [line for line in errors if line.startswith("slurmstepd-") and f"*** JOB {job} ON " in line]
        assert len(slurms) == 1, text[-4000:]
        errors.remove(slurms[0])
    assert not errors, f"error lines in the log of job {job}:\n" + "\n".join(errors) + "\n---\n" + text[-4000:]
    return text


def write_space(tmp: Path, samples: int, steps: int) -> Path:
    space = tmp / "space.yaml"
    space.write_text(
        yaml.safe_dump(
            {
                "base": {"overrides": TINY},
                "samples": samples,
                "seed": 0,
                "budget": {"steps": steps, "eval_every": steps // 4},
                "asha": {"grace_period": steps // 4, "reduction_factor": 2},
                "parameters": {"train.generator_lr": {"type": "loguniform", "low": 1.0e-3, "high": 1.0e-1}},
            }
        )
    )
    return space


def test_a_time_limit_within_the_warning_is_refused_at_the_start_in_one_line(slurm):
    env, work = slurm
    log = work / "short.log"
    job = submit(env, log, "tune.sbatch", str(write_space(work, 2, 8)), sbatch=("-t", "4"))
    state, code = wait_job(env, job, 120)
    assert (state, code) == ("FAILED", "2:0")
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines == [
        "infgan: error: the job's time limit (4:00) is not longer than the 300 s warning the job script asks for "
        "(#SBATCH --signal=B:TERM@300), which would stop it at once: submit with a longer -t, or with a shorter "
        "warning (sbatch --signal=B:TERM@N, and INFGAN_WARN_S=N in the environment)"
    ]


def test_tune_sbatch_survives_the_time_limit_warning_and_finishes_on_both_nodes(slurm):
    env, work = slurm
    tmp = work / "tune"
    tmp.mkdir()
    # Long enough that the sweep is still running when the warning comes (trial processes are
    # reused: at 240 steps the 8 trials were done 12 s into the sweep, before any warning; at 4800
    # steps two trials run to the end, 20 s each, and the warning came 14 s into the sweep).
    space = write_space(tmp, samples=6, steps=4800)
    sweep = work / "scratch" / "infgan" / "space"

    # 1. A 2-minute job whose time-limit warning comes 90 s before its end: 30 to 60 s in. (On a
    # loaded machine the two-node cluster can take most of that to start: the warning once came 4 s
    # into the sweep, before any trial had reported. A longer limit lets this sweep end unwarned.)
    log1 = tmp / "1.log"
    short = ("-t", "2", "--signal=B:TERM@90")
    job1 = submit({**env, "INFGAN_WARN_S": "90"}, log1, "tune.sbatch", str(space), sbatch=short)
    assert wait_job(env, job1, 240) == ("FAILED", "130:0")  # the driver's exit code: interrupted
    text = assert_clean(job1, log1, signalled=True)
    assert "signal received (time limit or scancel)" in text and "interrupted; continue with" in text
    assert "Tuner.restore" not in text  # Ray's own resume hint: not the command that resumes
    finished_in_1 = {p: p.read_bytes() for p in sweep.glob("trials/*/summary.json")}
    # What the next job continues from: the sweep's Tune state and its search's journal.
    assert (sweep / "tune").is_dir() and (sweep / "optuna.log").is_file(), text[-3000:]

    # 2. The same command again continues the sweep, to its end. (`scancel -b -s TERM` mid-sweep sends
    # the batch shell the same TERM as the warning above, and takes the same path.)
    log2 = tmp / "2.log"
    job2 = submit(env, log2, "tune.sbatch", str(space))
    assert wait_job(env, job2, 600) == ("COMPLETED", "0:0")
    text = assert_clean(job2, log2)
    assert f"continuing the sweep {sweep}" in text
    assert "Ray cluster ready: 2 nodes, 2 CPUs" in text
    assert len(list(sweep.glob("trials/*/params.json"))) == 6
    asha = json.loads((sweep / "asha_state.json").read_text())
    finished = list(sweep.glob("trials/*/summary.json"))
    assert len(finished) + len(asha.get("stopped", [])) == 6  # every trial completed or stopped by ASHA
    nodes = {json.loads(p.read_text())["ray_node_id"] for p in sweep.glob("trials/*/node.json")}
    assert len(nodes) >= 2  # the trials ran on both nodes
    assert {p: p.read_bytes() for p in finished_in_1} == finished_in_1  # what the first job finished stands


def test_train_sbatch_on_two_nodes_then_resubmitted_ends_at_once(slurm):
    env, work = slurm
    tmp = work / "train"
    tmp.mkdir()
    sets = [f"{section}.{k}={v}" for section, values in TINY.items() for k, v in values.items()]
    sets += ["train.steps=40", "train.swa_start=20", "eval.every=10", "checkpoint.every=10"]
    args = [x for s in sets for x in ("--set", s)]
    env = {**env, "INFGAN_RUN_NAME": "ddp"}
    log1 = tmp / "1.log"
    job1 = submit(env, log1, "train.sbatch", *args)
    assert wait_job(env, job1, 300) == ("COMPLETED", "0:0"), log1.read_text()[-4000:]
    text = assert_clean(
        job1,
        log1,
    )
    assert "completed: 40 steps" in text
    run = work / "scratch" / "infgan" / "ddp"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["world_size"] == 2

    # Resubmitted: every rank sees the run at its end, reports once, and the job ends at once.
    before = (run / "metrics.jsonl").read_bytes()
    log2 = tmp / "2.log"
    t0 = time.monotonic()
    job2 = submit(env, log2, "train.sbatch", *args)
    assert wait_job(env, job2, 240) == ("COMPLETED", "0:0"), log2.read_text()[-4000:]
    text = assert_clean(
        job2,
        log2,
    )
    assert f"continuing the run {run}" in text and "completed: 40 steps" in text
    assert (run / "metrics.jsonl").read_bytes() == before
    assert time.monotonic() - t0 < 180
