#!/bin/sh
# First start on an empty volume: a cluster whose superuser is POSTGRES_USER (password login from
# other hosts, SCRAM only) and the database POSTGRES_DB, as the official image does; then the server.
set -eu
: "${POSTGRES_USER:?}" "${POSTGRES_PASSWORD:?}"
DB=${POSTGRES_DB:-$POSTGRES_USER}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile=$(mktemp) && chmod 600 "$pwfile"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    # Set up on a private socket with no TCP: pg_isready (the health check) stays "no response" until
    # the database exists and the real server runs.
    sock=$(mktemp -d)
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories=$sock" start >/dev/null
    if [ "$DB" != postgres ]; then
        # psql quotes the name (:"db"); its variables are expanded in input, not in -c
        echo 'create database :"db"' | psql -v ON_ERROR_STOP=1 -h "$sock" -U "$POSTGRES_USER" -d postgres -q -v db="$DB"
    fi
    pg_ctl -D "$PGDATA" -w -m fast stop >/dev/null
    rmdir "$sock"
fi
exec postgres -c listen_addresses='*'
