#!/usr/bin/env bash
# Run a Dask scheduler with mnistdist's configuration (cluster/dask.yaml).
# docker-compose and cluster/up.sh both start the scheduler through this.
#   MNISTDIST_SCHEDULER_HOST       interface to listen on (default 127.0.0.1)
#   MNISTDIST_SCHEDULER_PORT       scheduler port (default 8786)
#   MNISTDIST_DASHBOARD_ADDRESS    dashboard host:port (default 127.0.0.1:8787)
#   MNISTDIST_TLS_CA_FILE, MNISTDIST_TLS_CERT, MNISTDIST_TLS_KEY
#                                  certificate paths: when set, the scheduler
#                                  speaks TLS only (tls://) and plain TCP is refused
# Further arguments go to `dask scheduler`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export DASK_CONFIG="${DASK_CONFIG:-$here}"
# shellcheck source=cluster/tls.sh
. "$here/tls.sh"
exec dask scheduler \
    --host "${MNISTDIST_SCHEDULER_HOST:-127.0.0.1}" \
    --port "${MNISTDIST_SCHEDULER_PORT:-8786}" \
    --dashboard-address "${MNISTDIST_DASHBOARD_ADDRESS:-127.0.0.1:8787}" \
    "${tls_args[@]}" \
    "$@"
