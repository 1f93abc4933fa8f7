#!/usr/bin/env bash
# Stop the local SLURM cluster started by setup_local_cluster.sh: slurmd, slurmctld, slurmdbd, MariaDB
# and munged, in that order (the reverse of start). Configs, job state and the accounting database are
# kept, so setup_local_cluster.sh brings the same cluster back. Safe to run when nothing is running.
#
# With --network it also removes the namespaces and bridge of a --nodes N cluster (openrs-n<i>, openrs-br0).
#
# Usage: sudo launchers/slurm/stop_local_cluster.sh [--quiet] [--network]
set -euo pipefail

quiet=0
network=0
for arg in "$@"; do
    case ${arg} in
    --quiet) quiet=1 ;;
    --network) network=1 ;;
    *)
        echo "[slurm-stop] ERROR: unknown argument ${arg} (valid: --quiet, --network)" >&2
        exit 2
        ;;
    esac
done
say() { ((quiet)) || printf '[slurm-stop] %s\n' "$*"; }

if [[ ${EUID} -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 && exec sudo bash "${BASH_SOURCE[0]}" "$@"
    echo "[slurm-stop] ERROR: must run as root" >&2
    exit 1
fi

# Stop one daemon: by its pid file when there is one, else every process running that executable.
# SIGTERM first, SIGKILL after 15 s if it is still there. Returns 0 whether or not it was running.
stop_daemon() {
    local name=$1 exe=$2 pidfile=$3
    [[ -x ${exe} ]] || return 0
    local args=(--stop --quiet --exec "${exe}" --retry TERM/15/KILL/5)
    [[ -s ${pidfile} ]] && args+=(--pidfile "${pidfile}")
    if start-stop-daemon "${args[@]}"; then
        say "stopped ${name}"
    fi
    # A pid file can be stale (daemon killed earlier); make sure no instance is left either way.
    start-stop-daemon --stop --quiet --exec "${exe}" --retry TERM/15/KILL/5 && say "stopped ${name}"
    rm -f "${pidfile}"
    return 0
}

# Every node's slurmd (one per node of a --nodes N cluster, each with its own pid file).
stop_daemon slurmd /usr/sbin/slurmd /run/slurm/slurmd.pid
rm -f /run/slurm/slurmd-*.pid
stop_daemon slurmctld /usr/sbin/slurmctld /run/slurm/slurmctld.pid
stop_daemon slurmdbd /usr/sbin/slurmdbd /run/slurm/slurmdbd.pid

# MariaDB: a clean shutdown through the server itself (mysqld_safe then exits too); signals as fallback.
if command -v mysqladmin >/dev/null 2>&1 && mysqladmin --protocol=socket ping >/dev/null 2>&1; then
    mysqladmin --protocol=socket shutdown >/dev/null 2>&1 && say "stopped MariaDB"
fi
# mysqld_safe quits by itself after a clean shutdown; if it is still there, stop it first (it would
# restart a killed server), then any server left.
for _ in $(seq 1 30); do
    pgrep -x mysqld_safe >/dev/null 2>&1 || break
    sleep 0.5
done
start-stop-daemon --stop --quiet --name mysqld_safe --retry TERM/5/KILL/5 >/dev/null 2>&1 || true
stop_daemon mariadbd /usr/sbin/mariadbd /run/mysqld/mysqld.pid

stop_daemon munged /usr/sbin/munged /run/munge/munged.pid

if ((network)); then
    for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^openrs-n[0-9]+$/ {print $1}'); do
        ip netns delete "${ns}" && say "removed namespace ${ns}"
    done
    if ip link show openrs-br0 >/dev/null 2>&1; then ip link delete openrs-br0 && say "removed bridge openrs-br0"; fi
fi
exit 0
