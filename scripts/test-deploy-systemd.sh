#!/bin/bash
# The systemd units under a real systemd: a Debian bookworm container booted with /sbin/init
# (scripts/deploy-images.sh builds it), the units installed as systemd/README.md says, then:
# thwonk.service reaches active only once SMTP answers (Type=notify; a daemon that cannot
# start never reaches it), the hardening holds (the daemon cannot write outside its state
# directory), `systemctl stop` drains, Restart=on-failure brings a killed daemon back, and the
# four role units carry a message together against PostgreSQL and Redis.
#
#   sh scripts/test-deploy-systemd.sh [PATH-TO-THWONK-BINARY]    (as root, dockerd running)
#
# The container gets every capability the host has (systemd mounts file systems and sets up
# the units' namespaces), and the host's cgroup tree; nothing is published.
set -euo pipefail
cd "$(dirname "$0")/.."
DEPLOY_TMP="$(mktemp -d)"
. scripts/deploy-images.sh
bin="${1:-${CARGO_TARGET_DIR:-target}/debug/thwonk}"
[ -x "$bin" ] || deploy_fail "no thwonk binary at $bin"
started=$(date +%s)
deploy_require_docker
name="thwonk-test-systemd-$$-$RANDOM"

cleanup() {
  status=$?
  if [ $status -ne 0 ]; then
    echo "---- journal of the thwonk units (last 80 lines) ----" >&2
    docker exec "$name" journalctl --no-pager -n 80 -u 'thwonk*' >&2 2>/dev/null || true
  fi
  docker rm -f -v "$name" >/dev/null 2>&1 || true
  rm -rf "$DEPLOY_TMP"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

deploy_base_image
deploy_standin systemd thwonk-test/systemd:bookworm

# Every capability this host grants (--privileged asks for all, and some hosts withhold one),
# no seccomp or AppArmor profile of Docker's own: systemd sets up each unit's namespaces.
caps=(--cap-add=ALL)
bnd=$(( 16#$(awk '/^CapBnd:/{print $2}' /proc/self/status) ))
(( bnd & (1 << 24) )) || caps+=(--cap-drop=SYS_RESOURCE)
docker run -d --name "$name" "${caps[@]}" --security-opt seccomp=unconfined \
  --security-opt apparmor=unconfined --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
  --tmpfs /run --tmpfs /run/lock --tmpfs /tmp thwonk-test/systemd:bookworm >/dev/null
inside() { docker exec "$name" bash -c "$*"; }
for _ in $(seq 1 60); do
  state="$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)"
  case "$state" in running|degraded) break ;; esac
  sleep 1
done
case "$state" in running|degraded) ;; *) deploy_fail "systemd did not boot in the container ($state)" ;; esac
deploy_log "systemd booted ($state)"

# ---- install, as systemd/README.md says ----------------------------------------------------
# Its sh block, line by line, in a copy of the repository's systemd/ directory, with the
# binary where `cargo build --release` would have put it (`sudo` is root here).
docker exec "$name" mkdir -p /src/target/release
docker cp systemd "$name:/src/systemd"
objcopy --strip-debug "$bin" "$DEPLOY_TMP/thwonk" 2>/dev/null || cp "$bin" "$DEPLOY_TMP/thwonk"
docker cp "$DEPLOY_TMP/thwonk" "$name:/src/target/release/thwonk"
steps="$(awk '/^```sh/{b=1;next} b&&/^```/{exit} b{print}' systemd/README.md)"
[ -n "$steps" ] || deploy_fail "systemd/README.md has no sh block"
while IFS= read -r line; do
  case "$line" in ''|\#*|cargo\ build*) continue ;; esac
  deploy_log "systemd/README.md: $line"
  inside "sudo() { \"\$@\"; }; cd /src && $line" || deploy_fail "install step failed: $line"
done <<< "$steps"

# smtp_send PORT N: one message to echo@mx.example.org from inside the container.
smtp_send() {
  inside "exec 3<>/dev/tcp/127.0.0.1/$1 || exit 1
    expect() { IFS= read -r -t 30 line <&3 || exit 1; case \"\$line\" in \"\$1\"*) ;; *) echo \"smtp: \$line\" >&2; exit 1 ;; esac; }
    say() { printf '%s\r\n' \"\$1\" >&3; }
    expect 220; say 'HELO client.example'; expect 250; say 'MAIL FROM:<sender@client.example>'; expect 250
    say 'RCPT TO:<echo@mx.example.org>'; expect 250; say DATA; expect 354
    say 'From: <sender@client.example>'; say 'To: <echo@mx.example.org>'; say 'Subject: unit $2'
    say ''; say 'token unit-$2 end'; say .; expect 250; say QUIT"
}
show() { inside "systemctl show -p $2 --value $1"; }

# ---- thwonk.service: ready means SMTP answers ----------------------------------------------
[ "$(show thwonk.service ActiveState)" = active ] || deploy_fail "thwonk.service is not active after enable --now"
# The README's last step probed smtp and http right after `enable --now` returned: systemd
# reported the start done only once they answered. A daemon that cannot serve never reaches
# active: with an address it cannot listen on, `systemctl start` fails (Type=simple would
# have said active).
inside "systemctl stop thwonk.service"
inside "echo THWONK_SMTP_LISTEN=192.0.2.1:25 >> /etc/thwonk/thwonk.env"
if inside "systemctl start thwonk.service" 2>/dev/null; then
  deploy_fail "thwonk.service started although SMTP could not listen"
fi
[ "$(show thwonk.service ActiveState)" != active ] || deploy_fail "thwonk.service is active without SMTP"
inside "sed -i '/192.0.2.1/d' /etc/thwonk/thwonk.env; systemctl reset-failed thwonk.service; systemctl start thwonk.service"
inside "thwonk probe smtp" || deploy_fail "SMTP does not answer once thwonk.service is active"
deploy_log "thwonk.service: active only when SMTP answers"

# ---- hardening: nothing writable but the state directory ----------------------------------
pid="$(show thwonk.service MainPID)"
inside "grep -q '^NoNewPrivs:[[:space:]]*1' /proc/$pid/status" || deploy_fail "NoNewPrivs is not set"
[ "$(inside "awk '/^CapEff:/{print \$2}' /proc/$pid/status")" = 0000000000000400 ] \
  || deploy_fail "the daemon holds more than CAP_NET_BIND_SERVICE"
[ "$(inside "stat -c %U /proc/$pid")" = thwonk ] || deploy_fail "the daemon does not run as thwonk"
# In the daemon's own mount namespace, even root (who passes every permission check) can
# write only in /var/lib/thwonk: the rest is mounted read-only or hidden.
inside "nsenter -t $pid -m touch /var/lib/thwonk/.hardening-probe && nsenter -t $pid -m rm /var/lib/thwonk/.hardening-probe" \
  || deploy_fail "the state directory is not writable for the daemon"
for path in /etc/thwonk-probe /usr/local/bin/thwonk-probe /var/lib/thwonk-probe /var/log/thwonk-probe /root/thwonk-probe /home/thwonk-probe; do
  if inside "nsenter -t $pid -m touch $path" 2>/dev/null; then
    deploy_fail "the daemon's namespace lets $path be written"
  fi
done
deploy_log "hardening: only /var/lib/thwonk is writable, no new privileges, one capability"

# ---- systemctl stop drains; Restart=on-failure ---------------------------------------------
docker cp sandbox-scripts/echo.js "$name:/src/echo.js"
inside "cd /var/lib/thwonk && runuser -u thwonk -- env THWONK_DATA_DIR=/var/lib/thwonk thwonk deploy echo@mx.example.org /src/echo.js" \
  || deploy_fail "thwonk deploy"
for n in 1 2 3 4 5; do smtp_send 2525 "$n" || deploy_fail "SMTP refused message $n"; done
t0=$(date +%s)
inside "systemctl stop thwonk.service"
took=$(($(date +%s) - t0))
[ "$(show thwonk.service Result)" = success ] || deploy_fail "thwonk.service stopped with $(show thwonk.service Result)"
[ "$(show thwonk.service ExecMainStatus)" = 0 ] || deploy_fail "the daemon exited $(show thwonk.service ExecMainStatus) on stop"
[ $took -lt 45 ] || deploy_fail "systemctl stop took $took s"
inside "journalctl -u thwonk.service --no-pager -o cat | grep -q 'SIGTERM: shutting down'" || deploy_fail "no drain in the journal"
deploy_log "systemctl stop: drained in $took s, status 0"
# What the drain left queued runs after the next start: all 5 replies, none lost.
inside "systemctl start thwonk.service"
for _ in $(seq 1 60); do
  [ "$(inside "ls /var/lib/thwonk/captured 2>/dev/null | grep -c [.]eml\$")" -ge 5 ] && break
  sleep 1
done
[ "$(inside "ls /var/lib/thwonk/captured | grep -c [.]eml\$")" = 5 ] || deploy_fail "not 5 replies after stop and start"
pid="$(show thwonk.service MainPID)"
inside "kill -9 $pid"
for _ in $(seq 1 30); do
  sleep 1
  new="$(show thwonk.service MainPID)"
  [ "$(show thwonk.service ActiveState)" = active ] && [ "$new" != 0 ] && [ "$new" != "$pid" ] && break
done
[ "$(show thwonk.service ActiveState)" = active ] && [ "$new" != "$pid" ] || deploy_fail "thwonk.service did not come back after kill -9"
[ "$(show thwonk.service NRestarts)" -ge 1 ] || deploy_fail "NRestarts did not count the restart"
inside "thwonk probe smtp" || deploy_fail "SMTP does not answer after the restart"
deploy_log "Restart=on-failure: back with pid $new after kill -9 of $pid"
inside "systemctl disable --now thwonk.service" 2>/dev/null

# ---- the four role units against PostgreSQL and Redis -------------------------------------
inside "systemctl start postgresql.service redis-server.service"
inside "runuser -u postgres -- psql -qc \"CREATE ROLE thwonk LOGIN PASSWORD 'thwonk'\" && runuser -u postgres -- createdb -O thwonk thwonk" \
  || deploy_fail "cannot create the database"
inside "printf '%s\n' THWONK_DATABASE_URL=postgres://thwonk:thwonk@127.0.0.1:5432/thwonk THWONK_REDIS_URL=redis://127.0.0.1:6379/0 >> /etc/thwonk/thwonk.env"
inside "rm -rf /var/lib/thwonk/captured"
inside "systemctl start thwonk-api.service thwonk-ingress.service thwonk-runner.service thwonk-egress.service" \
  || deploy_fail "the role units did not start"
for u in api ingress runner egress; do
  [ "$(show thwonk-$u.service ActiveState)" = active ] || deploy_fail "thwonk-$u.service is not active"
done
inside "thwonk probe http && thwonk probe smtp" || deploy_fail "the role units do not answer"
inside "cd /var/lib/thwonk && runuser -u thwonk -- env \$(grep -v '^#' /etc/thwonk/thwonk.env | xargs) thwonk deploy echo@mx.example.org /src/echo.js" \
  || deploy_fail "thwonk deploy against PostgreSQL"
smtp_send 2525 split || deploy_fail "the ingress unit refused the message"
for _ in $(seq 1 60); do
  inside "grep -rqs 'token unit-split end' /var/lib/thwonk/captured" && break
  sleep 1
done
inside "grep -rqs 'token unit-split end' /var/lib/thwonk/captured" || deploy_fail "the role units did not deliver the reply"
inside "systemctl stop thwonk-api.service thwonk-ingress.service thwonk-runner.service thwonk-egress.service"
for u in api ingress runner egress; do
  [ "$(show thwonk-$u.service Result)" = success ] || deploy_fail "thwonk-$u.service stopped with $(show thwonk-$u.service Result)"
done
deploy_log "role units: a message in, run, and out through PostgreSQL and Redis"
deploy_log "systemd units: ok in $(($(date +%s) - started)) s"
