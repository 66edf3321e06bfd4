#!/usr/bin/env bash
# Stop the Slurm daemons (and munged) that cluster/slurm/up.sh started; cancel their jobs
# first. What it did not start (a machine's own Slurm) is left alone.
#   bash cluster/slurm/down.sh
set -euo pipefail
WORK=${MNISTDIST_SLURM_WORK:-/tmp/mnistdist-slurm}
PATH=$PATH:/usr/sbin:/sbin
if grep -qF "# written by mnistdist cluster/slurm/up.sh" /etc/slurm/slurm.conf 2>/dev/null; then
    scancel --user root 2>/dev/null || true
fi
for name in slurmd slurmctld munged; do
    pidfile=$WORK/$name.pid
    [ -f "$pidfile" ] || continue
    pid=$(tr -dc '0-9' <"$pidfile")
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
        kill "$pid"
        for _ in $(seq 1 20); do [ -d "/proc/$pid" ] || break; sleep 0.5; done
        echo "stopped $name $pid"
    fi
    rm -f "$pidfile"
done
