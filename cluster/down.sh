#!/usr/bin/env bash
# Stop the processes cluster/up.sh started (workers first, then the scheduler).
# A pid is signalled only while it is still the process up.sh started (its start
# time, recorded beside the pid): a pid now held by another process is left alone.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
run="${MNISTDIST_CLUSTER_RUN:-$here/run}"
# shellcheck source=cluster/pids.sh
. "$here/pids.sh"
shopt -s nullglob
names=()
for f in "$run"/worker-*.pid "$run"/scheduler.pid; do
    name="$(basename "$f" .pid)"
    if ours "$name"; then
        kill -TERM "$(cat "$f")" 2>/dev/null || true
        names+=("$name")
    else
        echo "down.sh: $name (pid $(cat "$f")) is gone or is no longer the process up.sh started: left alone" >&2
    fi
done
for name in "${names[@]}"; do
    for _ in $(seq 1 50); do ours "$name" || break; sleep 0.2; done
    if ours "$name" && kill -KILL "$(cat "$run/$name.pid")" 2>/dev/null; then
        # SIGKILL is delivered asynchronously: return only once the process is gone.
        for _ in $(seq 1 50); do ours "$name" || break; sleep 0.1; done
    fi
done
for f in "$run"/worker-*.pid "$run"/scheduler.pid; do
    rm -f "$f" "${f%.pid}.start"
done
echo "down.sh: stopped ${#names[@]} processes"
