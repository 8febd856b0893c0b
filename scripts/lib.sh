# shellcheck shell=bash
# Helpers shared by the scripts in this folder. Source it, don't run it:
#   . scripts/lib.sh

# Print to stderr so messages never mix with output a caller may capture.
log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# True when something accepts TCP connections on HOST:PORT. Uses bash's
# /dev/tcp so it needs no extra package (nc is not on a minimal Debian).
port_open() {
    local host=$1 port=$2
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# True when a Redis server answers PING on HOST:PORT.
redis_answers() {
    local host=$1 port=$2 reply
    command -v redis-cli >/dev/null 2>&1 || return 1
    reply=$(redis-cli -h "$host" -p "$port" ping 2>/dev/null) || return 1
    [ "$reply" = PONG ]
}

# True while process PID is running. bash reaps its own background
# children as they exit, so a dead child fails this at once.
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# True while any process is left in process group PGID.
group_alive() { [ -n "$1" ] && kill -0 -- "-$1" 2>/dev/null; }

# spawn CMD...: run CMD in the background in a session of its own and set
# SPAWNED_PID (which is also its process group id).
# Why a session of its own: a Ctrl-C then reaches only the script, which
# stops the children in a sensible order, and stopping a child's group also
# catches what it forked (gunicorn's workers, rq's scheduler).
# setsid does not fork here, because a background job of a script without
# job control is never a group leader, so $! is the command itself.
spawn() {
    setsid "$@" &
    SPAWNED_PID=$!
}

# stop_pids PID...: stop processes started with spawn, and everything they
# forked. Each leader gets SIGTERM alone first, so rq can finish its current
# job (its work horse dies on a group-wide SIGTERM) and gunicorn its
# requests; after 15 s, or once the leader is gone, the rest of its group
# gets SIGTERM, and after 5 s more SIGKILL. Empty PIDs are skipped.
stop_pids() {
    local pid tries
    for pid in "$@"; do
        if alive "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
    done
    for ((tries = 150; tries > 0; tries--)); do
        any_alive "$@" || break
        sleep 0.1
    done
    for pid in "$@"; do
        if group_alive "$pid"; then kill -TERM -- "-$pid" 2>/dev/null || true; fi
    done
    for ((tries = 50; tries > 0; tries--)); do
        any_group_alive "$@" || break
        sleep 0.1
    done
    for pid in "$@"; do
        if group_alive "$pid"; then
            warn "process group $pid ignored SIGTERM; killing it"
            kill -KILL -- "-$pid" 2>/dev/null || true
        fi
        # Reap, so no zombie is left and the exit status is collected.
        if [ -n "$pid" ]; then wait "$pid" 2>/dev/null || true; fi
    done
    return 0
}

any_alive() {
    local pid
    for pid in "$@"; do alive "$pid" && return 0; done
    return 1
}

any_group_alive() {
    local pid
    for pid in "$@"; do group_alive "$pid" && return 0; done
    return 1
}

# start_redis PORT DIR: start a throw-away redis-server bound to 127.0.0.1
# and wait until it answers. Sets REDIS_PID; stop it with stop_pids.
# It logs to DIR/redis.log. No data is written (no RDB, no AOF), and
# noeviction makes a full memory show up as errors instead of silently
# dropped jobs.
start_redis() {
    local port=$1 dir=$2 tries
    mkdir -p "$dir"
    # Absolute: redis changes into --dir before it opens --logfile.
    dir=$(cd "$dir" && pwd)
    spawn redis-server \
        --bind 127.0.0.1 --port "$port" \
        --save "" --appendonly no \
        --maxmemory-policy noeviction \
        --dir "$dir" --logfile "$dir/redis.log"
    REDIS_PID=$SPAWNED_PID
    # Up to 10 s: redis normally answers within a few milliseconds.
    for ((tries = 100; tries > 0; tries--)); do
        redis_answers 127.0.0.1 "$port" && return 0
        alive "$REDIS_PID" || break
        sleep 0.1
    done
    stop_pids "$REDIS_PID"
    REDIS_PID=
    tail -n 5 "$dir/redis.log" >&2 2>/dev/null || true
    die "redis-server did not start on 127.0.0.1:$port (port taken? set REDIS_URL to use another server)"
}
