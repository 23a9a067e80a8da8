#!/bin/bash
# Images for the deployment tests (scripts/test-deploy-docker.sh, scripts/test-deploy-systemd.sh),
# built on a Docker engine with no Docker Hub access. Sourced, not run.
#
# - thwonk-test/debian:bookworm: a debootstrap --variant=minbase root file system, imported.
# - thwonk-test/{redis:7,postgres:16,sink:latest,systemd:bookworm}: tests/deploy/*/Dockerfile
#   on top of it (Debian packages).
# - thwonk-test/thwonk:test: the project's Dockerfile, stage `prebuilt`, with a host-built binary.
#
# Every image but the last carries a label with the hash of what it was built from and is
# rebuilt only when that changes, so a warm machine builds nothing but the Thwonk image. The
# stand-ins stay as the cache between runs; `deploy_images_clean` removes the Thwonk image.

DEPLOY_BASE_IMAGE=thwonk-test/debian:bookworm
DEPLOY_THWONK_IMAGE=thwonk-test/thwonk:test
DEPLOY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

deploy_log() { echo "[deploy $(date -u +%H:%M:%S)] $*" >&2; }
deploy_fail() { echo "[deploy] FAILED: $*" >&2; exit 1; }

# The legacy builder: Debian's docker.io has no buildx, and the Dockerfiles need nothing newer.
deploy_build() { DOCKER_BUILDKIT=0 docker build -q "$@" >/dev/null 2>"$DEPLOY_TMP/build.err" \
  || { cat "$DEPLOY_TMP/build.err" >&2; deploy_fail "docker build $*"; }; }

deploy_label() { docker image inspect -f '{{index .Config.Labels "thwonk.test.hash"}}' "$1" 2>/dev/null || true; }

# The Debian mirror apt uses on this machine (the first deb.debian.org-like URI), else the default.
deploy_mirror() {
  local m
  m="$(grep -rhoE '^(deb|URIs:)\s+https?://[^ ]*/debian/?(\s|$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
    | awk '{print $2}' | head -n1)"
  echo "${m:-http://deb.debian.org/debian}"
}

deploy_base_image() {
  local hash="debootstrap-minbase-bookworm-v1"
  [ "$(deploy_label "$DEPLOY_BASE_IMAGE")" = "$hash" ] && return 0
  command -v debootstrap >/dev/null || deploy_fail "debootstrap is not installed (apt-get install debootstrap)"
  local dir="$DEPLOY_TMP/rootfs" mirror
  mirror="$(deploy_mirror)"
  deploy_log "debootstrap bookworm from $mirror (about a minute)"
  debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$DEPLOY_TMP/debootstrap.log" 2>&1 \
    || { tail -n 20 "$DEPLOY_TMP/debootstrap.log" >&2; deploy_fail "debootstrap"; }
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar -C "$dir" -c . | docker import -c 'CMD ["/bin/bash"]' -c "LABEL thwonk.test.hash=$hash" \
    - "$DEPLOY_BASE_IMAGE" >/dev/null || deploy_fail "docker import"
  rm -rf "$dir"
}

# deploy_standin NAME TAG: tests/deploy/NAME on the base image, rebuilt when its files change.
deploy_standin() {
  local name="$1" tag="$2" hash
  hash="$( (docker image inspect -f '{{.Id}}' "$DEPLOY_BASE_IMAGE"; cd "$DEPLOY_ROOT/tests/deploy/$name" \
    && find . -type f | sort | xargs sha256sum) | sha256sum | cut -c1-16)"
  [ "$(deploy_label "$tag")" = "$hash" ] && return 0
  deploy_log "building the $tag stand-in"
  deploy_build --label "thwonk.test.hash=$hash" --build-arg "BASE=$DEPLOY_BASE_IMAGE" -t "$tag" \
    "$DEPLOY_ROOT/tests/deploy/$name"
}

# deploy_thwonk_image BINARY: the project's Dockerfile, stage `prebuilt`, on the stand-in base
# (the runtime-base stage's apt layer is in Docker's build cache after the first run).
deploy_thwonk_image() {
  local bin="$1" ctx="$DEPLOY_TMP/context"
  [ -x "$bin" ] || deploy_fail "no thwonk binary at $bin"
  mkdir -p "$ctx/prebuilt" "$ctx/config"
  cp "$DEPLOY_ROOT/Dockerfile" "$ctx/"
  cp "$DEPLOY_ROOT/config/thwonk.toml" "$ctx/config/"
  # Debug information is no part of the deployment; without it a debug build is a quarter of
  # the size.
  objcopy --strip-debug "$bin" "$ctx/prebuilt/thwonk" 2>/dev/null || cp "$bin" "$ctx/prebuilt/thwonk"
  chmod 0755 "$ctx/prebuilt/thwonk"
  deploy_log "building $DEPLOY_THWONK_IMAGE from the Dockerfile (target prebuilt)"
  deploy_build --target prebuilt --build-arg "DEBIAN_IMAGE=$DEPLOY_BASE_IMAGE" \
    -t "$DEPLOY_THWONK_IMAGE" "$ctx"
  rm -rf "$ctx"
}

deploy_images_clean() {
  docker image rm -f "$DEPLOY_THWONK_IMAGE" >/dev/null 2>&1 || true
  docker image prune -f >/dev/null 2>&1 || true
}

# The engine, or a clear reason why not.
deploy_require_docker() {
  docker info >/dev/null 2>&1 || deploy_fail "no Docker engine answers (start dockerd)"
}
