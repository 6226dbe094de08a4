"""`infgan train --workers N`: Ray Train TorchTrainer runs, recovery from a killed worker, refusals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from infgan.cli import main
from infgan.train.checkpoint import checkpoints

from conftest import ARTEFACTS, DRAWN, TINY, set_args

pytestmark = pytest.mark.ray  # every test here starts or joins Ray (and so is slow: see conftest)

STEPS = 80  # long enough that a worker killed after the first checkpoint (step 20) dies mid-run
RUN = [*TINY, f"train.steps={STEPS}", "eval.every=20", "checkpoint.every=20"]


def read_metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def two_worker_run(ray_local, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray") / "run"
    code = main(["train", "--workers", "2", "--out", str(out), "--no-progress", *set_args([*RUN, *DRAWN])])
    return code, out


def test_two_workers_write_the_same_artefacts_as_one_process(two_worker_run, tmp_path):
    code, out = two_worker_run
    assert code == 0
    for name in ARTEFACTS:
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["world_size"] == 2 and summary["steps"] == STEPS
    assert [r["step"] for r in read_metrics(out)] == list(range(0, STEPS + 1, 20))
    ckpts = checkpoints(out / "checkpoints")
    assert ckpts and all(p.name == "state.pt" for p in ckpts)  # Ray Train checkpoints, in the run dir
    assert main(["sample", str(out), "-n", "5", "--out", str(tmp_path / "s.npz")]) == 0
    # the run's own config reruns as a single process
    assert (
        main(
            [
                "train",
                "--config",
                str(out / "config.yaml"),
                "--out",
                str(tmp_path / "single"),
                "--no-progress",
                "--set",
                "train.steps=4",
            ]
        )
        == 0
    )


def _kill_a_worker_after_first_checkpoint(out, killed, gcs_address):
    from ray.util.state import list_actors

    deadline = time.time() + 120
    while time.time() < deadline and not (out / "checkpoints" / "step_000020" / "state.pt").exists():
        time.sleep(0.05)
    # This test session's cluster by address (other Ray clusters may run on the machine), and this
    # driver's job (other test processes share the cluster).
    import ray

    job = ray.get_runtime_context().get_job_id()
    mine = [("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE"), ("job_id", "=", job)]
    workers = list_actors(address=gcs_address, filters=mine)
    if workers:
        os.kill(workers[-1].pid, signal.SIGKILL)
        killed.append(workers[-1].pid)


def test_resuming_a_finished_multi_worker_run_returns_at_once(two_worker_run, tmp_path):
    # Every rank must reach ray.train.report: when only rank 0 re-reported the last result, this hung.
    out = tmp_path / "run"
    shutil.copytree(two_worker_run[1], out)
    before = {name: (out / name).read_bytes() for name in ("metrics.jsonl", "summary.json", "generator.pt")}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("RAY_ADDRESS", None)
    import ray

    address = ray.get_runtime_context().gcs_address  # this session's Ray: no fresh one to start
    proc = subprocess.run(
        [sys.executable, "-m", "infgan", "train", "--workers", "2", "--out", str(out), "--resume", "--no-progress"]
        + ["--address", address],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"completed: {STEPS} steps" in proc.stdout
    assert {name: (out / name).read_bytes() for name in before} == before  # finished before: left as it was


def test_killed_worker_restarts_from_checkpoint_and_completes(two_worker_run, tmp_path):
    out = tmp_path / "run"
    killed: list[int] = []
    import ray

    killer = threading.Thread(
        target=_kill_a_worker_after_first_checkpoint, args=(out, killed, ray.get_runtime_context().gcs_address)
    )
    killer.start()
    code = main(["train", "--workers", "2", "--out", str(out), "--no-progress", *set_args(RUN)])
    killer.join()
    assert killed, "no worker was found to kill"
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumed_from"] and summary["resumed_from"][0] >= 20
    assert [r["step"] for r in read_metrics(out)] == list(range(0, STEPS + 1, 20))
    # restored with every rank's own RNG: the same result as the uninterrupted run
    uninterrupted = json.loads((two_worker_run[1] / "summary.json").read_text())
    assert summary["final_score"] == uninterrupted["final_score"]


def test_requests_that_do_not_fit_are_refused(ray_local, tmp_path, capsys):
    out = tmp_path / "r"
    start = time.time()
    assert main(["train", "--workers", "2", "--gpus-per-worker", "1", "--out", str(out), *set_args(TINY)]) == 2
    assert main(["train", "--workers", "64", "--out", str(out), *set_args([*TINY, "train.batch_size=64"])]) == 2
    assert main(["train", "--workers", "3", "--out", str(out), *set_args(TINY)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert f"needs 2 CPUs and 2 GPUs; this machine has {os.cpu_count()} CPUs and 0 GPUs" in err[0]  # before Ray
    assert "--workers 64 needs 64 CPUs" in err[1]
    assert "'train.batch_size' (8) must be divisible by --workers (3)" in err[2]
    assert len(err) == 3 and not out.exists()
    assert time.time() - start < 60  # refused, not queued behind resources that never come


def test_a_workers_state_api_finds_its_own_cluster(ray_local):
    # Inside a worker Ray's State API looks for the cluster in RAY_ADDRESS, else in the last cluster
    # `ray start` began on the machine (/tmp/ray/ray_current_cluster), which a local instance never
    # is: Ray Train's PlacementGroupCleaner then hung on every lookup and each run waited 12 s at its end.
    import ray

    @ray.remote(num_cpus=0)
    def nodes() -> list[str]:
        from ray.util.state import list_nodes

        return [n.node_id for n in list_nodes(timeout=10, raise_on_missing_output=False)]

    start = time.time()
    assert ray.get(nodes.remote(), timeout=60) == [ray.get_runtime_context().get_node_id()]
    assert time.time() - start < 30  # not one lookup timed out


def _session_processes(sid: int) -> list[str]:
    """Processes of one session: Ray's daemons stay in the session of the driver that started them."""
    out = subprocess.run(["ps", "-eo", "pid,sid,comm"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines()[1:] if int(line.split()[1]) == sid]


def test_sigterm_on_a_fresh_local_ray_saves_the_state_leaves_no_process_and_the_resumed_run_completes(
    ray_local, tmp_path
):
    # ray.init installs Ray's own SIGTERM handler (a stack dump, exit 1); the driver must answer
    # SIGTERM (scancel, a time limit) as `infgan tune` does: one line, exit 130, nothing lost. The
    # driver starts a fresh local Ray (dashboard on loopback), which it must stop: no raylet, GCS,
    # dashboard or worker left behind in its session, even after the signal.
    out = tmp_path / "r"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("RAY_ADDRESS", None)
    cmd = [sys.executable, "-m", "infgan", "train", "--workers", "1", "--out", str(out), "--no-progress"]
    # Long enough to be signalled mid-run after the first checkpoint (the test looks every 0.2 s; 475
    # steps, about 5 s, are left: with 125 left, a run once ended before the signal reached it),
    # short enough that the resumed run finishes quickly.
    run = set_args([*TINY, "train.steps=500", "eval.every=25", "checkpoint.every=25"])
    proc = subprocess.Popen(
        [*cmd, *run], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    deadline = time.time() + 180
    while not checkpoints(out / "checkpoints") and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert checkpoints(out / "checkpoints") and proc.poll() is None, "no checkpoint before the run ended"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-3000:]
    # The driver's own lines (Ray prefixes its workers' output with "(Name pid=N)").
    driver = "\n".join(line for line in stderr.splitlines() if " pid=" not in line)
    assert "SIGTERM received" not in driver and "Traceback" not in driver, driver[-3000:]
    assert stderr.strip().splitlines()[-1] == f"interrupted; continue with: infgan train --out {out} --resume"
    assert not (out / "summary.json").exists()
    assert "Started a local Ray instance" in stderr and "http://127.0.0.1:" in stderr  # dashboard on loopback
    deadline = time.time() + 20
    while _session_processes(proc.pid) and time.time() < deadline:
        time.sleep(0.5)
    assert not _session_processes(proc.pid)
    # The resume on this session's Ray (the signal above went to a driver with a fresh local Ray).
    assert main([*cmd[3:], "--resume"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 500 and summary["resumed_from"][0] >= 25
