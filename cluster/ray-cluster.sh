# shellcheck shell=bash
# A Ray cluster over the nodes of the current SLURM job, for the job scripts in sbatch/ (which
# also run as `bash sbatch/...` inside an interactive allocation). Sourced, not run; the functions
# set traps and exit on errors, so source it in a script, not in a login shell.
#
#   ray_cluster_up       head on the job's first node, a worker on every other node (through srun),
#                        waits until all of them have joined and checks the cluster
#                        (`infgan cluster check`); exports RAY_ADDRESS, INFGAN_STORAGE and the
#                        cluster's size (INFGAN_CLUSTER_NODES, _CPUS, _GPUS); stops Ray when the shell exits
#   infgan_refuse_args ARGS...  refuses the options the job script sets itself (--address, --storage,
#                        --name, --out, --resume): one line naming the variable to set instead
#   infgan_wandb_offline W&B offline (unless WANDB_MODE says otherwise) with its files under
#                        $INFGAN_STORAGE/wandb, when wandb is installed
#   run_driver CMD...    runs CMD (infgan tune/train) so that the time-limit signal reaches it: it
#                        saves its state and exits, then Ray is stopped
#   ray_cluster_down     stops this job's Ray nodes, workers first: a step on each node asks its
#                        ray-node.sh to stop Ray (never `ray stop`, which would stop every Ray of the
#                        user on the machine, and never a signal to srun, which SIGKILLs the step);
#                        Ray's temp dirs go with them
#
# Environment (all optional):
#   INFGAN_STORAGE          where sweeps and runs are written: shared by every node
#                           (default $SCRATCH/infgan; without $SCRATCH, $SLURM_SUBMIT_DIR/runs)
#   INFGAN_RAY_PORT         the head's port (default 20000 + 3 * (job id mod 3000): two jobs sharing
#                           a node do not collide)
#   INFGAN_JOIN_TIMEOUT     seconds to wait for the head and for every node to join (default 300)
#   INFGAN_SRUN_ARGS        extra srun options for the Ray steps, e.g. "--gres=gpu:4" on sites that
#                           hand GPUs out through gres (TACC does not)
#   RAY_AUTH_TOKEN_PATH     the token file (default ~/.ray/auth_token, created readable by you alone)
#   INFGAN_WARN_S           seconds before the time limit at which the job script's time-limit warning
#                           comes (default 300, as the scripts' #SBATCH --signal=B:TERM@300): a job whose
#                           time limit is not longer is refused at its start
#   and those of cluster/ray-node.sh (interface, CPUs and GPUs per node, object store, temp dir).

INFGAN_REPO=${INFGAN_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
_infgan_node_pids=()
_infgan_node_names=()
_infgan_driver=

_infgan_die() {
    echo "infgan: error: $*" >&2
    exit 2
}

# The srun command (in _infgan_cmd) running ray-node.sh ARGS as one task on one node with all of
# the node's CPUs, sharing the allocation with the other steps, without CPU binding (Ray
# schedules its own workers; a step given one CPU, or bound, would squeeze them onto one core).
_infgan_srun_cmd() {
    local node=$1
    shift
    # shellcheck disable=SC2206  # INFGAN_SRUN_ARGS is a list of options
    _infgan_cmd=(srun --nodes=1 --ntasks=1 ${SLURM_CPUS_ON_NODE:+--cpus-per-task=$SLURM_CPUS_ON_NODE} --overlap
        --cpu-bind=none -w "$node" ${INFGAN_SRUN_ARGS:-} "$INFGAN_REPO/cluster/ray-node.sh" "$@")
}

# Start a Ray node on `node` in the background; keep srun's process id (the step ends with it) and
# the node's name (ray_cluster_down stops each node's Ray through a step on that node).
_infgan_start_node() {
    _infgan_srun_cmd "$@"
    "${_infgan_cmd[@]}" &
    _infgan_node_pids+=($!)
    _infgan_node_names+=("$1")
}

# Seconds in a SLURM time (squeue's %l: [D-]HH:MM:SS, MM:SS), or nothing for UNLIMITED and the like.
_infgan_seconds() {
    local t=$1 days=0 total=0 part
    [[ $t =~ ^([0-9]+-)?[0-9]+(:[0-9]+){0,2}$ ]] || return 0
    if [[ $t == *-* ]]; then
        days=${t%%-*}
        t=${t#*-}
    fi
    IFS=: read -ra parts <<<"$t"
    for part in "${parts[@]}"; do total=$((total * 60 + 10#$part)); done
    echo $((days * 86400 + total))
}

# Refuse a time limit that the job script's time-limit warning (#SBATCH --signal=B:TERM@300) would
# cut off at once: SLURM sends the warning as soon as the job starts, and nothing would run.
_infgan_check_time_limit() {
    local warn=${INFGAN_WARN_S:-300} limit seconds
    [[ $warn =~ ^[0-9]+$ ]] || _infgan_die "INFGAN_WARN_S must be a whole number of seconds, got '$warn'"
    command -v squeue >/dev/null || return 0
    limit=$(squeue -h -j "$SLURM_JOB_ID" -o %l 2>/dev/null) || return 0
    seconds=$(_infgan_seconds "$limit")
    if [[ -n $seconds ]] && ((seconds <= warn)); then
        _infgan_die "the job's time limit ($limit) is not longer than the ${warn} s warning the job script asks for \
(#SBATCH --signal=B:TERM@$warn), which would stop it at once: submit with a longer -t, or with a shorter warning \
(sbatch --signal=B:TERM@N, and INFGAN_WARN_S=N in the environment)"
    fi
}

# The token file every node and client uses: created once (256 random bits, as
# `ray get-auth-token --generate` makes), readable by its owner alone.
_infgan_token() {
    export RAY_AUTH_MODE=token
    export RAY_AUTH_TOKEN_PATH=${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}
    if [[ ! -s $RAY_AUTH_TOKEN_PATH ]]; then
        (umask 077 && mkdir -p "$(dirname "$RAY_AUTH_TOKEN_PATH")" &&
            python3 -c 'import secrets; print(secrets.token_hex(32))' >"$RAY_AUTH_TOKEN_PATH") ||
            _infgan_die "cannot create the token file $RAY_AUTH_TOKEN_PATH"
        echo "infgan: created Ray token file $RAY_AUTH_TOKEN_PATH"
    fi
    chmod 600 "$RAY_AUTH_TOKEN_PATH"
}

_infgan_alive() {
    local pid
    for pid in "$@"; do
        kill -0 "$pid" 2>/dev/null && return 0
    done
    return 1
}

ray_cluster_up() {
    [[ -n ${SLURM_JOB_ID:-} && -n ${SLURM_JOB_NODELIST:-} ]] ||
        _infgan_die "not inside a SLURM job: submit with sbatch, or start an interactive allocation first"
    trap '_infgan_on_signal' TERM INT
    _infgan_check_time_limit
    command -v infgan >/dev/null || _infgan_die "infgan is not on PATH: activate its virtual environment first"
    local nodes head ip cpus gpus port timeout=${INFGAN_JOIN_TIMEOUT:-300}
    mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
    ((${#nodes[@]} > 0)) || _infgan_die "scontrol listed no nodes for SLURM_JOB_NODELIST=$SLURM_JOB_NODELIST"
    head=${nodes[0]}
    if [[ -z ${INFGAN_STORAGE:-} ]]; then
        if [[ -n ${SCRATCH:-} ]]; then
            INFGAN_STORAGE=$SCRATCH/infgan
        else
            INFGAN_STORAGE=${SLURM_SUBMIT_DIR:-$PWD}/runs
            echo "infgan: SCRATCH is not set; writing to $INFGAN_STORAGE (set INFGAN_STORAGE to shared storage)"
        fi
    fi
    export INFGAN_STORAGE
    mkdir -p "$INFGAN_STORAGE"
    port=${INFGAN_RAY_PORT:-$((20000 + 3 * (SLURM_JOB_ID % 3000)))}
    _infgan_token

    _infgan_srun_cmd "$head" info
    read -r ip cpus gpus < <("${_infgan_cmd[@]}") ||
        _infgan_die "could not query node $head (srun failed)"
    local address=$ip:$port
    trap 'ray_cluster_down' EXIT

    echo "infgan: Ray head on $head at $address; ${#nodes[@]} node(s) of $cpus CPUs and $gpus GPUs expected"
    _infgan_start_node "$head" head "$port"
    # Wait for the head's port to answer (a loop with a deadline; the head dying ends it at once).
    local deadline=$((SECONDS + timeout))
    until (exec 3<>"/dev/tcp/$ip/$port") 2>/dev/null; do
        _infgan_alive "${_infgan_node_pids[0]}" || _infgan_die "the Ray head on $head exited during start-up (its output is above)"
        ((SECONDS < deadline)) || _infgan_die "the Ray head on $head did not open $address within ${timeout}s"
        sleep 1
    done
    local node
    for node in "${nodes[@]:1}"; do
        _infgan_start_node "$node" worker "$address"
    done
    export INFGAN_CLUSTER_NODES=${#nodes[@]} INFGAN_CLUSTER_CPUS=$((cpus * ${#nodes[@]}))
    export INFGAN_CLUSTER_GPUS=$((gpus * ${#nodes[@]}))
    infgan cluster check --address "$address" --nodes "$INFGAN_CLUSTER_NODES" --cpus "$INFGAN_CLUSTER_CPUS" \
        --gpus "$INFGAN_CLUSTER_GPUS" --storage "$INFGAN_STORAGE" --timeout "$timeout" ||
        _infgan_die "the Ray cluster is not usable (see the line above); nothing was started"
    export RAY_ADDRESS=$address
    echo "infgan: dashboard: ssh -N -L 8265:127.0.0.1:$((port + 1)) $head  (then open http://localhost:8265)"
}

infgan_refuse_args() {
    local arg
    for arg in "$@"; do
        case $arg in
            --address* | --storage* | --name* | --out* | --resume)
                _infgan_die "$arg: the job script sets it (the cluster's address; INFGAN_STORAGE; INFGAN_SWEEP_NAME or \
INFGAN_RUN_NAME; and --resume when the sweep or run already exists)" ;;
        esac
    done
}

infgan_wandb_offline() {
    python -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("wandb") is None)' 2>/dev/null || return 0
    export WANDB_MODE=${WANDB_MODE:-offline}
    [[ $WANDB_MODE != disabled ]] || return 0
    export WANDB_DIR=${WANDB_DIR:-$INFGAN_STORAGE/wandb}
    mkdir -p "$WANDB_DIR"
    echo "infgan: W&B $WANDB_MODE, files in $WANDB_DIR"
}

_infgan_on_signal() {
    if [[ -n $_infgan_driver ]]; then
        echo "infgan: signal received (time limit or scancel): the driver saves its state and stops;" \
            "submit the same sbatch command again to continue"
        kill -TERM "$_infgan_driver" 2>/dev/null || true
    else
        echo "infgan: signal received before the driver started (scancel or the time-limit warning); stopping" >&2
        exit 143
    fi
}

run_driver() {
    local status=0
    "$@" &
    _infgan_driver=$!
    wait "$_infgan_driver" || status=$?
    # A trapped signal interrupts `wait`; wait again for the driver to finish saving.
    while _infgan_alive "$_infgan_driver"; do
        status=0
        wait "$_infgan_driver" || status=$?
    done
    _infgan_driver=
    return "$status"
}

# Stop the Ray nodes of one group (srun process ids; names in _infgan_node_names at the same
# indices): ask each node's Ray to stop through a step on that node (`ray-node.sh stop`, which
# signals the node script alone: Ray stops its processes and the step ends cleanly), wait up to a
# minute, then kill what is left.
_infgan_stop_nodes() {
    local i pids=()
    for i in "$@"; do
        pids+=("${_infgan_node_pids[i]}")
        _infgan_alive "${_infgan_node_pids[i]}" || continue
        _infgan_srun_cmd "${_infgan_node_names[i]}" stop 60
        "${_infgan_cmd[@]}" >/dev/null &
    done
    local deadline=$((SECONDS + 60))
    while _infgan_alive "${pids[@]}" && ((SECONDS < deadline)); do sleep 1; done
    if _infgan_alive "${pids[@]}"; then
        echo "infgan: Ray did not stop within 60 s on every node; killing it" >&2
        kill -KILL "${pids[@]}" 2>/dev/null || true
    fi
}

ray_cluster_down() {
    local status=$?
    trap - EXIT TERM INT
    if ((${#_infgan_node_pids[@]} > 0)); then
        echo "infgan: stopping Ray on ${#_infgan_node_pids[@]} node(s)"
        local workers
        mapfile -t workers < <(seq 1 $((${#_infgan_node_pids[@]} - 1)))
        ((${#workers[@]} == 0)) || _infgan_stop_nodes "${workers[@]}"  # workers first, then the head
        _infgan_stop_nodes 0
        wait 2>/dev/null || true
        _infgan_node_pids=()
        _infgan_node_names=()
    fi
    return "$status"
}
