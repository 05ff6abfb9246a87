#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test. Database tests get throwaway PostgreSQL
# clusters under one folder that is removed (servers stopped first) when the run ends, however it ends.
set -uo pipefail
cd "$(dirname "$0")/.."
ops/setup.sh || exit 1

export WORKERS_TEST_PG_ROOT
WORKERS_TEST_PG_ROOT="$(mktemp -d /tmp/workers-test-XXXXXX)"
chmod 755 "$WORKERS_TEST_PG_ROOT"
cleanup() {
  for d in "$WORKERS_TEST_PG_ROOT"/*/data; do
    [ -f "$d/postmaster.pid" ] || continue
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$bin/pg_ctl" stop -D "$d" -m immediate -s >/dev/null 2>&1
    else "$bin/pg_ctl" stop -D "$d" -m immediate -s >/dev/null 2>&1; fi
  done
  rm -rf "$WORKERS_TEST_PG_ROOT"
}
trap cleanup EXIT

log=$(mktemp)
dotnet test Workers.sln -c Release --no-build -nologo "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

# One closing line for the whole run, summed over the test assemblies.
awk '/^(Passed|Failed)!/ {
  for (i = 1; i <= NF; i++) { v = $(i+1); gsub(",", "", v)
    if ($i == "Passed:") p += v; else if ($i == "Failed:") f += v; else if ($i == "Skipped:") s += v }
} END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
rm -f "$log"
exit $rc
