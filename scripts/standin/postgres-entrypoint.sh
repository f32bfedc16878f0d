#!/bin/sh
# Entrypoint of the postgres stand-in image (scripts/standin-images.sh): the part of the official
# image's interface that docker-compose.scale.yml uses. POSTGRES_USER (default postgres) and
# POSTGRES_PASSWORD make the superuser; on an empty data volume the files in
# /docker-entrypoint-initdb.d run once (*.sh executed, or sourced when not executable; *.sql fed to
# psql) against a server that listens on its socket only; then the server listens on every
# address, passwords required (scram-sha-256) for connections over the network.
set -e

if [ "$(id -u)" = 0 ]; then  # root: own the volume, then run as postgres, as upstream does
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

user=${POSTGRES_USER:-postgres}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    [ -n "${POSTGRES_PASSWORD:-}" ] || { echo "POSTGRES_PASSWORD is required" >&2; exit 1; }
    pwfile=$(mktemp)
    printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses= -k /var/run/postgresql" -w start >/dev/null
    export PGHOST=/var/run/postgresql
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh) if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
            *.sql) psql -v ON_ERROR_STOP=1 -U "$user" -d postgres -f "$f" ;;
        esac
    done
    unset PGHOST
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "PostgreSQL init process complete; ready for start up."
fi

if [ "$1" = postgres ]; then
    shift
    exec postgres -D "$PGDATA" -c listen_addresses='*' -k /var/run/postgresql "$@"
fi
exec "$@"
