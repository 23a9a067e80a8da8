#!/bin/sh
# Install what the tests of examples/workers/ need (tests/workers.rs): redis-py for the Python
# worker and node-redis for the Node worker; Chromium for the browser tests
# (crates/api/tests/browser.rs, tests/browser_archive.rs) and playwright-core, which drives
# it over the DevTools protocol (tests/browser/). Idempotent; Debian/Ubuntu, as root or with sudo.
# Never fails the suite: when something cannot be installed it says so, and those tests print
# SKIPPED instead of running.
set -u
cd "$(dirname "$0")/.."
warn() { echo "install-test-deps: WARNING: $*" >&2; }
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

# Python: redis-py, pinned in requirements.txt.
req=examples/workers/python/requirements.txt
if ! command -v python3 >/dev/null 2>&1; then
  warn "python3 not found: the Python worker tests will be skipped (apt-get install python3)"
elif ! python3 -c "import redis" >/dev/null 2>&1; then
  echo "installing redis-py for python3" >&2
  if python3 -m pip --version >/dev/null 2>&1; then
    python3 -m pip install -q -r "$req" \
      || warn "pip install -r $req failed (on a system Python, PEP 668 may refuse it)"
  else
    warn "pip not found for python3"
  fi
  # A system Python that pip may not touch: Debian's own package (an older redis-py, which
  # the worker supports too).
  if ! python3 -c "import redis" >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        $SUDO apt-get install -y -qq python3-redis >/dev/null; } \
      || warn "apt-get install python3-redis failed"
  fi
  python3 -c "import redis" >/dev/null 2>&1 \
    || warn "redis-py is not installed: the Python worker tests will be skipped (python3 -m pip install -r $req)"
fi

# Node: node-redis, from the committed package-lock.json.
if [ ! -d examples/workers/node/node_modules/redis ]; then
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    warn "node or npm not found: the Node worker tests will be skipped (apt-get install nodejs npm; Node >= 20)"
  else
    echo "installing node-redis in examples/workers/node" >&2
    (cd examples/workers/node && npm ci --no-audit --no-fund --loglevel=error) \
      || warn "npm ci in examples/workers/node failed: the Node worker tests will be skipped"
  fi
fi

# playwright-core for the browser harness (tests/browser/page.js), from its package-lock.json.
# It drives the system's /usr/bin/chromium: no browser is downloaded.
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    warn "node or npm not found: the browser archive test will be skipped (apt-get install nodejs npm; Node >= 20)"
  else
    echo "installing playwright-core in tests/browser" >&2
    (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) \
      || warn "npm ci in tests/browser failed: the browser archive test will be skipped"
  fi
fi

# Chromium: crates/api/tests/browser.rs follows a feed with a real EventSource in it.
if [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (for the browser EventSource test)" >&2
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        $SUDO apt-get install -y -qq chromium >/dev/null; } \
      || warn "apt-get install chromium failed: the browser EventSource test will be skipped"
  else
    warn "no apt-get: install chromium as /usr/bin/chromium, or the browser EventSource test is skipped"
  fi
fi
exit 0
