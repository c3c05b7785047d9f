#!/usr/bin/env bash
# Start or stop a real single-node Slurm cluster on this machine, for the
# tests of the `snakemake --profile slurm` path.
#
#   bash .ci/slurm.sh start   # install (Debian packages) if needed, configure, start
#   bash .ci/slurm.sh stop    # kill each daemon by the PID in its pid file
#
# Loopback only: every daemon is bound to 127.0.0.1
# (CommunicationParameters=NoCtldInAddrAny,NoInAddrAny); the node is named
# localhost. Two fake GPUs (/dev/fakegpu0-1, made with mknod) are declared as
# gres so that GPU requests schedule. No accounting daemon runs, so the
# Snakemake profile polls job states with squeue. Needs root.
set -euo pipefail

RUN=/run/generain-slurm
PIDS=("$RUN/slurmctld.pid" "$RUN/slurmd.pid" /run/munge/munged.pid)

stop() {
    local pidfile pid
    for pidfile in "${PIDS[@]}"; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    done
    echo "slurm: stopped"
}

install() {
    local missing=()
    for pair in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "slurm: installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

start() {
    install
    stop >/dev/null
    mkdir -p "$RUN" /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /etc/munge
    # munge: a fresh key, daemon as the munge user
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
    chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done

    # two fake GPUs (character devices; nothing opens them)
    for i in 0 1; do [ -e /dev/fakegpu$i ] || mknod /dev/fakegpu$i c 195 $i; done

    local cpus mem
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    cat > /etc/slurm/slurm.conf <<EOF
# Single-node test cluster written by .ci/slurm.sh (loopback only).
ClusterName=generain-ci
SlurmctldHost=localhost(127.0.0.1)
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
AuthType=auth/munge
SlurmUser=root
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=7200
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    cat > /etc/slurm/gres.conf <<EOF
NodeName=localhost Name=gpu File=/dev/fakegpu[0-1]
EOF
    /usr/sbin/slurmctld -i
    /usr/sbin/slurmd -N localhost
    for _ in $(seq 100); do
        if sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            echo "slurm: up ($(sinfo -h -N -o '%N %T %C %G'))"
            return 0
        fi
        sleep 0.2
    done
    echo "slurm: node did not become idle; logs:" >&2
    tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
    return 1
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
