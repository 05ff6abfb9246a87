#!/usr/bin/env bash
# Installs what Workers needs on a Debian machine, idempotently (fast when everything is there),
# and builds the solution. Used by ops/demo.sh and ops/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(postgresql ffmpeg espeak-ng python3-yaml)
# The hung-mount tests of issue 13: a FUSE file system whose reads never return.
APT_PACKAGES+=(fuse3 python3-fusepy)
# The browser tests (tests/Workers.Browser.Tests) drive Debian's chromium through Playwright,
# which never downloads a browser of its own; a font so that screenshots have readable text.
APT_PACKAGES+=(chromium fonts-dejavu-core)
# The clock-skew tests and `workers-bench soak` run nodes with a shifted wall clock through libfaketime (issue 11).
APT_PACKAGES+=(libfaketime)
# npm fetches the models (models/models.json); Debian's npm if none is installed. ONNX Runtime itself
# comes from its NuGet package with the build.
command -v npm >/dev/null || APT_PACKAGES+=(npm)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v dotnet >/dev/null; then
  echo "setup: the .NET 10 SDK is required (dotnet not on PATH): https://learn.microsoft.com/dotnet/core/install/linux-debian" >&2
  exit 1
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
dotnet build Workers.sln -c Release -nologo -v quiet -clp:ErrorsOnly

# The models, pinned by version and sha256; a no-op when they verify.
dotnet src/Workers.Cli/bin/Release/net10.0/workers.dll models fetch
