#!/usr/bin/env bash
# make-certs.sh DIR [NAME [CLIENT-CN]]: a throwaway CA (DIR/ca.pem) and a certificate for localhost,
# 127.0.0.1 and ::1 signed by it (DIR/NAME.pem, DIR/NAME.key); with CLIENT-CN, a client certificate
# (for mTLS) with that common name instead; with DNS_NAME set, a server certificate for that one name
# (e.g. a.test or *.b.test, for SNI) instead of localhost. For tests and for trying TLS locally.
set -euo pipefail
dir=$1
name=${2:-server}
client_cn=${3:-}
mkdir -p "$dir"
cd "$dir"
if [[ ! -f ca.key ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
    -days 30 -subj "/CN=wsgate test CA" 2>/dev/null
fi
if [[ -n "$client_cn" ]]; then
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$name.key" -out "$name.csr" \
    -subj "/O=wsgate tests/CN=$client_cn" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n' > "$name.ext"
elif [[ -n "${DNS_NAME:-}" ]]; then
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$name.key" -out "$name.csr" \
    -subj "/CN=$DNS_NAME" 2>/dev/null
  printf 'subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' "$DNS_NAME" > "$name.ext"
else
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$name.key" -out "$name.csr" \
    -subj "/CN=localhost" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' > "$name.ext"
fi
openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$name.pem" -days 30 \
  -extfile "$name.ext" 2>/dev/null
rm -f "$name.csr" "$name.ext"
