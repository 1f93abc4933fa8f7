#!/usr/bin/env bash
# Bring up a real single-node SLURM cluster, with accounting, on this machine.
#
# What it does (every step is safe to repeat; a second run restarts the daemons cleanly):
#   1. installs Debian's slurm-wlm, slurmdbd, munge and mariadb-server with apt-get (non-interactive;
#      skipped when they are already installed),
#   2. writes /etc/slurm/{slurm.conf,gres.conf,slurmdbd.conf} and a small MariaDB snippet,
#   3. stops whatever of the daemons is running (stop_local_cluster.sh), then starts
#      munged -> MariaDB -> slurmdbd -> (registers cluster/account) -> slurmctld -> slurmd,
#   4. waits, with a bound, until `sinfo` shows the node idle and `sacct` answers.
#
# Works without systemd and without cgroups (linuxproc process tracking, no task plugin), which is what
# containers and CI machines give us. The node advertises 4 fake GPUs through GRES (symlinks to
# /dev/null), so `--gres=gpu:4` jobs are granted and see CUDA_VISIBLE_DEVICES=0,1,2,3.
#
# With --nodes N (N >= 2) the cluster has N compute nodes n1..nN on this one machine, each a slurmd in a network
# namespace of its own (openrs-n<i>, address 10.88.0.1<i> on a bridge openrs-br0 whose host side, 10.88.0.1, is the
# controller's), with its own host name and an /etc/hosts that names every node: a job's processes on n1 and n2
# reach each other only over that network, as on real nodes (127.0.0.1 is each node's own). The node side of every
# veth is called openrs0, so GLOO_SOCKET_IFNAME/NCCL_SOCKET_IFNAME=openrs0 names it on every node.
#
# Knobs (environment variables, all optional):
#   OPENRS_SLURM_CPUS          CPUs the node advertises (default: max(real CPUs, 16), i.e. oversubscribed)
#   OPENRS_SLURM_GPUS          fake GPUs on the node (default 4)
#   OPENRS_SLURM_MEM_HEADROOM_MB  memory kept back from SLURM (default: max(1024, 15% of RAM))
#   OPENRS_SLURM_WAIT_S        how long to wait for the cluster to answer (default 120)
#   OPENRS_SLURM_SKIP_APT=1    never call apt-get (fail if the packages are missing)
#
# Usage: sudo launchers/slurm/setup_local_cluster.sh [--nodes N]     (must run as root)
set -euo pipefail

NODES=1
while (($#)); do
    case $1 in
    --nodes)
        NODES=${2:-}
        shift 2
        ;;
    --nodes=*)
        NODES=${1#--nodes=}
        shift
        ;;
    *)
        printf '[slurm-setup] ERROR: unknown argument %s (valid: --nodes N)\n' "$1" >&2
        exit 2
        ;;
    esac
done
[[ ${NODES} =~ ^[1-9]$ ]] || {
    printf '[slurm-setup] ERROR: --nodes %s: a number of nodes from 1 to 9\n' "${NODES}" >&2
    exit 2
}

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf '[slurm-setup %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() {
    printf '[slurm-setup] ERROR: %s\n' "$*" >&2
    exit 1
}

if [[ ${EUID} -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo --preserve-env=OPENRS_SLURM_CPUS,OPENRS_SLURM_GPUS,OPENRS_SLURM_MEM_HEADROOM_MB,OPENRS_SLURM_WAIT_S,OPENRS_SLURM_SKIP_APT \
            bash "${BASH_SOURCE[0]}" --nodes "${NODES}"
    fi
    die "must run as root (it installs packages and starts system daemons)"
fi

START_TS=${SECONDS}
CLUSTER=openrs
ACCOUNT=openrs
PARTITION=debug
CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm
FAKE_GPU_DIR=/var/lib/slurm/fake-gpus
WAIT_S=${OPENRS_SLURM_WAIT_S:-120}
PACKAGES=(slurm-wlm slurmdbd munge mariadb-server)

# ---------------------------------------------------------------------------------------------------
# 1. Packages
# ---------------------------------------------------------------------------------------------------
missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("${pkg}")
    fi
done
if ((${#missing[@]})); then
    [[ ${OPENRS_SLURM_SKIP_APT:-0} == 1 ]] && die "packages missing and OPENRS_SLURM_SKIP_APT=1: ${missing[*]}"
    log "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    # Package scripts would try to start the daemons through init scripts; we start them ourselves, with
    # our configs. A policy-rc.d that answers 101 ("action forbidden") stops that. Keep an existing one.
    created_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    trap '[[ ${created_policy} == 1 ]] && rm -f /usr/sbin/policy-rc.d' EXIT
    apt-get update -qq </dev/null || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" </dev/null >/tmp/openrs-slurm-apt.log 2>&1 ||
        { tail -n 30 /tmp/openrs-slurm-apt.log >&2; die "apt-get install failed (full log: /tmp/openrs-slurm-apt.log)"; }
    if [[ ${created_policy} == 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
    trap - EXIT
    log "packages installed ($((SECONDS - START_TS)) s)"
else
    log "packages already installed"
fi
for bin in slurmctld slurmd slurmdbd munged mysqld_safe sacctmgr sinfo sacct; do
    command -v "${bin}" >/dev/null 2>&1 || [[ -x /usr/sbin/${bin} ]] || die "${bin} not found after install"
done

# ---------------------------------------------------------------------------------------------------
# 2. Stop anything running from an earlier run, so every daemon below starts with the new configs.
# ---------------------------------------------------------------------------------------------------
bash "${HERE}/stop_local_cluster.sh" --quiet

# ---------------------------------------------------------------------------------------------------
# 3. Node description: this machine's name, CPUs and memory.
# ---------------------------------------------------------------------------------------------------
NODE="$(hostname -s 2>/dev/null || hostname)"
[[ -n ${NODE} ]] || NODE=localhost
REAL_CPUS="$(nproc --all)"
CPUS=${OPENRS_SLURM_CPUS:-$((REAL_CPUS > 16 ? REAL_CPUS : 16))}
GPUS=${OPENRS_SLURM_GPUS:-4}
MEM_MB=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))
HEADROOM_MB=${OPENRS_SLURM_MEM_HEADROOM_MB:-$((MEM_MB * 15 / 100 > 1024 ? MEM_MB * 15 / 100 : 1024))}
REAL_MEM_MB=$((MEM_MB - HEADROOM_MB))
((REAL_MEM_MB > 512)) || die "not enough memory for a node: ${MEM_MB} MB total, ${HEADROOM_MB} MB headroom"
# Memory a job gets per CPU when it does not ask: a full node's memory spread over its CPUs, so a
# default job never takes the whole node and several jobs run side by side.
DEF_MEM_PER_CPU=$((REAL_MEM_MB / CPUS))
log "node ${NODE}: ${CPUS} CPUs advertised (${REAL_CPUS} real), ${REAL_MEM_MB} MB of ${MEM_MB} MB, ${GPUS} fake GPUs"

# The nodes: this machine itself, or n1..nN each in a network namespace of its own (--nodes N).
BRIDGE=openrs-br0
CTL_ADDR=127.0.0.1
NODE_NAMES=("${NODE}")
HOSTS_FILE=/etc/slurm/openrs-hosts
if ((NODES > 1)); then
    CTL_ADDR=10.88.0.1
    NODE_NAMES=()
    for ((i = 1; i <= NODES; i++)); do NODE_NAMES+=("n${i}"); done
fi
node_addr() { if ((NODES > 1)); then echo "10.88.0.1${1#n}"; else echo 127.0.0.1; fi; }
node_port() { if ((NODES > 1)); then echo $((6817 + ${1#n})); else echo 6818; fi; }

# A bridge on this machine (the controller's side) and, per node, a namespace whose veth end is called openrs0.
# Kept across runs (setup is idempotent); stop_local_cluster.sh --network removes them.
make_network() {
    if ! ip link show "${BRIDGE}" >/dev/null 2>&1; then
        ip link add "${BRIDGE}" type bridge
        ip addr add "${CTL_ADDR}/24" dev "${BRIDGE}"
    fi
    ip link set "${BRIDGE}" up
    for name in "${NODE_NAMES[@]}"; do
        local ns=openrs-${name} host_end=openrs-v${name#n}
        ip netns list | grep -qw "${ns}" || ip netns add "${ns}"
        if ! ip link show "${host_end}" >/dev/null 2>&1; then
            ip link add "${host_end}" type veth peer name openrs0 netns "${ns}"
            ip -n "${ns}" addr add "$(node_addr "${name}")/24" dev openrs0
        fi
        ip link set "${host_end}" master "${BRIDGE}"
        ip link set "${host_end}" up
        ip -n "${ns}" link set lo up
        ip -n "${ns}" link set openrs0 up
    done
    {
        echo "# Written by launchers/slurm/setup_local_cluster.sh: the /etc/hosts every node's slurmd and jobs see."
        echo "127.0.0.1 localhost"
        echo "${CTL_ADDR} ${NODE}"
        for name in "${NODE_NAMES[@]}"; do echo "$(node_addr "${name}") ${name}"; done
    } >"${HOSTS_FILE}"
}

# ---------------------------------------------------------------------------------------------------
# 4. Configs
# ---------------------------------------------------------------------------------------------------
install -d -m 755 "${CONF_DIR}" "${LOG_DIR}" "${RUN_DIR}" /var/spool/slurmctld /var/spool/slurmd "${FAKE_GPU_DIR}"
for name in "${NODE_NAMES[@]}"; do install -d -m 755 "/var/spool/slurmd/${name}"; done
if ((NODES > 1)); then make_network; fi

# Fake GPU device files. gres/gpu needs a File= per GPU and rejects plain files; symlinks to a character
# device (/dev/null) are accepted. Only their count and order matter: CUDA_VISIBLE_DEVICES is 0..N-1.
rm -f "${FAKE_GPU_DIR}"/gpu*
for ((i = 0; i < GPUS; i++)); do ln -s /dev/null "${FAKE_GPU_DIR}/gpu${i}"; done

cat >"${CONF_DIR}/slurm.conf" <<EOF
# Written by launchers/slurm/setup_local_cluster.sh (openrs); rewritten on every run.
# ${NODES} compute node(s) on this machine (more than one: each in its own network namespace); controller and
# accounting on this machine (${CTL_ADDR}).
ClusterName=${CLUSTER}
SlurmctldHost=${NODE}(${CTL_ADDR})
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# Job credentials expire after 5 s instead of the default 120 s: a requeued job may only start again
# once its old credential has expired, so this is what makes a requeue restart within seconds.
AuthInfo=cred_expire=5
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd/%n
SlurmctldPidFile=${RUN_DIR}/slurmctld.pid
SlurmdPidFile=${RUN_DIR}/slurmd-%n.pid
SlurmctldLogFile=${LOG_DIR}/slurmctld.log
SlurmdLogFile=${LOG_DIR}/slurmd-%n.log
MailProg=/bin/true
MpiDefault=none
ReturnToService=2

# No systemd, no cgroups: track job processes through /proc, bind no tasks.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30

# Schedule on CPUs and memory; run the scheduler every second so new and requeued jobs start at once.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
JobRequeue=1
# Seconds between SIGTERM and SIGKILL when a job is cancelled/requeued. submitit ignores SIGTERM
# (it waits for its USR2), so this is how long a requeue of a submitit job takes to kill it.
KillWait=5
InactiveLimit=0
MinJobAge=300

# Accounting through slurmdbd (MariaDB), so sacct answers as on a real cluster.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
JobCompType=jobcomp/none

# GPUs are fake (see gres.conf). The node advertises ${CPUS} CPUs on ${REAL_CPUS} real cores (slurmd
# takes the configured counts instead of the detected ones: config_overrides), so multi-CPU GPU
# requests are granted and small jobs run side by side.
GresTypes=gpu
SlurmdParameters=config_overrides
$(for name in "${NODE_NAMES[@]}"; do
    echo "NodeName=${name} NodeAddr=$(node_addr "${name}") NodeHostname=${name} Port=$(node_port "${name}") CPUs=${CPUS} RealMemory=${REAL_MEM_MB} Gres=gpu:${GPUS} State=UNKNOWN"
done)
PartitionName=${PARTITION} Nodes=$(IFS=,; echo "${NODE_NAMES[*]}") Default=YES MaxTime=7-00:00:00 DefMemPerCPU=${DEF_MEM_PER_CPU} State=UP
EOF

cat >"${CONF_DIR}/gres.conf" <<EOF
# Written by launchers/slurm/setup_local_cluster.sh: ${GPUS} fake GPUs (symlinks to /dev/null).
AutoDetect=off
$(for name in "${NODE_NAMES[@]}"; do echo "NodeName=${name} Name=gpu File=${FAKE_GPU_DIR}/gpu[0-$((GPUS - 1))]"; done)
EOF
chmod 644 "${CONF_DIR}/slurm.conf" "${CONF_DIR}/gres.conf"

# The database password is made up fresh on every run and only lives in slurmdbd.conf (mode 600).
DB_PASS="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
umask 077
cat >"${CONF_DIR}/slurmdbd.conf" <<EOF
# Written by launchers/slurm/setup_local_cluster.sh; holds the local database password: mode 600.
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=${RUN_DIR}/slurmdbd.pid
LogFile=${LOG_DIR}/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=${DB_PASS}
EOF
umask 022
chown root:root "${CONF_DIR}/slurmdbd.conf"
chmod 600 "${CONF_DIR}/slurmdbd.conf"

# MariaDB: small buffers (this is a test cluster), and the lock timeout SLURM's docs ask for.
cat >/etc/mysql/mariadb.conf.d/90-openrs-slurm.cnf <<'EOF'
# Written by launchers/slurm/setup_local_cluster.sh for slurmdbd.
[mysqld]
innodb_buffer_pool_size = 128M
innodb_lock_wait_timeout = 900
EOF

# Wait up to $1 seconds for the command that follows to succeed.
wait_for() {
    local limit=$1
    shift
    local t0=${SECONDS}
    until "$@" >/dev/null 2>&1; do
        ((SECONDS - t0 < limit)) || return 1
        sleep 0.5
    done
}
show_log() {
    if [[ -f $1 ]]; then
        echo "--- last lines of $1:" >&2
        tail -n 25 "$1" >&2
    fi
    return 0
}

# ---------------------------------------------------------------------------------------------------
# 5. Daemons, in dependency order.
# ---------------------------------------------------------------------------------------------------
# munge: authentication for every SLURM message. The package creates the key; make one if absent.
if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating munge key"
    if command -v mungekey >/dev/null 2>&1; then
        mungekey --create --keyfile=/etc/munge/munge.key --force
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 755 /run/munge
install -d -o munge -g munge -m 700 /var/lib/munge /var/log/munge
runuser -u munge -- /usr/sbin/munged || die "munged did not start (see /var/log/munge/munged.log)"
wait_for 15 bash -c 'munge -n | unmunge' || { show_log /var/log/munge/munged.log; die "munge does not answer"; }
log "munged up"

# MariaDB, without systemd: mysqld_safe in its own session so it outlives this script.
install -d -o mysql -g mysql -m 755 /run/mysqld
install -d -o mysql -g adm -m 2750 /var/log/mysql
if [[ ! -d /var/lib/mysql/mysql ]]; then
    log "initialising MariaDB data dir"
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/tmp/openrs-mariadb-init.log 2>&1 ||
        { tail -n 20 /tmp/openrs-mariadb-init.log >&2; die "mariadb-install-db failed"; }
fi
setsid mysqld_safe --user=mysql --log-error=/var/log/mysql/error.log </dev/null >/dev/null 2>&1 &
wait_for 60 mysqladmin --protocol=socket ping || { show_log /var/log/mysql/error.log; die "MariaDB did not start"; }
log "MariaDB up"
mysql --protocol=socket -u root <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '${DB_PASS}';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
EOF

# slurmdbd: the accounting daemon (needs munged and MariaDB).
slurmdbd || { show_log "${LOG_DIR}/slurmdbd.log"; die "slurmdbd did not start"; }
wait_for 60 sacctmgr -n list cluster || { show_log "${LOG_DIR}/slurmdbd.log"; die "slurmdbd does not answer"; }
log "slurmdbd up"

# Cluster, account and users in the accounting database (added once; later runs find them).
if [[ -z "$(sacctmgr -n -P list cluster "${CLUSTER}" format=cluster)" ]]; then
    sacctmgr -i add cluster "${CLUSTER}" >/dev/null
fi
if [[ -z "$(sacctmgr -n -P list account "${ACCOUNT}" format=account)" ]]; then
    sacctmgr -i add account "${ACCOUNT}" cluster="${CLUSTER}" description="openrs local runs" organization=openrs >/dev/null
fi
for user in root ${SUDO_USER:-}; do
    if [[ -z "$(sacctmgr -n -P list user "${user}" format=user)" ]]; then
        sacctmgr -i add user "${user}" account="${ACCOUNT}" defaultaccount="${ACCOUNT}" cluster="${CLUSTER}" >/dev/null
    fi
done

# slurmctld (controller) and slurmd (the node). Both keep their state across restarts.
slurmctld || { show_log "${LOG_DIR}/slurmctld.log"; die "slurmctld did not start"; }
wait_for 30 scontrol ping || { show_log "${LOG_DIR}/slurmctld.log"; die "slurmctld does not answer"; }
log "slurmctld up"
if ((NODES == 1)); then
    slurmd || { show_log "${LOG_DIR}/slurmd-${NODE}.log"; die "slurmd did not start"; }
else
    # Each node's slurmd in its namespace: its own network (nsenter; `ip netns exec` would remount /sys and slurmd
    # would then fail to detect cgroups), host name and /etc/hosts (a private UTS and mount namespace).
    for name in "${NODE_NAMES[@]}"; do
        nsenter --net="/run/netns/openrs-${name}" unshare --uts --mount --propagation private \
            sh -c "hostname ${name} && mount --bind ${HOSTS_FILE} /etc/hosts && exec slurmd -N ${name}" ||
            { show_log "${LOG_DIR}/slurmd-${name}.log"; die "slurmd of ${name} did not start"; }
    done
fi

# ---------------------------------------------------------------------------------------------------
# 6. Wait until the node is idle (or busy with jobs kept from before) and sacct answers.
# ---------------------------------------------------------------------------------------------------
node_state() { sinfo -h -N -n "$1" -o '%T' 2>/dev/null | head -n 1; }
node_ready() { [[ "$(node_state "$1")" =~ ^(idle|mixed|allocated|completing)$ ]]; }
t0=${SECONDS}
for name in "${NODE_NAMES[@]}"; do
    until node_ready "${name}"; do
        # A node drained or down from an earlier run (e.g. a changed config) is put back into service.
        if [[ "$(node_state "${name}")" =~ ^(drained|draining|down|drain|down\*)$ ]]; then
            scontrol update nodename="${name}" state=resume >/dev/null 2>&1 || true
        fi
        if ((SECONDS - t0 >= WAIT_S)); then
            scontrol show node "${name}" >&2 || true
            show_log "${LOG_DIR}/slurmd-${name}.log"
            show_log "${LOG_DIR}/slurmctld.log"
            die "node ${name} not idle after ${WAIT_S} s (state: $(node_state "${name}"))"
        fi
        sleep 0.5
    done
done
wait_for "${WAIT_S}" sacct -n -X -S now-1hours || { show_log "${LOG_DIR}/slurmdbd.log"; die "sacct does not answer"; }

log "cluster '${CLUSTER}' ready in $((SECONDS - START_TS)) s: partition ${PARTITION}, node(s) ${NODE_NAMES[*]}"
sinfo -o '%P %a %l %D %T %N %c %m %G'
