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
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$f"
done
echo "down.sh: stopped ${#pidfiles[@]} processes"
