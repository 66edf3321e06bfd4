#!/usr/bin/env bash
# Run one nanny-managed Dask worker with mnistdist's configuration (cluster/dask.yaml,
# which also limits BLAS to one thread per worker thread).
# docker-compose and cluster/up.sh both start workers through this.
#   $1                          scheduler address (default $DASK_SCHEDULER_ADDRESS or tcp://127.0.0.1:8786)
#   MNISTDIST_WORKER_THREADS    threads per worker (default 1: the neighbour search is BLAS-bound)
#   MNISTDIST_WORKER_MEMORY     memory limit (default 4GiB)
#   MNISTDIST_WORKER_HOST       interface to listen on (default 127.0.0.1)
#   MNISTDIST_WORKER_DASHBOARD_ADDRESS
#                               the worker's HTTP server (metrics, its own dashboard):
#                               host:port, default 127.0.0.1:0 (loopback, a free port)
#   MNISTDIST_TLS_CA_FILE, MNISTDIST_TLS_CERT, MNISTDIST_TLS_KEY
#                               certificate paths: when set, the worker speaks TLS only
# Further arguments go to `dask worker`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export DASK_CONFIG="${DASK_CONFIG:-$here}"
# shellcheck source=cluster/tls.sh
. "$here/tls.sh"
scheduler="${1:-${DASK_SCHEDULER_ADDRESS:-tcp://127.0.0.1:8786}}"
shift || true
exec dask worker "$scheduler" \
    --nworkers 1 \
    --nthreads "${MNISTDIST_WORKER_THREADS:-1}" \
    --memory-limit "${MNISTDIST_WORKER_MEMORY:-4GiB}" \
    --host "${MNISTDIST_WORKER_HOST:-127.0.0.1}" \
    --dashboard-address "${MNISTDIST_WORKER_DASHBOARD_ADDRESS:-127.0.0.1:0}" \
    "${tls_args[@]}" \
    "$@"
