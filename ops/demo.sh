#!/usr/bin/env bash
# The main job end to end on the embedded default: a private local PostgreSQL and a generated corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
ops/setup.sh
exec dotnet src/Workers.Cli/bin/Release/net10.0/workers.dll demo "$@"
