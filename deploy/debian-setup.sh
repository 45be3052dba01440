#!/usr/bin/env bash
# Installs what Control Tower needs on Debian 12 (bookworm): the C libraries it links, protoc for
# regenerating code, PostgreSQL 15 for the embedded zero-config database and tests, nghttp2's
# tools for benchmarks, and the Python packages the interop tests use. Swift itself is assumed
# (https://swift.org/install). Safe to run again.
set -euo pipefail

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

packages=(
  pkg-config libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libprotobuf-dev
  libpq-dev libssl-dev libcurl4-openssl-dev zlib1g-dev
  postgresql postgresql-contrib nghttp2-client nghttp2-server python3-pip
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Debian starts a system cluster on port 5432; Control Tower runs its own clusters instead.
python3 -m pip install -q --disable-pip-version-check \
  grpcio grpcio-tools grpcio-health-checking grpcio-reflection h2 pytest twilio 2>&1 | grep -v "Running pip as the 'root' user" || true
