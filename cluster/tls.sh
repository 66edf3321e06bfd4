# Sourced by scheduler.sh, worker.sh and up.sh: TLS options from MNISTDIST_TLS_*.
# Sets the array tls_args: empty without TLS; with TLS, the process listens
# on tls:// only, with the given CA, certificate and key.
tls_args=()
if [ -n "${MNISTDIST_TLS_CA_FILE:-}${MNISTDIST_TLS_CERT:-}${MNISTDIST_TLS_KEY:-}" ]; then
    for var in MNISTDIST_TLS_CA_FILE MNISTDIST_TLS_CERT MNISTDIST_TLS_KEY; do
        if [ ! -r "${!var:-}" ]; then
            echo "$(basename "$0"): TLS needs $var to name a readable file (got '${!var:-}')" >&2
            exit 2
        fi
    done
    tls_args=(--protocol tls --tls-ca-file "$MNISTDIST_TLS_CA_FILE" --tls-cert "$MNISTDIST_TLS_CERT" --tls-key "$MNISTDIST_TLS_KEY")
fi
