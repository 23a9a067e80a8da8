#!/bin/sh
# Install what Thwonk needs at run time on Debian/Ubuntu: redis-server (the embedded default
# starts a private one) and swaks (to send test mail in the README's tour). Idempotent.
set -eu
missing=""
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v swaks >/dev/null 2>&1 || missing="$missing swaks"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
echo "installing:$missing" >&2
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
