#!/usr/bin/env bash
# Make throwaway TLS files for an mnistdist cluster: a CA, and a certificate and key per
# role, each naming the hosts it serves (subjectAltName), so clients check them.
#   cluster/certs.sh DIR [DAYS]     default: 365 days
# DIR gets ca.pem and, for each role (scheduler, worker, job), ROLE.pem and ROLE-key.pem
# (mode 0600). The CA's own key is deleted once they are signed: nothing else can join the
# cluster with its authority (run the script again for new files). The names: the role
# (docker-compose's service name), localhost and 127.0.0.1; add yours with
# MNISTDIST_TLS_NAMES="DNS:sched.example.org,IP:10.0.0.5".
# docker-compose reads them from MNISTDIST_TLS_DIR=DIR; cluster/*.sh from MNISTDIST_TLS_*.
set -euo pipefail
dir="${1:?usage: cluster/certs.sh DIR [DAYS]}"
days="${2:-365}"
mkdir -p "$dir"
cd "$dir"
umask 077
ssl() { openssl "$@" 2>/dev/null; }
ssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days "$days" \
    -subj "/CN=mnistdist cluster CA"
for role in scheduler worker job; do
    names="DNS:$role,DNS:localhost,IP:127.0.0.1${MNISTDIST_TLS_NAMES:+,$MNISTDIST_TLS_NAMES}"
    ssl req -newkey rsa:2048 -nodes -keyout "$role-key.pem" -out "$role.csr" -subj "/CN=$role"
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$names" >"$role.ext"
    ssl x509 -req -in "$role.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
        -out "$role.pem" -days "$days" -extfile "$role.ext"
    rm -f "$role.csr" "$role.ext"
done
chmod 0644 ca.pem scheduler.pem worker.pem job.pem
rm -f ca.srl ca-key.pem
echo "certs.sh: CA and scheduler, worker and job certificates in $dir"
