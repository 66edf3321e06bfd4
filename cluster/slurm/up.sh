#!/usr/bin/env bash
# Bring up a single-node Slurm on this machine (Debian, root): munge, slurmctld and slurmd,
# one partition holding this host with its real CPUs and memory. For trying and testing
# `mnistdist --cluster` with dask-jobqueue's SLURMCluster (tests/test_slurm.py, .ci/run).
# Idempotent: what is already there (the packages, the munge key, a slurm.conf, daemons that
# answer) is detected and kept, so a second run takes a second.
#
#   bash cluster/slurm/up.sh            (as root)
#   sinfo; squeue                       (the node is idle once it says so)
#   bash cluster/slurm/down.sh          (stops the daemons this script started)
#
# What it does
#   1. apt-get install slurm-wlm munge (slurmctld, slurmd, the client commands), if missing.
#   2. A munge key (/etc/munge/munge.key) if there is none; munged started unless it answers.
#   3. /etc/slurm/slurm.conf for this host, unless one exists that this script did not write
#      (a machine with its own Slurm keeps it): NodeName is `hostname -s` at 127.0.0.1 with
#      its processors and the memory free shows less 1 GiB; partition `debug`; no cgroups, no
#      accounting database (finished jobs stay in `scontrol show job` for MinJobAge).
#   4. slurmctld and slurmd started unless they answer; the node resumed if it is down.
# Environment
#   MNISTDIST_SLURM_WORK   pid files and logs (default /tmp/mnistdist-slurm)
set -euo pipefail

WORK=${MNISTDIST_SLURM_WORK:-/tmp/mnistdist-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by mnistdist cluster/slurm/up.sh"
PARTITION=debug

log() { printf '[slurm-up] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts daemons)"
mkdir -p "$WORK"
exec 9>"$WORK/.lock"
flock -w 300 9 || die "another run holds $WORK/.lock"

# ---------------------------------------------------------------- 1. packages
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
    ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
    log "installing slurm-wlm munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q slurm-wlm munge >&2
fi
PATH=$PATH:/usr/sbin:/sbin

# ---------------------------------------------------------------- 2. munge
if [ ! -s /etc/munge/munge.key ]; then
    log "making a munge key"
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null; then mungekey --create --keyfile /etc/munge/munge.key
    else dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; fi
fi
chown munge:munge /etc/munge/munge.key 2>/dev/null || true
chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "munged answers"
else
    log "starting munged"
    if id munge >/dev/null 2>&1; then runuser -u munge -- munged 9>&-
    else munged --force 9>&-; fi
    for _ in $(seq 1 20); do
        munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.5
    done
    munge -n </dev/null | unmunge >/dev/null || die "munged does not answer"
    cp /run/munge/munged.pid "$WORK/munged.pid" 2>/dev/null || true  # down.sh stops it
fi

# ---------------------------------------------------------------- 3. slurm.conf
host=$(hostname -s)
# The machine's processors (nproc would follow OMP_NUM_THREADS, which Dask's workers set),
# and its memory in whole GiB less one, so that small changes in what free reports do not
# rewrite the file and restart the daemons.
cpus=$(getconf _NPROCESSORS_ONLN)
memory=$(( ($(free -m | awk '/^Mem:/ {print $2}') / 1024 - 1) * 1024 ))
[ "$memory" -ge 1024 ] || memory=1024
if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    log "keeping $CONF (not written by this script)"
else
    mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
    cat >"$CONF.new" <<EOF
$MARK: a single-node Slurm for trying mnistdist --cluster
ClusterName=mnistdist
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=600
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldTimeout=60
SlurmdTimeout=60
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    if [ -f "$CONF" ] && cmp -s "$CONF" "$CONF.new"; then
        rm -f "$CONF.new"
    else
        mv -f "$CONF.new" "$CONF"
        log "wrote $CONF: node $host, $cpus CPUs, ${memory} MiB, partition $PARTITION"
        changed=1
    fi
fi

# ---------------------------------------------------------------- 4. daemons
running() { # pidfile comm
    local pid
    [ -f "$1" ] || return 1
    pid=$(tr -dc '0-9' <"$1")
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}
for daemon in slurmctld slurmd; do
    if running "$WORK/$daemon.pid" "$daemon"; then
        if [ "${changed:-0}" = 1 ]; then
            log "restarting $daemon for the new $CONF"
            kill "$(cat "$WORK/$daemon.pid")"
            for _ in $(seq 1 20); do running "$WORK/$daemon.pid" "$daemon" || break; sleep 0.5; done
        else
            log "$daemon $(cat "$WORK/$daemon.pid") is running"
            continue
        fi
    fi
    log "starting $daemon (log $WORK/$daemon.log)"
    # setsid: the daemons outlive this script and any terminal's Ctrl-C; fd 9 is the lock.
    setsid "$daemon" 9>&- </dev/null >>"$WORK/$daemon.start.log" 2>&1
done

answers() { timeout 10 sinfo -h >/dev/null 2>&1; }
for _ in $(seq 1 60); do answers && break; sleep 1; done
answers || { tail -n 20 "$WORK/slurmctld.log" >&2 || true; die "slurmctld does not answer"; }
for _ in $(seq 1 60); do
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null | head -n 1)
    case $state in
        idle*|mixed*|allocated*) break ;;
        down*|drain*|fail*) scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 1
done
case $state in
    idle*|mixed*|allocated*) ;;
    *) tail -n 20 "$WORK/slurmd.log" >&2 || true; die "node $host is '$state', not idle" ;;
esac
log "Slurm is up: node $host ($state), partition $PARTITION"
sinfo
