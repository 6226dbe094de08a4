#!/usr/bin/env bash
# Start one Ray node on this machine, in the foreground, for as long as it runs (`ray start --block`).
# Launched on each node of a SLURM job by cluster/ray-cluster.sh (through `srun`); usable by hand
# inside an interactive allocation (idev) too.
#
#   cluster/ray-node.sh head PORT           the head: GCS on PORT, dashboard on PORT+1 (127.0.0.1 only),
#                                           Ray Client server on PORT+2
#   cluster/ray-node.sh worker HEAD:PORT    a worker joining that head
#   cluster/ray-node.sh info                print "IP CPUS GPUS" of this node, as the other commands see it
#   cluster/ray-node.sh stop [SECONDS]      stop this job's Ray node on this machine and wait for it
#                                           (default 60 s); nothing to stop is not an error
#
# SIGTERM to this script stops the node and every process it started (ray start --block cleans up
# on TERM), then removes Ray's temp dir and exits 0; a node that stops by itself keeps its temp dir
# (Ray's logs) and exits with Ray's status. Under srun, do not signal srun: real srun turns a TERM
# into SIGKILL for the whole step, and SLURM's own `scancel --signal` reaches every process of the
# step and logs the step as cancelled. `stop`, run as another step on the node (what
# cluster/ray-cluster.sh does), signals this script alone, through the pid file in the temp dir.
#
# Environment (all optional):
#   INFGAN_RAY_IFACE        network interface whose IPv4 address Ray uses (e.g. ib0); default: the
#                           first address of `hostname -I`, else the address of the default route
#   INFGAN_CPUS_PER_NODE    CPUs Ray may use here (default SLURM_CPUS_ON_NODE, else nproc)
#   INFGAN_GPUS_PER_NODE    GPUs Ray may use here (default: what nvidia-smi lists, else 0)
#   INFGAN_OBJECT_STORE_BYTES  object store size (default: 30% of memory, at most 80% of /dev/shm)
#   INFGAN_RAY_TMPDIR       Ray's node-local temp dir (default /tmp/ray-<job id>-<node>; at most 40
#                           characters, because Ray puts AF_UNIX sockets (<= 107 bytes) under it)
#   RAY_AUTH_TOKEN_PATH     the cluster's token file (default ~/.ray/auth_token); token authentication
#                           is always on: every node and client of the cluster must use the same token
set -euo pipefail

die() {
    echo "ray-node.sh: error: $*" >&2
    exit 2
}

node_ip() {
    local ip
    if [[ -n ${INFGAN_RAY_IFACE:-} ]]; then
        ip=$(ip -4 -o addr show dev "$INFGAN_RAY_IFACE" 2>/dev/null | awk '{sub(/\/.*/, "", $4); print $4; exit}')
        [[ -n $ip ]] || die "INFGAN_RAY_IFACE=$INFGAN_RAY_IFACE: no IPv4 address on that interface of $(hostname)"
    else
        ip=$(hostname -I 2>/dev/null | awk '{print $1}') || true
        # Else the address of the route out (a UDP connect sends nothing), as Ray itself finds it.
        [[ -n $ip ]] || ip=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("10.255.255.255", 1)); print(s.getsockname()[0])' 2>/dev/null) || true
        [[ -n $ip ]] || die "cannot find the IP address of $(hostname): set INFGAN_RAY_IFACE to its network interface"
    fi
    echo "$ip"
}

node_cpus() {
    local n=${INFGAN_CPUS_PER_NODE:-${SLURM_CPUS_ON_NODE:-$(nproc)}}
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "CPUs per node must be a positive integer, got '$n' (INFGAN_CPUS_PER_NODE)"
    echo "$n"
}

node_gpus() {
    local n=${INFGAN_GPUS_PER_NODE:-}
    if [[ -z $n ]]; then
        if command -v nvidia-smi >/dev/null 2>&1; then
            n=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
        else
            n=0
        fi
    fi
    [[ $n =~ ^[0-9]+$ ]] || die "GPUs per node must be an integer >= 0, got '$n' (INFGAN_GPUS_PER_NODE)"
    echo "$n"
}

object_store_bytes() {
    if [[ -n ${INFGAN_OBJECT_STORE_BYTES:-} ]]; then
        [[ $INFGAN_OBJECT_STORE_BYTES =~ ^[0-9]+$ ]] || die "INFGAN_OBJECT_STORE_BYTES must be a number of bytes"
        echo "$INFGAN_OBJECT_STORE_BYTES"
        return
    fi
    # Ray maps its object store in /dev/shm: bigger than /dev/shm and it falls back to slow disk or fails.
    local mem_kb shm_kb
    mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    shm_kb=$(df -Pk /dev/shm | awk 'NR == 2 {print $2}')
    echo $(( (mem_kb * 3 / 10 < shm_kb * 8 / 10 ? mem_kb * 3 / 10 : shm_kb * 8 / 10) * 1024 ))
}

tmp_dir() {
    local node=${SLURMD_NODENAME:-$(hostname -s)}
    local dir=${INFGAN_RAY_TMPDIR:-/tmp/ray-${SLURM_JOB_ID:-$$}-$node}
    (( ${#dir} <= 40 )) || die "Ray's temp dir '$dir' is ${#dir} characters; use a node-local path of at most 40 \
(Ray's AF_UNIX socket paths under it must stay within 107 bytes): set INFGAN_RAY_TMPDIR"
    echo "$dir"
}

auth() {
    # The same mode on every node: a node without it fails to join (InvalidAuthToken), a client
    # without it is refused.
    [[ ${RAY_AUTH_MODE:-token} == token ]] || die "RAY_AUTH_MODE=$RAY_AUTH_MODE: infgan's clusters always use token authentication"
    export RAY_AUTH_MODE=token
    export RAY_AUTH_TOKEN_PATH=${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}
    [[ -r $RAY_AUTH_TOKEN_PATH ]] || die "token file $RAY_AUTH_TOKEN_PATH is not readable on $(hostname): it must be on \
storage every node sees (cluster/ray-cluster.sh creates it)"
}

start() {
    local role=$1 target=$2 ip cpus gpus dir store
    ip=$(node_ip)
    cpus=$(node_cpus)
    gpus=$(node_gpus)
    dir=$(tmp_dir)
    store=$(object_store_bytes)
    auth
    export RAY_TMPDIR=$dir
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
    # Nodes are stopped once the driver is done: Ray's drain on SIGTERM (for Serve replicas) would
    # only hold the end of the job up by as much as 30 s.
    export RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S=${RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S:-0}
    # Ports: the head's come from the caller (derived from the job id); every other port of a node
    # (node manager, object manager, agents, metrics, workers) is 0 = chosen free by the OS, so two
    # jobs, or two nodes of one job on the same machine, never collide.
    local args=(--block --node-ip-address "$ip" --num-cpus "$cpus" --num-gpus "$gpus"
        --object-store-memory "$store" --temp-dir "$dir" --disable-usage-stats
        --dashboard-agent-listen-port 0 --min-worker-port 0 --max-worker-port 0)
    if [[ $role == head ]]; then
        if ! [[ $target =~ ^[0-9]+$ ]] || ((target < 1024 || target > 65533)); then
            die "head PORT must be 1024-65533, got '$target'"
        fi
        args+=(--head --port "$target" --dashboard-port $((target + 1)) --ray-client-server-port $((target + 2))
            --include-dashboard true --dashboard-host 127.0.0.1)
    else
        [[ $target =~ ^[^:]+:[0-9]+$ ]] || die "worker needs the head's HOST:PORT, got '$target'"
        args+=(--address "$target")
    fi
    mkdir -p "$dir"
    echo $$ >"$dir/ray-node.pid"  # for `ray-node.sh stop`
    echo "ray-node.sh: $role on $(hostname) ($ip): $cpus CPUs, $gpus GPUs, temp dir $dir"
    # Ray runs as a child so that its temp dir can go once it has stopped. A TERM (to this script
    # alone, or to the whole step) reaches Ray, which stops its processes and exits 1.
    local child status stopping=0
    trap 'stopping=1; kill -TERM "$child" 2>/dev/null || true' TERM INT
    ray start "${args[@]}" &
    child=$!
    ((!stopping)) || kill -TERM "$child" 2>/dev/null || true  # a signal that came before Ray did
    status=0
    wait "$child" || status=$?
    while kill -0 "$child" 2>/dev/null; do  # a trapped signal interrupts `wait`: wait for Ray to stop
        status=0
        wait "$child" || status=$?
    done
    if ((stopping)); then
        rm -rf "$dir"
        echo "ray-node.sh: $role on $(hostname) stopped"
        exit 0
    fi
    echo "ray-node.sh: Ray on $(hostname) exited by itself (status $status); its logs: $dir/session_latest/logs" >&2
    exit "$status"
}

stop() {
    local wait_s=${1:-60} dir pid
    [[ $wait_s =~ ^[0-9]+$ ]] || die "stop SECONDS must be a whole number, got '$wait_s'"
    dir=$(tmp_dir)
    pid=$(cat "$dir/ray-node.pid" 2>/dev/null) || pid=
    # Only our own script: a stale pid file must not make us signal a recycled pid.
    if [[ -z $pid ]] || ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "ray-node.sh"; then
        echo "ray-node.sh: no Ray node of this job running on $(hostname)"
        return 0
    fi
    kill -TERM "$pid"
    local deadline=$((SECONDS + wait_s))
    while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || die "Ray on $(hostname) did not stop within ${wait_s}s"
        sleep 0.5
    done
}

case ${1:-} in
    head | worker)
        (( $# == 2 )) || die "usage: ray-node.sh head PORT | worker HEAD:PORT | info | stop [SECONDS]"
        start "$1" "$2" ;;
    info)
        ip=$(node_ip)
        cpus=$(node_cpus)
        gpus=$(node_gpus)
        echo "$ip $cpus $gpus" ;;
    stop)
        (( $# <= 2 )) || die "usage: ray-node.sh stop [SECONDS]"
        stop "${2:-60}" ;;
    *)
        die "usage: ray-node.sh head PORT | worker HEAD:PORT | info | stop [SECONDS]" ;;
esac
