#!/usr/bin/env bash
# Creates a CA and a serving certificate for 127.0.0.1 (the operator's webhook as a host process).
# Usage: webhook-certs.sh DIR   — writes ca.crt, ca.key, tls.crt, tls.key; keeps existing valid ones.
set -euo pipefail
dir=${1:?usage: webhook-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
if [[ -f tls.crt && -f ca.crt ]] && openssl verify -CAfile ca.crt tls.crt >/dev/null 2>&1 &&
  openssl x509 -checkend 86400 -noout -in tls.crt >/dev/null; then
  exit 0
fi
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=hasan-operator-webhook-ca" \
  -keyout ca.key -out ca.crt 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout tls.key -out tls.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >ext.cnf
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -extfile ext.cnf \
  -out tls.crt 2>/dev/null
rm -f tls.csr ext.cnf ca.srl
chmod 600 ./*.key
