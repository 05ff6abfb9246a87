#!/usr/bin/env bash
# The fault mix for a chosen time (issues 6 and 11): worker and node SIGKILLs, SIGSTOP past the lease,
# killed connections, a node restarted with its clock 3 minutes off (libfaketime), and, without a
# connection string, PostgreSQL restarts and failovers, then a summary table.
# Exit 0 only with no duplicates, no lost audio seconds, and segments equal to a clean run's.
#   ops/soak.sh MINUTES [--nodes 2] [--workers-per-node 2] [--corpus-hours 1] [--seed N] [--keep]
# Uses ConnectionStrings__Workers when set; else a primary and a synchronous standby of its own
# (under the soak's temp folder, removed afterwards), reached through one two-host connection string.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ] || ! [[ "$1" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
  echo "usage: ops/soak.sh MINUTES [workers-bench soak options]" >&2
  exit 2
fi
minutes="$1"; shift
ops/setup.sh
exec dotnet bench/Workers.Bench/bin/Release/net10.0/workers-bench.dll soak --minutes "$minutes" "$@"
