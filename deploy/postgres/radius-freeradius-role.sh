#!/bin/sh
# Runs once, when the radius-db volume is first initialised (the postgres
# image runs /docker-entrypoint-initdb.d/*): makes FreeRADIUS's own login
# role. Its grants (deploy/freeradius/grants.postgresql.sql) are applied by
# the radius-grants service after `ispd migrate` has made the tables.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v password="$FREERADIUS_DB_PASSWORD" <<'SQL'
CREATE ROLE freeradius LOGIN PASSWORD :'password';
SQL
