#!/usr/bin/env bash
# Stop the local SLURM cluster started by setup_local_cluster.sh: slurmd, slurmctld, slurmdbd, MariaDB
# and munged, in that order (the reverse of start). Configs, job state and the accounting database are
# kept, so setup_local_cluster.sh brings the same cluster back. Safe to run when nothing is running.
#
# Usage: sudo launchers/slurm/stop_local_cluster.sh [--quiet]
set -euo pipefail

quiet=0
[[ ${1:-} == --quiet ]] && quiet=1
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

stop_daemon slurmd /usr/sbin/slurmd /run/slurm/slurmd.pid
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
exit 0
