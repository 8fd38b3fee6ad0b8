#!/usr/bin/env bash
# Install the Debian packages that tests and benchmarks need, only when their binaries are missing
# (docker-compose only validates docker-compose.yml: `docker-compose config`, no Docker daemon).
set -euo pipefail
declare -A pkg_for=(
  [mosquitto]=mosquitto
  [influxd]=influxdb
  [chromium]=chromium
  [pdftoppm]=poppler-utils
  [docker-compose]=docker-compose
  [curl]=curl
)
missing=()
for bin in "${!pkg_for[@]}"; do
  if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
    missing+=("${pkg_for[$bin]}")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "Installing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian packages may start their own daemons; tests start private instances on free ports.
for svc in mosquitto influxdb; do
  $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
