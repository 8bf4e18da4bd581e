#!/usr/bin/env bash
# Regenerates the development CA and bundle signer (see README.md). Valid from 2025-01-01 for 20 years.
set -euo pipefail
cd "$(dirname "$0")"
ft() { faketime '2025-01-01 00:00:00' "$@"; }
ft openssl req -x509 -newkey rsa:3072 -nodes -keyout ca.key.pem -out ca.cert.pem -days 7300 -subj "/O=Outpost/CN=Outpost development CA (not for production)" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
ft openssl req -newkey rsa:3072 -nodes -keyout dev-signer.key.pem -out dev-signer.csr -subj "/O=Outpost/CN=Outpost development bundle signer"
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,codeSigning\n' > dev-signer.ext
ft openssl x509 -req -in dev-signer.csr -CA ca.cert.pem -CAkey ca.key.pem -set_serial 2 -days 7300 -out dev-signer.cert.pem -extfile dev-signer.ext
rm -f dev-signer.csr dev-signer.ext
