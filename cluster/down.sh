#!/usr/bin/env bash
# Stop the processes cluster/up.sh started (workers first, then the scheduler).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
run="${MNISTDIST_CLUSTER_RUN:-$here/run}"
shopt -s nullglob
pidfiles=("$run"/worker-*.pid "$run"/scheduler.pid)
for f in "${pidfiles[@]}"; do
    kill -TERM "$(cat "$f")" 2>/dev/null || true
done
for f in "${pidfiles[@]}"; do
    pid="$(cat "$f")"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -KILL "$pid" 2>/dev/null; then
        # SIGKILL is delivered asynchronously: return only once the process is gone.
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$f"
done
echo "down.sh: stopped ${#pidfiles[@]} processes"
