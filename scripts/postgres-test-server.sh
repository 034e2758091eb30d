#!/usr/bin/env bash
# A private, temporary PostgreSQL server for the tests and benchmarks. Source this file,
# then call `start_test_postgres`: it installs PostgreSQL with apt when missing, runs
# initdb into a fresh temporary directory (as the `postgres` user when run as root:
# initdb refuses root), starts the server on a free private port (from 55432 up) with a
# private unix socket directory, creates the database `diego_test`, exports
#   DIEGO_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/diego_test
# (and DIEGO_TEST_POSTGRES_DATA / DIEGO_TEST_POSTGRES_BIN for tests that restart it)
# and registers `stop_test_postgres` on EXIT, so the server is stopped and its directory
# removed when the calling script ends, whether it passed or failed.
#
# Not named setup-*.sh: test.sh sources it (the server must outlive a setup script).

_pg_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

start_test_postgres() {
    local bin
    bin="$(_pg_bin)"
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        if ! command -v apt-get >/dev/null 2>&1; then
            echo "postgres: PostgreSQL is not installed and there is no apt-get" >&2
            return 1
        fi
        echo "postgres: installing PostgreSQL with apt" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq postgresql-15 >/dev/null 2>&1 || apt-get install -y -qq postgresql >/dev/null
        bin="$(_pg_bin)"
        if [ -z "$bin" ]; then
            echo "postgres: installation did not provide /usr/lib/postgresql/*/bin" >&2
            return 1
        fi
    fi

    local as=()
    if [ "$(id -u)" = "0" ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/sh postgres
        as=(runuser -u postgres --)
    fi

    DIEGO_PG_DIR="$(mktemp -d /tmp/diego-pg.XXXXXX)"
    mkdir -p "$DIEGO_PG_DIR/data" "$DIEGO_PG_DIR/socket"
    chmod 700 "$DIEGO_PG_DIR/data"
    if [ "$(id -u)" = "0" ]; then
        chown -R postgres: "$DIEGO_PG_DIR"
    fi
    DIEGO_PG_BIN="$bin"
    trap stop_test_postgres EXIT

    "${as[@]}" "$bin/initdb" -D "$DIEGO_PG_DIR/data" -U postgres --auth=trust \
        -E UTF8 --no-locale >"$DIEGO_PG_DIR/initdb.log" 2>&1 || {
        cat "$DIEGO_PG_DIR/initdb.log" >&2
        return 1
    }

    # A free port: nothing listening (a refused connection) and the server binds it.
    # The bind can still fail when the port is held by a connection that is not
    # listening (an outgoing one, or one closing): then the next port is tried.
    local port=55432 started=""
    while [ "$port" -lt 55532 ]; do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            rm -f "$DIEGO_PG_DIR/server.log"
            if "${as[@]}" "$bin/pg_ctl" -D "$DIEGO_PG_DIR/data" -l "$DIEGO_PG_DIR/server.log" -w -t 60 \
                -o "-p $port -k $DIEGO_PG_DIR/socket -c listen_addresses=127.0.0.1 -c max_connections=500" \
                start >/dev/null 2>&1; then
                started=1
                break
            fi
            if ! grep -q "Address already in use" "$DIEGO_PG_DIR/server.log"; then
                cat "$DIEGO_PG_DIR/server.log" >&2
                return 1
            fi
        fi
        port=$((port + 1))
    done
    if [ -z "$started" ]; then
        echo "postgres: no free port in 55432-55531" >&2
        return 1
    fi
    DIEGO_PG_PORT="$port"
    "${as[@]}" "$bin/createdb" -h "$DIEGO_PG_DIR/socket" -p "$port" -U postgres diego_test
    export DIEGO_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/diego_test"
    # For the tests that restart the server (pg_ctl restart keeps the options above).
    export DIEGO_TEST_POSTGRES_DATA="$DIEGO_PG_DIR/data"
    export DIEGO_TEST_POSTGRES_BIN="$bin"
    echo "postgres: running on port $port (data in $DIEGO_PG_DIR)" >&2
}

stop_test_postgres() {
    if [ -n "${DIEGO_PG_DIR:-}" ] && [ -d "$DIEGO_PG_DIR" ]; then
        local as=()
        [ "$(id -u)" = "0" ] && as=(runuser -u postgres --)
        if [ -f "$DIEGO_PG_DIR/data/postmaster.pid" ]; then
            "${as[@]}" "$DIEGO_PG_BIN/pg_ctl" -D "$DIEGO_PG_DIR/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
        fi
        rm -rf "$DIEGO_PG_DIR"
        echo "postgres: stopped" >&2
    fi
    DIEGO_PG_DIR=""
}
