#!/bin/sh
# Validate the deployment files: the systemd units with `systemd-analyze verify` (against a
# built thwonk binary, since verify checks that ExecStart exists) and docker-compose.yml with
# a compose tool's `config` command. Any warning fails: systemd only warns on unknown keys.
#   sh scripts/verify-deploy.sh [PATH-TO-THWONK-BINARY]
set -eu
cd "$(dirname "$0")/.."
bin="${1:-${CARGO_TARGET_DIR:-target}/debug/thwonk}"
[ -x "$bin" ] || { echo "verify-deploy: no thwonk binary at $bin (cargo build first)" >&2; exit 1; }
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

if ! command -v systemd-analyze >/dev/null 2>&1 || ! command -v docker-compose >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq systemd docker-compose >/dev/null
fi

units="$(mktemp -d)"
trap 'rm -rf "$units"' EXIT
for unit in systemd/*.service; do
  sed "s#/usr/local/bin/thwonk#$bin#g" "$unit" > "$units/$(basename "$unit")"
done
out="$(systemd-analyze verify "$units"/*.service 2>&1)" || { echo "$out" >&2; exit 1; }
if [ -n "$out" ]; then
  echo "systemd-analyze verify warned:" >&2
  echo "$out" >&2
  exit 1
fi
echo "systemd units: ok ($(ls systemd/*.service | wc -l) units)"

docker-compose -f docker-compose.yml config -q
echo "docker-compose.yml: ok"
