# Sourced by scheduler.sh, worker.sh and up.sh: TLS options from MNISTDIST_TLS_*.
# Sets the array tls_args: empty without TLS; with TLS, the process listens
# on tls:// only, with the given CA, certificate and key. A key that its group
# or others may read is refused: whoever reads it can join or impersonate the cluster.
tls_args=()
if [ -n "${MNISTDIST_TLS_CA_FILE:-}${MNISTDIST_TLS_CERT:-}${MNISTDIST_TLS_KEY:-}" ]; then
    for var in MNISTDIST_TLS_CA_FILE MNISTDIST_TLS_CERT MNISTDIST_TLS_KEY; do
        if [ ! -r "${!var:-}" ]; then
            echo "$(basename "$0"): TLS needs $var to name a readable file (got '${!var:-}')" >&2
            exit 2
        fi
    done
    # GNU stat, then BSD's: the key's permission bits, in octal.
    key_mode="$(stat -L -c %a "$MNISTDIST_TLS_KEY" 2>/dev/null || stat -L -f %Lp "$MNISTDIST_TLS_KEY")"
    if (( 8#$key_mode & 8#077 )); then
        echo "$(basename "$0"): TLS key $MNISTDIST_TLS_KEY may be read by its group or others (mode $key_mode): chmod 600 it" >&2
        exit 2
    fi
    tls_args=(--protocol tls --tls-ca-file "$MNISTDIST_TLS_CA_FILE" --tls-cert "$MNISTDIST_TLS_CERT" --tls-key "$MNISTDIST_TLS_KEY")
fi
