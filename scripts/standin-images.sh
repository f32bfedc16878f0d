#!/usr/bin/env bash
# The upstream images the compose files and the Dockerfile need (python slim, uv, redis, zipkin,
# postgres), under exactly the names .env pins. For each one: already in the engine -> kept; pullable -> pulled;
# no registry reachable -> a local stand-in is built from Debian's packages (debootstrap), the PyPI
# wheel of the pinned uv and the Zipkin jar of Maven Central. deploy/README.md lists how each
# stand-in differs from upstream. Elasticsearch, Logstash and Kibana have no stand-in: they are
# pulled when a registry answers, otherwise reported missing (the containers tier then runs
# without them and says so).
#   bash scripts/standin-images.sh          # needs a running Docker engine; root for debootstrap
# Prints one line per image: "<image>: present | pulled | stand-in built | missing".
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${MSA_CACHE_DIR:-$HOME/.cache/msa-platform}"
env_value() { sed -n "s/^$1=//p" .env | tail -n 1; }
PYTHON_IMAGE=$(env_value PYTHON_IMAGE)
UV_IMAGE=$(env_value UV_IMAGE)
REDIS_IMAGE="redis:$(env_value REDIS_VERSION)-alpine"
ZIPKIN_VERSION=$(env_value ZIPKIN_VERSION)
ZIPKIN_IMAGE="openzipkin/zipkin-slim:$ZIPKIN_VERSION"
POSTGRES_IMAGE="postgres:$(env_value POSTGRES_VERSION)-bookworm"
ELASTIC_VERSION=$(env_value ELASTIC_VERSION)
LABEL="org.msa-platform.standin"  # marks a stand-in, so tests and benchmarks can say which ran

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
present() { docker image inspect "$1" >/dev/null 2>&1; }
# Quiet on success (the CLI's legacy-builder notice included), everything on failure.
quiet() { "$@" >"$CACHE/standin.log" 2>&1 || { cat "$CACHE/standin.log" >&2; return 1; }; }
pull() { timeout 300 docker pull -q "$1" >/dev/null 2>&1; }
# The CA bundle the host trusts: a machine behind a TLS-inspecting proxy needs it inside the
# stand-ins too, for uv and apt during builds. Stand-ins only; never in the published Dockerfiles.
HOST_CA=/etc/ssl/certs/ca-certificates.crt

debian_mirror() {
  local uri
  uri=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
        | head -n 1 | awk '{print $2}')
  echo "${uri:-http://deb.debian.org/debian}"
}

build_python() {  # python:<version>-slim-bookworm: Debian bookworm minbase + its python3 (3.11)
  command -v debootstrap >/dev/null || { as_root apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
  local root
  root=$(mktemp -d)
  as_root debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$root" "$(debian_mirror)" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -n 20 "$CACHE/debootstrap.log"; exit 1; }
  [ -f "$HOST_CA" ] && as_root cp "$HOST_CA" "$root/etc/ssl/certs/ca-certificates.crt"
  # Upstream's python lives in /usr/local/bin; compose's healthchecks call `python`.
  as_root ln -sf /usr/bin/python3.11 "$root/usr/local/bin/python"
  as_root ln -sf /usr/bin/python3.11 "$root/usr/local/bin/python3"
  as_root rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  as_root tar -C "$root" -c . | docker import \
    -c 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' -c "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" \
    -c "LABEL $LABEL=debootstrap-bookworm-python3" -c 'CMD ["python3"]' - "$PYTHON_IMAGE" >/dev/null
  as_root rm -rf "$root"
}

build_uv() {  # ghcr.io/astral-sh/uv:<version>: /uv and /uvx from the PyPI wheel of that version
  local version=${UV_IMAGE##*:} dir
  dir=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_17_x86_64 \
    --dest "$dir" "uv==$version"
  python3 -m zipfile -e "$dir"/uv-*.whl "$dir/wheel"
  cp "$dir"/wheel/uv-*.data/scripts/uv "$dir"/wheel/uv-*.data/scripts/uvx "$dir/"
  chmod 755 "$dir/uv" "$dir/uvx"
  printf 'FROM scratch\nCOPY uv uvx /\nLABEL %s=pypi-wheel\n' "$LABEL" \
    | quiet docker build -t "$UV_IMAGE" -f - "$dir"
  rm -rf "$dir"
}

build_redis() {  # redis:<version>-alpine: Debian's redis-server (7.0) on the python stand-in's base
  quiet docker build -t "$REDIS_IMAGE" - <<EOF
FROM $PYTHON_IMAGE
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server \\
 && rm -rf /var/lib/apt/lists/* && mkdir -p /data && chown redis:redis /data
# The official image starts redis-server without a config file, so protected mode is off there;
# Debian's binary defaults to protected mode and refuses clients from other containers.
RUN printf '#!/bin/sh\nif [ "\$1" = redis-server ]; then shift; set -- redis-server --protected-mode no "\$@"; fi\nexec "\$@"\n' \\
      > /usr/local/bin/docker-entrypoint.sh && chmod 755 /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
USER redis
EXPOSE 6379
LABEL $LABEL=debian-redis-server
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
EOF
}

build_zipkin() {  # openzipkin/zipkin-slim:<version>: Debian's Java 17 + the exec jar of Maven Central
  local jar="$CACHE/zipkin-server-$ZIPKIN_VERSION-exec.jar" dir
  if [ ! -f "$jar" ]; then
    mvn -q dependency:copy -Dartifact="io.zipkin:zipkin-server:$ZIPKIN_VERSION:jar:exec" -DoutputDirectory="$CACHE"
  fi
  dir=$(mktemp -d)
  cp "$jar" "$dir/zipkin.jar"
  quiet docker build -t "$ZIPKIN_IMAGE" -f - "$dir" <<EOF
FROM $PYTHON_IMAGE
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless wget \\
 && rm -rf /var/lib/apt/lists/* && useradd --system --uid 1000 --no-create-home zipkin
COPY zipkin.jar /zipkin/zipkin.jar
WORKDIR /zipkin
USER zipkin
EXPOSE 9411
LABEL $LABEL=maven-central-exec-jar
ENTRYPOINT ["sh", "-c", "exec java \$JAVA_OPTS -jar /zipkin/zipkin.jar"]
EOF
  rm -rf "$dir"
}

build_postgres() {  # postgres:<version>-bookworm: Debian bookworm's PostgreSQL 15 on the python
  # stand-in's base, behind the part of the official image's interface compose uses
  # (scripts/standin/postgres-entrypoint.sh says which).
  local dir
  dir=$(mktemp -d)
  cp scripts/standin/postgres-entrypoint.sh "$dir/docker-entrypoint.sh"
  quiet docker build -t "$POSTGRES_IMAGE" -f - "$dir" <<EOF
FROM $PYTHON_IMAGE
RUN mkdir -p /etc/postgresql-common/createcluster.d \\
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/no-main-cluster.conf \\
 && apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql-15 \\
 && rm -rf /var/lib/apt/lists/* \\
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql /docker-entrypoint-initdb.d \\
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \\
 && chmod 700 /var/lib/postgresql/data
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
ENV PGDATA=/var/lib/postgresql/data
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
STOPSIGNAL SIGINT
EXPOSE 5432
LABEL $LABEL=debian-postgresql-15
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
EOF
  rm -rf "$dir"
}

mkdir -p "$CACHE"
ensure() {  # ensure IMAGE BUILDER
  local started=$SECONDS
  if present "$1"; then echo "$1: present"
  elif pull "$1"; then echo "$1: pulled"
  else "$2"; echo "$1: stand-in built ($((SECONDS - started)) s)"
  fi
}
ensure "$PYTHON_IMAGE" build_python  # first: redis and zipkin stand-ins build on it
ensure "$UV_IMAGE" build_uv
ensure "$REDIS_IMAGE" build_redis
ensure "$ZIPKIN_IMAGE" build_zipkin
ensure "$POSTGRES_IMAGE" build_postgres
for name in elasticsearch logstash kibana; do
  image="docker.elastic.co/$name/$name:$ELASTIC_VERSION"
  if present "$image"; then echo "$image: present"
  elif pull "$image"; then echo "$image: pulled"
  else echo "$image: missing (no registry reachable, no stand-in possible)"
  fi
done
