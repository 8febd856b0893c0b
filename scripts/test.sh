#!/usr/bin/env bash
# Run the test suite twice: against SQLite, then against PostgreSQL when one
# is reachable. `make test` calls this after installing everything. Each pass
# runs in parallel with pytest-xdist (one process per core; each has its own
# database and Redis database, see tests/conftest.py) and prints its wall time.
#
# Environment:
#   TEST_WORKERS                  pytest-xdist processes per pass: "auto" (one
#                                 per core, the default) or a number; 0 runs
#                                 in this one process
#   PYTEST_ARGS                   extra pytest arguments, shell-quoted
#                                 (e.g. PYTEST_ARGS='-k "auth and not slow" -x')
#   REDIS_URL                     Redis to use as is; otherwise 127.0.0.1:6379
#                                 (database 15), or a private redis-server
#                                 started here when nothing answers there
#   SMILEPASS_TEST_DATABASE_URL   PostgreSQL for the second pass; when set it
#                                 is used as is, otherwise
#                                 postgresql://postgres@127.0.0.1:5432/test
#                                 if a server answers there
#
# Exits non-zero if either pass fails.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

VENV=.venv
DEFAULT_PG_URL=postgresql://postgres@127.0.0.1:5432/test

REDIS_PID=
REDIS_DIR=
PYTEST=()

cleanup() {
    stop_pids "$REDIS_PID"
    if [ -n "$REDIS_DIR" ]; then rm -rf "$REDIS_DIR"; fi
}

# First port from 6390 up where nothing listens, so a private server never
# collides with a developer's own Redis or a parallel test run.
free_port() {
    local port
    for port in $(seq 6390 6499); do
        port_open 127.0.0.1 "$port" || {
            echo "$port"
            return
        }
    done
    die "no free port between 6390 and 6499 for a test redis-server"
}

ensure_redis() {
    if [ -n "${REDIS_URL:-}" ]; then
        log "tests use Redis at REDIS_URL"
    elif redis_answers 127.0.0.1 6379; then
        # Database 15, not 0: tests may flush their database, and 0 is the
        # one `make run` keeps its queue in.
        export REDIS_URL=redis://127.0.0.1:6379/15
        log "tests use the Redis on 127.0.0.1:6379, database 15"
    else
        local port
        port=$(free_port)
        REDIS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/smilepass-test-redis.XXXXXX")
        log "starting a private redis-server on 127.0.0.1:$port"
        start_redis "$port" "$REDIS_DIR"
        export REDIS_URL="redis://127.0.0.1:$port/0"
    fi
}

# PYTEST_ARGS is one string; xargs splits it honouring quotes, so
# -k "a and b" stays one argument, without eval-ing what the user typed.
parse_pytest_args() {
    local arg
    # At most 13 workers: each needs a Redis database of its own (1..13).
    PYTEST=("$VENV/bin/python" -m pytest -n "${TEST_WORKERS:-auto}" --maxprocesses 13)
    while IFS= read -r arg; do
        PYTEST+=("$arg")
    done < <(printf '%s' "${PYTEST_ARGS:-}" | xargs -r printf '%s\n')
}

pg_answers() {
    command -v pg_isready >/dev/null 2>&1 &&
        pg_isready -q -h 127.0.0.1 -p 5432
}

# The Debian cluster is down after a reboot of a machine without systemd
# (CI containers): try to start it, as root, before giving up.
try_start_postgres() {
    local conf version
    command -v pg_ctlcluster >/dev/null 2>&1 || return 1
    for conf in /etc/postgresql/*/main; do
        [ -d "$conf" ] || continue
        version=$(basename "$(dirname "$conf")")
        log "starting PostgreSQL $version/main"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || continue
        pg_answers && return 0
    done
    return 1
}

# A fresh cluster has no `test` database; make it so the default URL works.
# Best effort: if this fails, pytest reports the real connection error.
ensure_test_database() {
    command -v psql >/dev/null 2>&1 || return 0
    local exists
    exists=$(psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'test'" 2>/dev/null) || return 0
    [ "$exists" = 1 ] && return 0
    log "creating PostgreSQL database 'test'"
    createdb -h 127.0.0.1 -p 5432 -U postgres test || warn "could not create database 'test'"
}

# "7m12s" for a number of seconds.
minutes_seconds() {
    printf '%dm%02ds' $(($1 / 60)) $(($1 % 60))
}

# Run one pass; its result ("passed in 7m12s" / "failed (exit 1) in ...")
# lands in the variable named by $1.
run_pass() {
    local -n result=$1
    shift
    local started=$SECONDS status=0
    "$@" || status=$?
    local took
    took=$(minutes_seconds $((SECONDS - started)))
    if [ "$status" = 0 ]; then
        result="passed in $took"
    else
        result="failed (exit $status) in $took"
    fi
}

main() {
    [ -x "$VENV/bin/python" ] || die "$VENV is not set up: run 'make setup' first"
    trap cleanup EXIT
    # pytest turns Ctrl-C into a normal failure exit; without this trap the
    # script would carry on to the next pass instead of stopping.
    trap 'exit 130' INT TERM HUP
    ensure_redis
    parse_pytest_args

    # The SQLite pass must not pick up a PostgreSQL URL from the caller.
    local pg_url=${SMILEPASS_TEST_DATABASE_URL:-}
    unset SMILEPASS_TEST_DATABASE_URL

    local sqlite_result=passed pg_result=skipped
    log "pass 1/2: SQLite"
    run_pass sqlite_result "${PYTEST[@]}"
    echo "SQLite pass: $sqlite_result"

    if [ -z "$pg_url" ]; then
        if pg_answers || try_start_postgres; then
            pg_url=$DEFAULT_PG_URL
            ensure_test_database
        else
            echo "PostgreSQL not reachable on 127.0.0.1:5432: skipping the PostgreSQL pass"
        fi
    fi
    if [ -n "$pg_url" ]; then
        log "pass 2/2: PostgreSQL"
        run_pass pg_result env SMILEPASS_TEST_DATABASE_URL="$pg_url" "${PYTEST[@]}"
        echo "PostgreSQL pass: $pg_result"
    fi

    echo
    echo "SQLite pass:     $sqlite_result"
    echo "PostgreSQL pass: $pg_result"
    [[ $sqlite_result == passed* && $pg_result != failed* ]] || exit 1
}

main "$@"
