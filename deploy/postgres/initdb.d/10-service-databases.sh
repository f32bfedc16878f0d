#!/bin/sh
# Database per service on one PostgreSQL server (docker-compose.scale.yml): a role and a database
# for each domain service, the role owning its database and nothing else, so no service can read
# another's tables. The postgres image runs this once, when its data volume is empty.
# Passwords come from the environment compose gives this container (<SERVICE>_DB_PASSWORD).
set -eu

for service in catalog inventory reviews orders; do
    variable="$(echo "$service" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
    password=$(printenv "$variable") || { echo "$variable is not set" >&2; exit 1; }
    psql --variable=ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
        --set=name="$service" --set=password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
    echo "database $service: created, owned by role $service"
done
