#!/usr/bin/env bash
# The one test command (README "Run the tests"; CI runs it through .ci/run).
# On a fresh Debian/Ubuntu machine it installs what the tests need, then runs lint, types and
# every test against real components: redis-server, the Zipkin server (Java), headless Chromium.
#   bash scripts/test.sh                 # everything
#   bash scripts/test.sh -k breaker      # extra arguments go to pytest
# MSA_STRICT=1 (CI) turns a skip for missing infrastructure into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

export UV_PYTHON_DOWNLOADS=never  # use the machine's Python (3.11+)
ZIPKIN_VERSION=3.6.1
CACHE="${MSA_CACHE_DIR:-$HOME/.cache/msa-platform}"
ZIPKIN_JAR="$CACHE/zipkin-server-$ZIPKIN_VERSION-exec.jar"

say() { printf '\n== %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. System packages: redis-server, Java + Maven (Zipkin), Chromium (browser tests).
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v java >/dev/null || missing+=(default-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} (apt)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# 2. uv, then the workspace (every member, dev tools) from the lock file.
export PATH="$HOME/.local/bin:$PATH"
if ! command -v uv >/dev/null; then
  say "installing uv"
  # pip first (PyPI); Debian's system Python refuses plain --user installs (PEP 668).
  python3 -m pip install --quiet --user uv 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages uv 2>/dev/null \
    || { command -v pipx >/dev/null && pipx install uv; } \
    || curl -LsSf https://astral.sh/uv/install.sh | sh
fi
say "uv sync"
uv sync --all-packages --frozen --quiet

# 3. The Zipkin server jar, once, from Maven Central.
if [ ! -f "$ZIPKIN_JAR" ] && [ -z "${MSA_ZIPKIN_JAR:-}" ]; then
  say "fetching Zipkin $ZIPKIN_VERSION"
  mkdir -p "$CACHE"
  mvn -q dependency:copy -Dartifact="io.zipkin:zipkin-server:$ZIPKIN_VERSION:jar:exec" -DoutputDirectory="$CACHE"
fi

# 4. Lint and types, then the tests.
say "ruff"
uv run ruff check .
uv run ruff format --check .
say "mypy"
uv run mypy
say "pytest"
mkdir -p test-artifacts
uv run pytest "$@"
