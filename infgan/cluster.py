"""Connecting to Ray (a fresh local instance, or a running cluster) and the checks made before
any work is started, so that a bad request fails in seconds with one line instead of hanging."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from infgan.config import ConfigError
from infgan.text import error_line


class ClusterError(Exception):
    """The Ray cluster is not fit for work: a node missing, too few resources, storage not shared."""


def import_ray():
    """Import ray, or say in one line how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("this needs Ray: pip install 'ray[default,tune,train]'") from None
    return ray


def check_address(address: str, timeout_s: float = 10.0) -> None:
    """A HOST:PORT address must accept a TCP connection within `timeout_s` (Ray itself retries for
    minutes). `auto` and `ray://` addresses are left to Ray."""
    if address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--address {address!r}: give HOST:PORT (e.g. 10.0.0.5:6379) or auto")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise ConfigError(
            f"--address {address}: nothing answers there within {timeout_s:g} s ({reason}); is the Ray head running?"
        ) from None


def check_local(what: str, cpus: float, gpus: float) -> None:
    """Refuse, before a local Ray starts, a request this machine cannot hold."""
    have_cpu = os.cpu_count() or 1
    have_gpu = 0
    if gpus > 0:
        import torch

        have_gpu = torch.cuda.device_count()
    if cpus > have_cpu or gpus > have_gpu:
        raise ConfigError(
            f"{what} needs {cpus:g} CPUs and {gpus:g} GPUs; this machine has {have_cpu} CPUs and {have_gpu} GPUs "
            "(ask for less, or join a cluster with --address)"
        )


@contextmanager
def ray_session(address: str | None, num_cpus: int | None = None, timeout_s: float = 10.0) -> Iterator[None]:
    """Attach to `address`, or start a fresh local Ray and stop it afterwards.

    A local instance never attaches to a stale cluster (`address="local"`), runs with token
    authentication (Ray 2.60 turns it on for a local instance unless RAY_AUTH_MODE=disabled is
    exported: its GCS and raylet listen on all interfaces, so the token is what keeps other users
    out), and serves the dashboard on 127.0.0.1 only. If this process is already
    connected (a test session, a notebook), that connection is used and left open; an `address`
    naming another cluster is then refused (a dead one as any dead address), never silently
    replaced by the connected one.
    """
    ray = import_ray()
    if ray.is_initialized():
        current = ray.get_runtime_context().gcs_address
        if address not in (None, "auto", current):
            check_address(address, timeout_s)
            raise ConfigError(
                f"--address {address}: this process is already connected to the Ray cluster at {current}; "
                "give that address, or run the command in a process of its own"
            )
        yield
        return
    watchdog = None
    if address is None:
        # Ray turns token authentication on for a fresh local instance, as infgan wants it, and warns
        # that it did (and how to opt out) in every command's output: that one record is left out.
        logging.getLogger("ray._private.authentication.authentication_token_setup").addFilter(_token_default_said)
        ray.init(**local_init_args(num_cpus), log_to_driver=True)
        watchdog = _watchdog(ray)
    else:
        check_address(address, timeout_s)
        try:
            ray.init(address=address, runtime_env=worker_env(address), log_to_driver=True)
        except (ConnectionError, RuntimeError, ValueError) as e:
            if _refused_token(e):
                raise ConfigError(
                    f"--address {address}: the Ray cluster refused this client's token: connect with "
                    "the cluster's token (RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH, as "
                    "cluster/ray-cluster.sh exports them)"
                ) from None
            raise ConfigError(f"--address {address}: cannot connect to a Ray cluster ({error_line(e)})") from None
    try:
        yield
    finally:
        ray.shutdown()
        if watchdog is not None:
            watchdog.release()


def _token_default_said(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Token authentication is enabled for this Ray cluster")


def worker_env(address: str | None = None, api_server: str | None = None) -> dict[str, Any]:
    """The runtime environment of every worker: one intra-op thread (tiny tensors), and where this
    cluster's State API is.

    Ray's State API, asked from inside a worker, looks for the cluster in RAY_ADDRESS, else in
    /tmp/ray/ray_current_cluster: the last cluster `ray start` began on that machine, which may be
    another one or a dead one. Ray Train's PlacementGroupCleaner asks it every second whether the
    run's controller lives; pointed at a dead cluster each question hung for its 10 s timeout, the
    cleaner watched nothing, and every Ray Train run waited 12 s at its end for it to stop.
    """
    env = {"OMP_NUM_THREADS": "1"}
    if api_server:
        env["RAY_API_SERVER_ADDRESS"] = api_server
    elif address and address != "auto" and "://" not in address:
        env["RAY_ADDRESS"] = address
    return {"env_vars": env}


def local_init_args(num_cpus: int | None = None) -> dict[str, Any]:
    """`ray.init` arguments of a fresh local instance: its dashboard (and State API) on loopback at a
    port chosen here, so that its workers can be told where it is (`worker_env`)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return {
        "address": "local",
        "num_cpus": num_cpus,
        "include_dashboard": True,
        "dashboard_host": "127.0.0.1",
        "dashboard_port": port,
        "runtime_env": worker_env(api_server=f"http://127.0.0.1:{port}"),
    }


def _watchdog(ray: Any) -> Any:
    """A watchdog that stops this local Ray instance if this process dies without stopping it."""
    from infgan.reaper import Watchdog

    node = getattr(ray._private.worker, "_global_node", None)  # Ray has no public accessor for it
    session_dir = node.get_session_dir_path() if node is not None else None
    return Watchdog(session_dir) if session_dir else None


def _refused_token(error: BaseException | None) -> bool:
    """Whether a failed connection was the cluster refusing our token (Ray wraps the reason twice)."""
    while error is not None:
        if "InvalidAuthToken" in str(error) or type(error).__name__ == "AuthenticationError":
            return True
        error = error.__cause__ or error.__context__
    return False


def check_state_api(wait_s: float = 30.0) -> None:
    """Ray's State API must answer (it may take a few seconds after start-up): Ray Train frees a
    stopped run's workers through it."""
    try:
        from ray.util.state import list_nodes
    except ImportError:
        raise ConfigError("Ray's State API is missing: pip install 'ray[default,tune,train]'") from None
    ray = import_ray()
    # The connected cluster's own address: with several Ray instances on one machine the State
    # API cannot guess which one is meant.
    address = ray.get_runtime_context().gcs_address
    deadline = time.monotonic() + wait_s
    while True:
        try:
            list_nodes(address=address, limit=1, timeout=10, raise_on_missing_output=False)
            return
        except Exception as e:  # any failure here means the same thing to the user
            if time.monotonic() > deadline:
                raise ConfigError(
                    "Ray's State API is unavailable (install 'ray[default]' and do not disable the "
                    f"dashboard): without it stopped workers are never released ({type(e).__name__})"
                ) from None
            time.sleep(1.0)


def check_resources(what: str, cpus: float, gpus: float) -> None:
    """Refuse a request the cluster cannot hold, instead of waiting forever for it."""
    ray = import_ray()
    have = ray.cluster_resources()
    have_cpu, have_gpu = have.get("CPU", 0.0), have.get("GPU", 0.0)
    if cpus > have_cpu or gpus > have_gpu:
        raise ConfigError(
            f"{what} needs {cpus:g} CPUs and {gpus:g} GPUs; the Ray cluster has {have_cpu:g} CPUs and {have_gpu:g} GPUs"
        )


def _alive_nodes() -> list[dict[str, Any]]:
    ray = import_ray()
    return [n for n in ray.nodes() if n.get("Alive")]


def wait_for_nodes(expected: int, timeout_s: float, poll_s: float = 1.0) -> list[dict[str, Any]]:
    """Wait until `expected` nodes are alive in the cluster; one line naming those that are if not."""
    deadline = time.monotonic() + timeout_s
    seen = -1
    while True:
        nodes = _alive_nodes()
        if len(nodes) >= expected:
            return nodes
        if len(nodes) != seen:
            seen = len(nodes)
            print(f"waiting for Ray nodes: {seen} of {expected} joined", flush=True)
        if time.monotonic() > deadline:
            joined = ", ".join(_node_name(n) for n in nodes) or "none"
            raise ClusterError(
                f"only {len(nodes)} of {expected} Ray nodes joined within {timeout_s:g}s "
                f"(joined: {joined}); the missing nodes' `ray start` output is in the job log"
            )
        time.sleep(poll_s)


def _node_name(node: dict[str, Any]) -> str:
    return f"{node.get('NodeManagerHostname', '?')} {node.get('NodeManagerAddress', '?')}"


def _write_probe(directory: str, node_id: str) -> None:
    """Runs on one node: write a file named after the node into the shared directory."""
    (Path(directory) / node_id).write_text(f"{socket.gethostname()} {os.getpid()}\n")


def check_shared_storage(path: Path, nodes: list[dict[str, Any]], timeout_s: float = 120.0) -> None:
    """Every node can write under `path`, and what each node wrote is seen here: the storage is shared.

    Trials run on any node and write their run directories there, and Tune restores a sweep from it.
    """
    ray = import_ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe_dir = path / f".infgan-check-{uuid.uuid4().hex[:8]}"
    try:
        probe_dir.mkdir(parents=True)
    except OSError as e:
        raise ClusterError(f"cannot write the storage directory {path} ({e.strerror})") from None
    probe = ray.remote(num_cpus=0, max_retries=0)(_write_probe)
    try:
        refs = {
            n["NodeID"]: probe.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
            ).remote(str(probe_dir), n["NodeID"])
            for n in nodes
        }
        names = {n["NodeID"]: _node_name(n) for n in nodes}
        for node_id, ref in refs.items():
            try:
                ray.get(ref, timeout=timeout_s)
            except Exception as e:  # the node's own error, whatever it is, in one line
                cause = getattr(e, "cause", None) or e
                raise ClusterError(
                    f"{path} is not writable from node {names[node_id]} "
                    f"({type(cause).__name__}: {error_line(cause, last=True)[:200]})"
                ) from None
            if not (probe_dir / node_id).exists():
                raise ClusterError(
                    f"{path} is not shared storage: a file written there on node {names[node_id]} "
                    "is not seen on this node; put --storage / INFGAN_STORAGE on a file system every "
                    "node mounts ($SCRATCH or $WORK on TACC)"
                )
    finally:
        for f in probe_dir.glob("*"):
            f.unlink()
        probe_dir.rmdir()


def check_cluster(expected_nodes: int, cpus: float, gpus: float, storage: Path | None, timeout_s: float) -> str:
    """The health check run before a sweep on a cluster; returns a one-line summary, or raises
    ClusterError with one line naming what is wrong."""
    ray = import_ray()
    nodes = wait_for_nodes(expected_nodes, timeout_s)
    have = ray.cluster_resources()
    have_cpu, have_gpu = have.get("CPU", 0.0), have.get("GPU", 0.0)
    if have_cpu < cpus or have_gpu < gpus:
        raise ClusterError(
            f"the Ray cluster of {len(nodes)} nodes has {have_cpu:g} CPUs and {have_gpu:g} GPUs, "
            f"expected {cpus:g} and {gpus:g}: a node did not get its share (check the "
            "`ray-node.sh` lines in the job log, or set INFGAN_CPUS_PER_NODE / INFGAN_GPUS_PER_NODE)"
        )
    try:
        check_state_api(wait_s=min(timeout_s, 60.0))
    except ConfigError as e:
        raise ClusterError(str(e)) from None
    summary = f"Ray cluster ready: {len(nodes)} nodes, {have_cpu:g} CPUs, {have_gpu:g} GPUs, State API up"
    if storage is not None:
        check_shared_storage(storage, nodes)
        summary += f", {storage} shared and writable from every node"
    return summary
