#!/usr/bin/env bash
# The image's entry point. It starts as root only to pick the user and hand it
# what it must read, then runs the command as that user, never as root.
#  - The job (a /results mount): the owner of /results, so the outputs belong to
#    the host user. When Docker has just created ./results (an empty folder owned
#    by root), it is first given to the owner of the compose project folder
#    (mounted at /project), and only if /results is that very folder: never
#    through a ./results that is a symbolic link (Docker mounts the link's target,
#    whatever it is). Where the only owner to be found is root, the job is not run:
#    one line says which --user or ownership to set.
#  - The scheduler and the workers: the unprivileged user dask (uid 1000).
#  - TLS: the files MNISTDIST_TLS_* name are copied, readable by that user only,
#    to a private folder and the variables re-pointed there: a host key of mode
#    0600 belongs to a host uid that the container's user is not. A key its group
#    or others may read is refused.
# Started as a non-root user (docker run --user), it runs the command unchanged.
set -euo pipefail
[ "$(id -u)" = 0 ] || exec "$@"

refuse() {
    echo "entrypoint: $*" >&2
    exit 1
}

uid=1000 gid=1000 home=/home/dask
if [ -d /results ]; then
    if [ -L /project/results ]; then
        refuse "./results is a symbolic link: the job will not take over its target;" \
            "make ./results a folder of yours, or run the job as yourself:" \
            "docker compose run --rm --user \"\$(id -u):\$(id -g)\" job ..."
    fi
    read -r uid gid < <(stat -c '%u %g' /results)
    if [ "$uid" = 0 ] && [ -d /project ] && [ -z "$(ls -A /results)" ] \
        && [ "$(stat -c '%d:%i' /results)" = "$(stat -c '%d:%i' /project/results 2>/dev/null)" ]; then
        read -r uid gid < <(stat -c '%u %g' /project)
        [ "$uid" = 0 ] || chown -h "$uid:$gid" /results
    fi
    if [ "$uid" = 0 ]; then
        refuse "./results and the project folder belong to root, and the job never runs as" \
            "root: chown ./results to your user, or run the job as yourself:" \
            "docker compose run --rm --user \"\$(id -u):\$(id -g)\" job ..."
    fi
    home=/tmp/home
fi
mkdir -p "$home" && chown "$uid:$gid" "$home"
export HOME="$home"

if [ -n "${MNISTDIST_TLS_CA_FILE:-}${MNISTDIST_TLS_CERT:-}${MNISTDIST_TLS_KEY:-}" ]; then
    if [ -f "${MNISTDIST_TLS_KEY:-}" ] && (( 8#$(stat -L -c %a "$MNISTDIST_TLS_KEY") & 8#077 )); then
        refuse "TLS key $MNISTDIST_TLS_KEY may be read by its group or others" \
            "(mode $(stat -L -c %a "$MNISTDIST_TLS_KEY")): chmod 600 it in MNISTDIST_TLS_DIR"
    fi
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
if uid == 0:
    sys.exit("entrypoint: refusing to run the command as root")
os.setgroups([])
os.setgid(gid)
os.setuid(uid)
os.execvp(sys.argv[3], sys.argv[3:])
' "$uid" "$gid" "$@"
