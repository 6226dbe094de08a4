#!/usr/bin/env bash
# A real two-node SLURM cluster on one machine, for testing sbatch/ and cluster/ against the real
# srun/sbatch/scancel rather than tests/fake_slurm.
#
#   tests/slurm/harness.sh up     [WORKDIR]   start it; prints `export SLURM_CONF=...` lines on stdout
#                                             (eval "$(tests/slurm/harness.sh up)"), progress on stderr
#   tests/slurm/harness.sh down   [WORKDIR]   stop and remove everything `up` created (idempotent)
#   tests/slurm/harness.sh status [WORKDIR]   what is up; exit 0 when every part is running
#
# WORKDIR defaults to $INFGAN_SLURM_WORKDIR, else /tmp/infgan-slurm. Needs root, Linux, iproute2,
# util-linux (nsenter, unshare, setsid, flock) and SLURM + MUNGE; on Debian 12:
#
#   apt-get install -y --no-install-recommends munge slurmctld slurmd slurm-client
#
# (SLURM 22.05.8). Nothing in /etc is used or changed: the harness runs its own munged (own key and
# socket) and its own daemons on non-default ports, with every file under WORKDIR.
#
# What `up` builds
#   - bridge infgan-br0 with 10.231.0.1/24 on the host (no forwarding, no NAT);
#   - network namespaces infgan-node1 and infgan-node2, each joined to the bridge by a veth pair
#     (host end infgan-node1h / infgan-node2h, namespace end renamed eth0) with 10.231.0.11 and
#     10.231.0.12, loopback up, no default route: the nodes reach the host and each other over
#     TCP/UDP on 10.231.0.0/24 and nothing else;
#   - munged (key WORKDIR/munge/munge.key, created if absent; socket WORKDIR/munge/munge.socket);
#   - WORKDIR/etc/slurm.conf (ClusterName infgan-test, controller infgan-ctl at 10.231.0.1, nodes
#     node1/node2 with CPUs=2 RealMemory=1024 each, partition debug Default=YES MaxTime=INFINITE,
#     select/cons_tres CR_CPU, proctrack/linuxproc, task/none, MpiDefault=none,
#     ReturnToService=2, short timeouts, KillWait=5) and WORKDIR/etc/cgroup.conf
#     (CgroupPlugin=cgroup/v1: see below);
#   - slurmctld on the host under its own UTS namespace (hostname infgan-ctl);
#   - slurmd in each namespace, entered with
#       nsenter --net=/run/netns/infgan-nodeN unshare --uts --mount sh -c \
#           'hostname nodeN; mount --bind WORKDIR/etc/hosts /etc/hosts; exec slurmd -D -N nodeN ...'
#     so `hostname` in a job prints node1/node2 and node1, node2, infgan-ctl resolve inside the
#     nodes (the bind mount is private to the node's mount namespace; the host's /etc/hosts is
#     untouched). Job steps inherit the namespaces of their node's slurmd.
#   and waits until `sinfo` shows both nodes idle (INFGAN_SLURM_TIMEOUT seconds, default 60); on
#   timeout it prints the log tails and takes everything down again (INFGAN_SLURM_KEEP_ON_FAIL=1
#   leaves it up for a look).
#
# Facts found on Debian 12 (slurm-wlm 22.05.8, kernel 6.x, root in a VM)
#   - cgroup.conf next to slurm.conf with CgroupPlugin=cgroup/v1 is what slurmd needs; no cgroup
#     mount is. Without it (CgroupPlugin=autodetect, the default) slurmd looks at /sys/fs/cgroup
#     even with proctrack/linuxproc and task/none, and stops: "No filesystem mounted on
#     /sys/fs/cgroup" when nothing is mounted there, "Hybrid mode is not supported" with cgroup2
#     alone there while /proc/self/cgroup lists v1 hierarchies. With cgroup/v1 named, slurmd starts
#     with the host's v1 hierarchies, with only cgroup2, with an empty tmpfs or with nothing at all
#     on /sys/fs/cgroup (tried in a private mount namespace), and runs and signals job steps with
#     nothing mounted there. So the harness mounts nothing and checks nothing about cgroups.
#   - `ip netns exec` mounts a fresh /sys (hiding /sys/fs/cgroup, which autodetect would need);
#     the harness enters the namespaces with nsenter --net=/run/netns/NAME, which keeps the mounts.
#   - slurmd 22.05 loads every MPI plugin at start-up and logs errors for mpi/pmix and
#     mpi/pmix_v4 (libpmix is not installed with --no-install-recommends): harmless, MpiDefault=none.
#   - munged logs "Unauthorized credential for client UID=0 GID=0" (Info) a few times per job:
#     harmless here, every RPC and job succeeds.
#   - Signals, measured with this harness: SIGTERM to an srun process makes it print "forcing job
#     termination" and the step's processes get SIGKILL at once (no TERM, no KillWait grace);
#     `scancel JOB.STEP` also kills the step with SIGKILL at once; `scancel --signal=TERM JOB.STEP`
#     (and `scancel --signal=TERM JOB`, which signals the steps but not the batch shell) sends TERM
#     to every process of the step and leaves it running until it exits by itself (srun then exits
#     0). A plain `scancel JOB` sends CONT+TERM to the batch shell and the steps and to srun, which
#     turns that into SIGKILL for its step.
#   - The daemons read -f WORKDIR/etc/slurm.conf; clients (sinfo, sbatch, srun, scancel) need
#     SLURM_CONF=WORKDIR/etc/slurm.conf in their environment (also in WORKDIR/env.sh). Jobs get
#     SLURM_CONF from slurmd, so srun inside a batch script finds the cluster by itself.
#   - slurmctld listens on all host addresses (SLURM has no bind-address setting), on port
#     INFGAN_SLURM_CTLD_PORT (default 16817); slurmd on INFGAN_SLURM_SLURMD_PORT (default 16818)
#     inside the namespaces only. Different ports from a stock SLURM, so a system one is not hit.
#   - Both slurmds share the host's file system and PID namespace: spool, pid and log files carry
#     the node name (%n); proctrack/linuxproc follows process trees, which works across them.
#
# State: WORKDIR/state lists, one per line and in creation order, what `up` created:
#   "bridge NAME", "netns NAME", "veth NAME", "pid ROLE PID". `down` undoes exactly those, in reverse:
#   a process only when /proc/PID/cmdline still names WORKDIR (never a recycled pid), anything still
#   running inside one of its namespaces (job steps left behind), then links and namespaces by name,
#   and only the ones listed. `up` refuses to start over names it did not create.
#
# Environment (all optional): INFGAN_SLURM_WORKDIR, INFGAN_SLURM_TIMEOUT (60),
# INFGAN_SLURM_FIRST_JOB_ID (1: a fresh WORKDIR numbers its jobs from here; names such as
# /tmp/ray-<job id>-<node> then differ between runs),
# INFGAN_SLURM_KEEP_ON_FAIL (0), INFGAN_SLURM_CTLD_PORT (16817), INFGAN_SLURM_SLURMD_PORT (16818).
set -euo pipefail

PREFIX=infgan
BRIDGE=$PREFIX-br0
NET=10.231.0
HOST_IP=$NET.1
CTL_NAME=$PREFIX-ctl
NODES=(node1 node2)
declare -A NODE_IP=([node1]=$NET.11 [node2]=$NET.12)
CLUSTER=infgan-test
CTLD_PORT=${INFGAN_SLURM_CTLD_PORT:-16817}
SLURMD_PORT=${INFGAN_SLURM_SLURMD_PORT:-16818}
TIMEOUT=${INFGAN_SLURM_TIMEOUT:-60}
FIRST_JOB_ID=${INFGAN_SLURM_FIRST_JOB_ID:-1}

log() { echo "harness: $*" >&2; }
die() {
    echo "harness: error: $*" >&2
    exit 1
}

usage() {
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

netns_name() { echo "$PREFIX-$1"; }
veth_name() { echo "$PREFIX-${1}h"; }

set_workdir() {
    WORKDIR=${1:-${INFGAN_SLURM_WORKDIR:-/tmp/infgan-slurm}}
    mkdir -p "$WORKDIR"
    WORKDIR=$(cd "$WORKDIR" && pwd -P)
    STATE=$WORKDIR/state
    CONF=$WORKDIR/etc/slurm.conf
    MUNGE_SOCKET=$WORKDIR/munge/munge.socket
}

# One `up`/`down` at a time per WORKDIR. The daemons are started with fd 9 closed: they must not
# inherit the lock.
lock() {
    exec 9>"$WORKDIR/.lock"
    flock -w 120 9 || die "another harness command holds $WORKDIR/.lock"
}

record() { echo "$*" >>"$STATE"; }

# Whether pid $1 is alive and its command line names WORKDIR (so it is one of ours).
ours() {
    local pid=$1 cmd
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    [[ $cmd == *"$WORKDIR"* ]]
}

# Wait up to $2 seconds (tenths allowed) for pid $1 to go away.
wait_gone() {
    local pid=$1 n
    n=$(awk -v s="$2" 'BEGIN { print int(s * 10) }')
    while ((n-- > 0)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    ! kill -0 "$pid" 2>/dev/null
}

stop_pid() {
    local role=$1 pid=$2
    if ! ours "$pid"; then
        return 0
    fi
    log "stopping $role (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" 10; then
        log "$role (pid $pid) ignored TERM for 10 s: KILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 5 || log "warning: $role (pid $pid) still there"
    fi
}

# Every process still inside network namespace $1 (job steps, slurmstepd): TERM, then KILL.
kill_netns_pids() {
    local ns=$1 pids pid n
    [[ -e /run/netns/$ns ]] || return 0
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -n $pids ]] || return 0
    log "stopping what is left in $ns: ${pids//$'\n'/ }"
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for ((n = 0; n < 50; n++)); do
        [[ -z $(ip netns pids "$ns" 2>/dev/null) ]] && return 0
        sleep 0.1
    done
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    # shellcheck disable=SC2086
    [[ -z $pids ]] || kill -KILL $pids 2>/dev/null || true
    for ((n = 0; n < 50; n++)); do
        [[ -z $(ip netns pids "$ns" 2>/dev/null) ]] && return 0
        sleep 0.1
    done
    log "warning: processes left in $ns: $(ip netns pids "$ns" | tr '\n' ' ')"
}

link_exists() { ip link show dev "$1" >/dev/null 2>&1; }

# --- up -----------------------------------------------------------------------------------------
write_conf() {
    mkdir -p "$WORKDIR/etc" "$WORKDIR/log" "$WORKDIR/run" "$WORKDIR/spool/ctld"
    cat >"$CONF" <<EOF
# Written by tests/slurm/harness.sh up: a two-node test cluster in network namespaces.
ClusterName=$CLUSTER
SlurmctldHost=$CTL_NAME($HOST_IP)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$WORKDIR/spool/ctld
SlurmdSpoolDir=$WORKDIR/spool/slurmd-%n
SlurmctldPidFile=$WORKDIR/run/slurmctld.pid
SlurmdPidFile=$WORKDIR/run/slurmd-%n.pid
SlurmctldLogFile=$WORKDIR/log/slurmctld.log
SlurmdLogFile=$WORKDIR/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$WORKDIR/etc/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
ReturnToService=2
SlurmctldTimeout=10
SlurmdTimeout=30
MessageTimeout=5
TCPTimeout=2
InactiveLimit=0
KillWait=5
WaitTime=0
MinJobAge=300
FirstJobId=$FIRST_JOB_ID
UnkillableStepTimeout=30
SchedulerParameters=sched_interval=5
EOF
    for node in "${NODES[@]}"; do
        echo "NodeName=$node NodeAddr=${NODE_IP[$node]} NodeHostname=$node CPUs=2 RealMemory=1024 State=UNKNOWN" >>"$CONF"
    done
    echo "PartitionName=debug Nodes=$(
        IFS=,
        echo "${NODES[*]}"
    ) Default=YES MaxTime=INFINITE State=UP" >>"$CONF"
    # Naming the plugin spares slurmd the autodetection that needs a cgroup mount (see the header).
    cat >"$WORKDIR/etc/cgroup.conf" <<EOF
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
ConstrainCores=no
ConstrainRAMSpace=no
ConstrainDevices=no
EOF
    : >"$WORKDIR/etc/plugstack.conf"
    {
        echo "127.0.0.1 localhost"
        echo "$HOST_IP $CTL_NAME"
        for node in "${NODES[@]}"; do echo "${NODE_IP[$node]} $node"; done
    } >"$WORKDIR/etc/hosts"
    {
        echo "export SLURM_CONF=$CONF"
        echo "export INFGAN_SLURM_WORKDIR=$WORKDIR"
    } >"$WORKDIR/env.sh"
}

net_up() {
    local node ns veth
    ip route show | awk -v net="$NET." 'index($1, net) == 1 { bad = 1 } END { exit bad }' ||
        die "the host already routes $NET.0/24: $(ip route show | grep -F "$NET." | head -1)"
    for name in "$BRIDGE" $(for node in "${NODES[@]}"; do veth_name "$node"; done); do
        ! link_exists "$name" || die "link $name exists and was not created by this harness (WORKDIR $WORKDIR)"
    done
    for node in "${NODES[@]}"; do
        ns=$(netns_name "$node")
        [[ ! -e /run/netns/$ns ]] || die "network namespace $ns exists and was not created by this harness"
    done

    ip link add "$BRIDGE" type bridge
    record bridge "$BRIDGE"
    ip addr add "$HOST_IP/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    for node in "${NODES[@]}"; do
        ns=$(netns_name "$node")
        veth=$(veth_name "$node")
        ip netns add "$ns"
        record netns "$ns"
        ip link add "$veth" type veth peer name "${veth%h}n"
        record veth "$veth"
        ip link set "${veth%h}n" netns "$ns"
        ip link set "$veth" master "$BRIDGE" up
        ip -n "$ns" link set lo up
        ip -n "$ns" link set "${veth%h}n" name eth0
        ip -n "$ns" addr add "${NODE_IP[$node]}/24" dev eth0
        ip -n "$ns" link set eth0 up
    done
}

munge_up() {
    local dir=$WORKDIR/munge pid n
    mkdir -p "$dir"
    chmod 0755 "$dir"
    if [[ ! -s $dir/munge.key ]]; then
        log "creating munge key $dir/munge.key"
        (umask 077 && dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 status=none)
    fi
    chmod 0600 "$dir/munge.key"
    setsid munged --foreground --force --key-file="$dir/munge.key" --socket="$MUNGE_SOCKET" \
        --pid-file="$dir/munged.pid" --log-file="$WORKDIR/log/munged.log" --seed-file="$dir/munged.seed" \
        9>&- </dev/null >>"$WORKDIR/log/munged.out" 2>&1 &
    pid=$!
    record pid munged "$pid"
    for ((n = 0; n < 100; n++)); do
        if munge -n --socket="$MUNGE_SOCKET" 2>/dev/null | unmunge --socket="$MUNGE_SOCKET" >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$WORKDIR/log/munged.out" "$WORKDIR/log/munged.log" >&2 2>/dev/null || true
    die "munged did not come up"
}

daemons_up() {
    local node ns pid
    rm -rf "$WORKDIR/spool/ctld"/* "$WORKDIR"/spool/slurmd-*
    setsid unshare --uts sh -c "hostname $CTL_NAME; exec slurmctld -D -i -f '$CONF'" \
        9>&- </dev/null >>"$WORKDIR/log/slurmctld.out" 2>&1 &
    pid=$!
    record pid slurmctld "$pid"
    for node in "${NODES[@]}"; do
        ns=$(netns_name "$node")
        mkdir -p "$WORKDIR/spool/slurmd-$node"
        setsid nsenter --net="/run/netns/$ns" unshare --uts --mount sh -c \
            "hostname $node && mount --bind '$WORKDIR/etc/hosts' /etc/hosts && exec slurmd -D -N $node -f '$CONF'" \
            9>&- </dev/null >>"$WORKDIR/log/slurmd-$node.out" 2>&1 &
        pid=$!
        record pid "slurmd-$node" "$pid"
    done
}

wait_idle() {
    local start=$SECONDS states role pid
    while :; do
        states=$(SLURM_CONF=$CONF sinfo -h -N -p debug -o '%N %T' 2>/dev/null | sort -u | paste -sd, || true)
        if [[ $(tr , '\n' <<<"$states" | grep -c ' idle$' || true) -eq ${#NODES[@]} ]]; then
            return 0
        fi
        while read -r _ role pid; do
            ours "$pid" || {
                log "$role (pid $pid) exited during start-up"
                return 1
            }
        done < <(grep '^pid ' "$STATE")
        if ((SECONDS - start >= TIMEOUT)); then
            log "nodes not idle after $TIMEOUT s; sinfo says: ${states:-nothing (slurmctld not answering)}"
            return 1
        fi
        sleep 0.5
    done
}

show_logs() {
    local f
    for f in "$WORKDIR"/log/*; do
        [[ -s $f ]] || continue
        echo "----- tail $f" >&2
        tail -n 15 "$f" >&2
    done
}

up_failed() {
    local rc=$?
    trap - EXIT INT TERM HUP
    ((rc != 0)) || return 0
    show_logs
    if [[ ${INFGAN_SLURM_KEEP_ON_FAIL:-0} == 1 ]]; then
        log "up failed; left as it is for a look: '$0 down $WORKDIR' removes it"
    else
        log "up failed; taking down what was started"
        down_locked || true
    fi
    exit "$rc"
}

cmd_up() {
    local t0=$SECONDS
    [[ $EUID -eq 0 ]] || die "needs root (network namespaces, bridge, slurmd)"
    for c in ip nsenter unshare setsid flock munged munge slurmctld slurmd sinfo; do
        command -v "$c" >/dev/null || die "$c not found (apt-get install -y --no-install-recommends munge slurmctld slurmd slurm-client)"
    done
    lock
    if [[ -s $STATE ]]; then
        die "$WORKDIR already has harness state ($STATE): run '$0 down $WORKDIR' first"
    fi
    : >"$STATE"
    # From here on any failure (set -e, die, ^C) takes down what was started.
    trap up_failed EXIT
    trap 'exit 130' INT TERM HUP
    write_conf
    net_up
    munge_up
    daemons_up
    wait_idle || exit 1
    trap - EXIT INT TERM HUP
    log "up in $((SECONDS - t0)) s: $(SLURM_CONF=$CONF sinfo -h -N -o '%N=%T' | tr '\n' ' ')"
    log "clients need: source $WORKDIR/env.sh"
    cat "$WORKDIR/env.sh"
}

# --- down ---------------------------------------------------------------------------------------
# Undo one recorded item (KIND NAME VALUE) if it belongs to PHASE.
undo() {
    local phase=$1 kind=$2 name=$3 value=$4
    case $phase:$kind in
        slurmctld:pid) [[ $name == slurmctld ]] && stop_pid "$name" "$value" ;;
        slurmd:pid) [[ $name == slurmd-* ]] && stop_pid "$name" "$value" ;;
        leftovers:netns) kill_netns_pids "$name" ;;
        munged:pid) [[ $name == munged ]] && stop_pid "$name" "$value" ;;
        links:veth | links:bridge)
            if link_exists "$name"; then
                log "deleting $kind $name"
                ip link del "$name" || log "warning: could not delete $name"
            fi
            ;;
        links:netns)
            if [[ -e /run/netns/$name ]]; then
                log "deleting netns $name"
                ip netns del "$name" || log "warning: could not delete netns $name"
            fi
            ;;
    esac
    return 0
}

down_locked() {
    local kind name value lines i
    [[ -f $STATE ]] || {
        log "nothing to take down in $WORKDIR"
        return 0
    }
    mapfile -t lines <"$STATE"
    # Processes first (slurmctld, then the slurmds, whatever they left, munged last), then links.
    local phase
    for phase in slurmctld slurmd leftovers munged links; do
        for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
            read -r kind name value <<<"${lines[i]}"
            undo "$phase" "$kind" "$name" "$value"
        done
    done
    rm -f "$STATE" "$WORKDIR/env.sh"
    log "down ($WORKDIR; logs kept in $WORKDIR/log)"
}

cmd_down() {
    lock
    down_locked
}

# --- status -------------------------------------------------------------------------------------
cmd_status() {
    local kind name value ok=0
    if [[ ! -s $STATE ]]; then
        echo "down (no state in $WORKDIR)"
        return 1
    fi
    echo "WORKDIR=$WORKDIR"
    echo "SLURM_CONF=$CONF"
    while read -r kind name value; do
        case $kind in
        pid)
            if ours "$value"; then echo "  $name pid $value running"; else
                echo "  $name pid $value NOT running"
                ok=1
            fi
            ;;
        netns)
            if [[ -e /run/netns/$name ]]; then echo "  netns $name present"; else
                echo "  netns $name MISSING"
                ok=1
            fi
            ;;
        veth | bridge)
            if link_exists "$name"; then echo "  $kind $name present"; else
                echo "  $kind $name MISSING"
                ok=1
            fi
            ;;
        esac
    done <"$STATE"
    if [[ $ok == 0 ]]; then
        SLURM_CONF=$CONF sinfo -N -o '%N %T %C %P' 2>&1 | sed 's/^/  /' || ok=1
    fi
    return $ok
}

main() {
    local cmd=${1:-}
    (($# >= 1)) && shift
    (($# <= 1)) || usage
    case $cmd in
    up)
        set_workdir "${1:-}"
        cmd_up
        ;;
    down)
        set_workdir "${1:-}"
        cmd_down
        ;;
    status)
        set_workdir "${1:-}"
        cmd_status
        ;;
    *) usage ;;
    esac
}

main "$@"
