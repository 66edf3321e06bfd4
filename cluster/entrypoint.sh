#!/usr/bin/env bash
# The image's entry point. It starts as root only to pick the user and hand it
# what it must read, then runs the command as that user, never as root unless
# the host user is root.
#  - The job (a /results mount): the owner of /results, so the outputs belong to
#    the host user. When Docker has just created ./results (owned by root), it is
#    first given to the owner of the compose project folder (mounted at /project).
#  - The scheduler and the workers: the unprivileged user dask (uid 1000).
#  - TLS: the files MNISTDIST_TLS_* name are copied, readable by that user only,
#    to a private folder and the variables re-pointed there: a host key of mode
#    0600 belongs to a host uid that the container's user is not.
# Started as a non-root user (docker run --user), it runs the command unchanged.
set -euo pipefail
[ "$(id -u)" = 0 ] || exec "$@"

uid=1000 gid=1000 home=/home/dask
if [ -d /results ]; then
    read -r uid gid < <(stat -c '%u %g' /results)
    if [ "$uid" = 0 ] && [ -d /project ]; then
        read -r uid gid < <(stat -c '%u %g' /project)
        chown "$uid:$gid" /results
    fi
    home=/tmp/home
fi
mkdir -p "$home" && chown "$uid:$gid" "$home"
export HOME="$home"

if [ -n "${MNISTDIST_TLS_CA_FILE:-}${MNISTDIST_TLS_CERT:-}${MNISTDIST_TLS_KEY:-}" ]; then
    private=$(mktemp -d /tmp/tls.XXXXXX)
    for var in MNISTDIST_TLS_CA_FILE MNISTDIST_TLS_CERT MNISTDIST_TLS_KEY; do
        # A missing file is left as named: tls.sh or the job then says which.
        if [ -f "${!var:-}" ]; then
            install -m 0400 -o "$uid" -g "$gid" "${!var}" "$private/${var#MNISTDIST_TLS_}"
            export "$var=$private/${var#MNISTDIST_TLS_}"
        fi
    done
    chown "$uid:$gid" "$private" && chmod 0700 "$private"
fi

# Python, not setpriv or gosu: every base image with Python can drop root this way.
exec python -c '
import os, sys
uid, gid = int(sys.argv[1]), int(sys.argv[2])
os.setgroups([])
os.setgid(gid)
os.setuid(uid)
os.execvp(sys.argv[3], sys.argv[3:])
' "$uid" "$gid" "$@"
