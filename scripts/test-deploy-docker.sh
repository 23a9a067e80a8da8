#!/bin/bash
# The docker compose deployment, on a real Docker engine: builds the images (see
# scripts/deploy-images.sh), then follows the README's "With docker compose" steps word for
# word and proves what docs/operations.md promises: every service healthy, runners scale,
# 100 messages each delivered exactly once to a relay with a runner killed mid-stream, the
# sandbox wall up inside the container, `docker compose stop` drains within
# stop_grace_period, and a restart keeps thwonks, files and queued messages.
#
#   sh scripts/test-deploy-docker.sh [PATH-TO-THWONK-BINARY]    (as root, dockerd running)
#
# Publishes ports 25 and 8025 as the compose file does (they must be free). The compose
# project has a unique name and is removed with its volumes however the test ends.
set -euo pipefail
cd "$(dirname "$0")/.."
DEPLOY_TMP="$(mktemp -d)"
. scripts/deploy-images.sh
bin="${1:-${CARGO_TARGET_DIR:-target}/debug/thwonk}"
started=$(date +%s)

deploy_require_docker
export COMPOSE_PROJECT_NAME="thwonk-test-$$-$RANDOM"
export COMPOSE_FILE="docker-compose.yml:tests/deploy/docker-compose.stand-ins.yml"
# `docker compose` as the README writes it: the engine's compose plugin, else docker-compose.
if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi
docker() {
  if [ "${1:-}" = compose ]; then shift; "${COMPOSE[@]}" "$@"; else command docker "$@"; fi
}

# Every volume the project's containers use, noted as they come and go (see cleanup).
track_volumes() {
  local c
  for c in $(command docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME"); do
    command docker inspect -f '{{range .Mounts}}{{if .Name}}{{.Name}}{{"\n"}}{{end}}{{end}}' "$c"
  done >> "$DEPLOY_TMP/volumes" 2>/dev/null || true
}

cleanup() {
  status=$?
  if [ $status -ne 0 ]; then
    echo "---- compose logs (last 60 lines a service) ----" >&2
    "${COMPOSE[@]}" logs --no-color --tail=60 >&2 2>/dev/null || true
  fi
  track_volumes
  "${COMPOSE[@]}" down -v --remove-orphans -t 5 >/dev/null 2>&1 || true
  # Containers that scaling down removed leave their anonymous volumes behind.
  sort -u "$DEPLOY_TMP/volumes" 2>/dev/null | xargs -r docker volume rm >/dev/null 2>&1 || true
  deploy_images_clean
  rm -rf "$DEPLOY_TMP"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for port in 25 8025; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    deploy_fail "port $port is in use on this host; the compose file publishes it"
  fi
done

deploy_base_image
deploy_standin redis thwonk-test/redis:7
deploy_standin postgres thwonk-test/postgres:16
deploy_standin sink thwonk-test/sink:latest
deploy_thwonk_image "$bin"
deploy_log "images ready after $(($(date +%s) - started)) s"

# ---- helpers ----------------------------------------------------------------------------

thwonk_services="ingress runner egress api"
containers() { "${COMPOSE[@]}" ps -q "$@"; }

# Every container of the project healthy (those with a health check) and running.
wait_healthy() {
  local limit=$(($(date +%s) + $1)) c state bad
  while :; do
    bad=""
    for c in $(containers); do
      state="$(command docker inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$c")"
      case "$state" in running/healthy|running/none) ;; *) bad="$bad $(command docker inspect -f '{{.Name}}' "$c")=$state" ;; esac
    done
    [ -z "$bad" ] && return 0
    [ "$(date +%s)" -ge "$limit" ] && deploy_fail "not healthy within $1 s:$bad"
    sleep 2
  done
}

# smtp_send N TAG: one message to echo@mx.example.org on the published port; its body names
# TAG-N, which the echo script copies into its reply.
smtp_send() {
  local n="$1" tag="$2" line
  exec 3<>/dev/tcp/127.0.0.1/25 || return 1
  expect() { IFS= read -r -t 30 line <&3 || { echo "smtp: no reply (wanted $1)" >&2; return 1; }
    case "$line" in "$1"*) ;; *) echo "smtp: wanted $1, got $line" >&2; return 1 ;; esac; }
  say() { printf '%s\r\n' "$1" >&3; }
  expect 220 && say "HELO client.example" && expect 250 \
    && say "MAIL FROM:<sender-$n@client.example>" && expect 250 \
    && say "RCPT TO:<echo@mx.example.org>" && expect 250 && say "DATA" && expect 354 \
    && say "From: <sender-$n@client.example>" && say "To: <echo@mx.example.org>" \
    && say "Subject: deploy test $tag-$n" && say "Message-ID: <$tag-$n-$$@client.example>" \
    && say "Date: $(date -R)" && say "" && say "token $tag-$n end" && say "." && expect 250 \
    && say "QUIT"
  local ok=$?
  exec 3>&- 3<&-
  return $ok
}

# The sink's volume, read from the host (the test runs as root): quicker than an exec.
sink_dir() { command docker volume inspect -f '{{.Mountpoint}}' "${COMPOSE_PROJECT_NAME}_sink-data"; }
sink_tokens() { cat "$(sink_dir)"/*.eml 2>/dev/null | grep -aoE "token [a-z]+-[0-9]+ end" | awk '{print $2}' || true; }
sink_count() { find "$(sink_dir)" -maxdepth 1 -name '*.eml' | wc -l; }

# The runner that committed a run last: the one holding the thwonk (runs of one thwonk never
# overlap, so one runner at a time has its lease).
busiest_runner() {
  local c t
  for c in $(containers runner); do
    t="$(command docker logs --tail 200 "$c" 2>&1 | grep '"run committed"' | tail -n1 | grep -oE '"timestamp":"[^"]*"' || true)"
    echo "${t:-none} $c"
  done | sort | tail -n1 | awk '{print $2}'
}

# expect_each TAG FIRST LAST: every TAG-N delivered exactly once.
expect_each() {
  local tag="$1" first="$2" last="$3" counts n c
  counts="$(sink_tokens | sort | uniq -c)"
  for n in $(seq "$first" "$last"); do
    c="$(echo "$counts" | awk -v t="$tag-$n" '$2 == t {print $1}')"
    [ "${c:-0}" = 1 ] || deploy_fail "$tag-$n was delivered ${c:-0} times, not once"
  done
}

wait_sink() {
  local want="$1" limit=$(($(date +%s) + $2)) have
  while :; do
    have="$(sink_count)"
    [ "${have:-0}" -ge "$want" ] && return 0
    [ "$(date +%s)" -ge "$limit" ] && deploy_fail "the relay has $have messages after $2 s, not $want"
    sleep 1
  done
}

api() { curl -fsS -H "Authorization: Bearer $TOKEN" "$@"; }

# ---- 1. the README's steps, word for word --------------------------------------------------
# The fenced block under "With docker compose" in README.md, one command at a time (a line
# ending in a backslash continues). After each `docker compose up`, every service must become
# healthy, as the README says the user sees with `docker compose ps`.
steps="$(awk '/^### With docker compose/{f=1} f&&/^```sh/{b=1;next} b&&/^```/{exit} b{print}' README.md)"
[ -n "$steps" ] || deploy_fail "README.md has no \"### With docker compose\" section with a sh block"
cmd=""
while IFS= read -r line; do
  case "$line" in *\\) cmd="$cmd${line%\\} "; continue ;; esac
  cmd="$cmd$line"
  case "$cmd" in ''|\#*) cmd=""; continue ;; esac
  deploy_log "README: $cmd"
  eval "$cmd" </dev/null || deploy_fail "README step failed: $cmd"
  case "$cmd" in "docker compose up"*) wait_healthy 180; track_volumes ;; esac
  cmd=""
done <<< "$steps"
[ -n "${TOKEN:-}" ] || deploy_fail "the README's steps did not set TOKEN"

# ---- 2. what the steps should have made ---------------------------------------------------
[ "$(containers runner | wc -l)" = 3 ] || deploy_fail "not 3 runners after --scale runner=3"
api http://127.0.0.1:8025/v1/thwonks | grep -q '"echo@mx.example.org"' \
  || deploy_fail "the deployed thwonk is not listed"
for s in $thwonk_services; do
  uid="$("${COMPOSE[@]}" exec -T "$s" id -u | tr -d '\r')"
  [ "$uid" != 0 ] || deploy_fail "$s runs as root"
  # Logs are JSON by default: every line the daemon wrote is one JSON object.
  lines="$("${COMPOSE[@]}" logs --no-color "$s" | sed -n 's/^[^|]*| //p' | grep -v '^$' || true)"
  [ -n "$lines" ] || deploy_fail "$s logged nothing"
  if echo "$lines" | grep -qv '^{.*}$'; then
    echo "$lines" | grep -v '^{.*}$' | head -5 >&2
    deploy_fail "$s logs lines that are not JSON"
  fi
done
size_mb=$(( $(command docker image inspect -f '{{.Size}}' "$DEPLOY_THWONK_IMAGE") / 1000000 ))
deploy_log "image $DEPLOY_THWONK_IMAGE: $size_mb MB, user $(command docker image inspect -f '{{.Config.User}}' "$DEPLOY_THWONK_IMAGE")"

# ---- 3. the sandbox wall inside the container ----------------------------------------------
# A hostile script (it never returns) run by `thwonk test` in a runner container: the worker
# reports its seccomp filter and landlock ruleset enforced under Docker's default seccomp
# profile, and the run is stopped at its budget (instructions or wall clock, whichever the
# machine's speed makes first).
"${COMPOSE[@]}" exec -T runner sh -c 'cat > /tmp/hostile.js' <<'EOF'
export function onMessage(msg, thwonk) { for (;;) {} }
EOF
"${COMPOSE[@]}" exec -T runner sh -c 'printf "From: a@b.example\r\nTo: echo@mx.example.org\r\nSubject: x\r\n\r\nx\r\n" > /tmp/m.eml'
set +e
wall="$("${COMPOSE[@]}" exec -T -e THWONK_LOG=thwonk_sandbox=debug -e THWONK_LOG_FORMAT=text \
  runner thwonk test /tmp/hostile.js --message /tmp/m.eml 2>&1)"
status=$?
set -e
echo "$wall" | grep -q 'seccomp: Enforced' || { echo "$wall" >&2; deploy_fail "seccomp is not enforced in the container"; }
echo "$wall" | grep -q 'landlock: Enforced' || { echo "$wall" >&2; deploy_fail "landlock is not enforced in the container"; }
[ $status -ne 0 ] || { echo "$wall" >&2; deploy_fail "the hostile script's run succeeded"; }
echo "$wall" | grep -qE '"kind": "(BudgetExceeded|Timeout)"' || { echo "$wall" >&2; deploy_fail "the hostile script was not stopped at its budget"; }
if "${COMPOSE[@]}" logs --no-color runner | grep -q 'incomplete wall'; then
  deploy_fail "a runner's sandbox workers run with an incomplete wall"
fi

# ---- 4. 100 messages, a runner killed mid-stream -------------------------------------------
base="$(sink_count)"
# One message every 0.1 s, so that the stream is still going when a runner is killed.
( for n in $(seq 1 100); do smtp_send "$n" stream || exit 1; sleep 0.1; done ) &
sender=$!
wait_sink $((base + 20)) 120
victim="$(busiest_runner)"
at=$(($(sink_count) - base))
[ "$at" -lt 100 ] || deploy_fail "every message was delivered before the kill: not mid-stream"
track_volumes
command docker kill "$victim" >/dev/null
deploy_log "killed runner $(command docker inspect -f '{{.Name}}' "$victim") (the last to commit a run) after $at of 100 deliveries"
wait "$sender" || deploy_fail "the ingress did not accept every message"
# Jobs the killed runner held come back after its lease (runner.lease_ms, 30 s).
wait_sink $((base + 100)) 180
command docker rm -f -v "$victim" >/dev/null
sleep 5
[ "$(sink_count)" = $((base + 100)) ] || deploy_fail "the relay has $(sink_count) messages, not $((base + 100))"
expect_each stream 1 100
deploy_log "100 messages delivered exactly once"

# ---- 5. stop drains; a restart keeps thwonks, files and queued messages ---------------------
echo "alice@example.org" | api -X PUT --data-binary @- \
  http://127.0.0.1:8025/v1/thwonks/echo@mx.example.org/files/members.txt >/dev/null
docker compose stop runner
for n in $(seq 1 10); do smtp_send "$n" queued || deploy_fail "the ingress refused a message while runners were stopped"; done
t0=$(date +%s)
docker compose stop
took=$(($(date +%s) - t0))
[ $took -lt 45 ] || deploy_fail "docker compose stop took $took s, more than stop_grace_period (45 s)"
for s in $thwonk_services; do
  for c in $(containers "$s"); do
    code="$(command docker inspect -f '{{.State.ExitCode}}' "$c")"
    [ "$code" = 0 ] || deploy_fail "$s exited with status $code on stop (0 is a completed drain)"
  done
done
deploy_log "docker compose stop: every role drained and exited 0 in $took s"
docker compose up -d
wait_healthy 180
api http://127.0.0.1:8025/v1/thwonks | grep -q '"echo@mx.example.org"' || deploy_fail "the thwonk is gone after a restart"
[ "$(api http://127.0.0.1:8025/v1/thwonks/echo@mx.example.org/files/members.txt)" = "alice@example.org" ] \
  || deploy_fail "the thwonk's file is gone after a restart"
wait_sink $((base + 110)) 120
sleep 3
expect_each queued 1 10
expect_each stream 1 100
deploy_log "restart kept the thwonk, its file and the 10 queued messages"

deploy_log "docker compose deployment: ok in $(($(date +%s) - started)) s; image $size_mb MB"
