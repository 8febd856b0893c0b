#!/usr/bin/env bash
# Start SmilePass in the foreground: Redis (only if none is available),
# an RQ worker for the `default` queue (mail, sweeps, SLA), separate RQ
# workers for the `scans` queue (so that a long repair never holds up the
# rest), `rq cron` and the gunicorn web server. `make run` calls this after
# installing everything and applying migrations.
#
# Environment:
#   REDIS_URL    use this Redis as is; otherwise 127.0.0.1:6379, started
#                here when nothing answers there
#   PORT         web port on 127.0.0.1 (default 5000)
#   WEB_WORKERS  gunicorn worker processes (default 2)
#   WEB_THREADS  threads per worker (default 64): each open ticket page holds
#                one for its live event stream (docs/live.md)
#   SCAN_WORKERS scan repair workers (default: one per spare core, i.e. the
#                number of cores less one, at least 1)
#
# Ctrl-C (or SIGTERM, SIGHUP) stops everything this script started, and only that.
# If any of them dies on its own, the rest are stopped and the exit is 1.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

# Exported: the worker and the web server build mail links from it (unless SMILEPASS_BASE_URL is set).
export PORT=${PORT:-5000}
WEB_WORKERS=${WEB_WORKERS:-2}
WEB_THREADS=${WEB_THREADS:-64}
SCAN_WORKERS=${SCAN_WORKERS:-$(($(nproc) > 1 ? $(nproc) - 1 : 1))}
VENV=.venv

REDIS_PID=
WORKER_PID=
SCAN_PIDS=()
CRON_PID=
WEB_PID=
stop_requested=

# Use REDIS_URL if given; else reuse a Redis on 6379 (a system service we
# must never stop); else start our own there, as a child we will stop.
ensure_redis() {
    if [ -n "${REDIS_URL:-}" ]; then
        log "using Redis at REDIS_URL"
        return
    fi
    if redis_answers 127.0.0.1 6379; then
        log "using the Redis already running on 127.0.0.1:6379"
    else
        log "starting redis-server on 127.0.0.1:6379 (data dir instance/redis)"
        start_redis 6379 instance/redis
    fi
    export REDIS_URL=redis://127.0.0.1:6379/0
}

# One worker for mail, sweeps and SLA jobs; scan repairs (which can take
# minutes) get workers of their own.
start_workers() {
    local n
    spawn "$VENV/bin/python" -m workers.worker default
    WORKER_PID=$SPAWNED_PID
    for ((n = 0; n < SCAN_WORKERS; n++)); do
        spawn "$VENV/bin/python" -m workers.worker scans
        SCAN_PIDS+=("$SPAWNED_PID")
    done
    log "workers: 1 for default, $SCAN_WORKERS for scans"
}

# True while every scan worker runs.
scan_workers_alive() {
    local pid
    for pid in "${SCAN_PIDS[@]}"; do alive "$pid" || return 1; done
    return 0
}

# Periodic jobs (workers/cron.py): e.g. the outbox sweep that re-sends mail
# written while Redis was down.
start_cron() {
    spawn "$VENV/bin/rq" cron --url "$REDIS_URL" workers.cron
    CRON_PID=$SPAWNED_PID
}

start_web() {
    # gthread: a live ticket page's event stream holds a thread, not a whole worker. No control
    # socket: gunicorn 27 puts it at one path per user, which any other gunicorn of that user takes over.
    spawn "$VENV/bin/gunicorn" --no-control-socket --workers "$WEB_WORKERS" --worker-class gthread \
        --threads "$WEB_THREADS" --bind "127.0.0.1:$PORT" app:app
    WEB_PID=$SPAWNED_PID
}

# Web and worker first, together, so they finish in-flight work while
# Redis is still there; Redis last, and only if we started it. Runs once:
# a second Ctrl-C must not cut the clean-up short.
stop_all() {
    trap - EXIT
    trap '' INT TERM HUP
    stop_pids "$WEB_PID" "$WORKER_PID" "${SCAN_PIDS[@]}" "$CRON_PID"
    stop_pids "$REDIS_PID"
}

# Where mail goes, as the app decides it (smilepass/config.py): without SMTP_HOST it waits in the outbox.
mail_destination() {
    if [ -n "${SMTP_HOST:-}" ]; then
        echo "Mail is sent through the SMTP server $SMTP_HOST:${SMTP_PORT:-25}."
    else
        echo "Mail is kept in the outbox (no SMTP_HOST): read it under Administration → Outbox."
    fi
    echo "  Links in mails start with ${SMILEPASS_BASE_URL:-http://127.0.0.1:$PORT}."
}

# Print where to go once gunicorn really listens, so the URL is not shown
# for a server that is about to crash on import.
announce_when_up() {
    local tries
    for ((tries = 300; tries > 0; tries--)); do
        if port_open 127.0.0.1 "$PORT"; then
            cat >&2 <<EOF

  SmilePass is running at http://127.0.0.1:$PORT/
  $(mail_destination)
  First time? Create an admin account in another terminal:
      $VENV/bin/flask --app app users create you@clinic.example --role admin
  Press Ctrl-C to stop.

EOF
            return
        fi
        [ -n "$stop_requested" ] && return
        alive "$WEB_PID" && alive "$WORKER_PID" && scan_workers_alive && alive "$CRON_PID" || return
        sleep 0.1
    done
    warn "nothing listens on 127.0.0.1:$PORT after 30 s"
}

# Name whichever child is gone, for the error message.
dead_children() {
    local names=()
    alive "$WEB_PID" || names+=(gunicorn)
    alive "$WORKER_PID" || names+=(worker)
    scan_workers_alive || names+=("scan worker")
    alive "$CRON_PID" || names+=("rq cron")
    [ -z "$REDIS_PID" ] || alive "$REDIS_PID" || names+=(redis-server)
    echo "${names[*]}"
}

main() {
    [ -x "$VENV/bin/gunicorn" ] || die "$VENV is not set up: run 'make setup' first"
    [[ $SCAN_WORKERS =~ ^[1-9][0-9]*$ ]] || die "SCAN_WORKERS must be a whole number of at least 1"

    # Set before anything starts, so an early Ctrl-C still cleans up.
    # HUP too: closing the terminal must not leave orphans behind.
    trap 'stop_requested=1' INT TERM HUP
    trap stop_all EXIT

    ensure_redis
    if [ -z "$stop_requested" ]; then
        start_workers
        start_cron
        start_web
        announce_when_up
    fi

    # Sleep until a child exits or a signal arrives (the trap makes
    # `wait -n` return early, which is exactly what we want).
    local children=("$WEB_PID" "$WORKER_PID" "${SCAN_PIDS[@]}" "$CRON_PID")
    if [ -n "$REDIS_PID" ]; then children+=("$REDIS_PID"); fi
    while [ -z "$stop_requested" ] && alive "$WEB_PID" && alive "$WORKER_PID" && scan_workers_alive &&
        alive "$CRON_PID" &&
        { [ -z "$REDIS_PID" ] || alive "$REDIS_PID"; }; do
        wait -n "${children[@]}" || true
    done

    if [ -n "$stop_requested" ]; then
        log "stopping"
        stop_all
        exit 0
    fi
    local dead
    dead=$(dead_children)
    log "${dead:-a child process} exited; stopping the rest"
    stop_all
    exit 1
}

main "$@"
