#!/bin/sh
# The whole test suite: unit tests, the real-Redis and real-SQLite tests, the end-to-end
# tests over real SMTP, and (when THWONK_TEST_POSTGRES_URL is set, or a PostgreSQL server
# answers on 127.0.0.1:5432 with a database `test`) the same tests on PostgreSQL.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
sh scripts/install-test-deps.sh
if [ -z "${THWONK_TEST_POSTGRES_URL:-}" ] && command -v pg_isready >/dev/null 2>&1 \
    && pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  export THWONK_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/test"
fi
if [ -n "${THWONK_TEST_POSTGRES_URL:-}" ]; then
  echo "PostgreSQL tests: on ($THWONK_TEST_POSTGRES_URL)" >&2
else
  echo "PostgreSQL tests: SKIPPED (set THWONK_TEST_POSTGRES_URL to run them)" >&2
fi
cargo test --workspace --all-targets "$@"
