#!/usr/bin/env bash
# Start an mnistdist cluster as processes on this machine: one scheduler and
# N workers (the same topology as docker-compose), in the background.
#   cluster/up.sh [N_WORKERS]          default: one worker per core
# Environment: the variables of scheduler.sh and worker.sh, and
#   MNISTDIST_CLUSTER_RUN    folder for logs and pid files (default cluster/run)
# Stop it with cluster/down.sh. On several machines, run scheduler.sh on one
# and worker.sh tcp://SCHEDULER:8786 on the others (with MNISTDIST_*_HOST set
# to an interface the others reach).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
n="${1:-$(nproc)}"
run="${MNISTDIST_CLUSTER_RUN:-$here/run}"
python="${PYTHON:-python3}"
host="${MNISTDIST_SCHEDULER_HOST:-127.0.0.1}"
# shellcheck source=cluster/tls.sh
. "$here/tls.sh"   # the same test of MNISTDIST_TLS_* as the scheduler's and the workers'
scheme=tcp
[ "${#tls_args[@]}" -gt 0 ] && scheme=tls
address="${scheme}://${host}:${MNISTDIST_SCHEDULER_PORT:-8786}"
mkdir -p "$run"

if [ -f "$run/scheduler.pid" ] && kill -0 "$(cat "$run/scheduler.pid")" 2>/dev/null; then
    echo "up.sh: a cluster from $run is already running (cluster/down.sh stops it)" >&2
    exit 1
fi

nohup "$here/scheduler.sh" >"$run/scheduler.log" 2>&1 &
echo $! >"$run/scheduler.pid"
for i in $(seq 1 "$n"); do
    nohup "$here/worker.sh" "$address" --name "worker-$i" >"$run/worker-$i.log" 2>&1 &
    echo $! >"$run/worker-$i.pid"
done

# Wait until the scheduler answers and every worker has joined.
if ! "$python" - "$address" "$n" <<'PY'
import sys
from mnistdist.runtime import connect  # TLS from MNISTDIST_TLS_*, as every job connects
with connect(sys.argv[1], timeout=30) as client:
    client.wait_for_workers(int(sys.argv[2]), timeout=60)
    print(f"scheduler: {sys.argv[1]}\ndashboard: {client.dashboard_link}")
PY
then
    echo "up.sh: the cluster did not come up; see $run/*.log" >&2
    "$here/down.sh"
    exit 1
fi
echo "workers:   $n (logs and pids in $run)"
echo "use it:    export DASK_SCHEDULER_ADDRESS=$address"
