#!/usr/bin/env bash
# Install (or update) SmilePass as a service on this Debian server: `sudo make install HOST=...`.
#
#   code          /opt/smilepass (the tracked files of this checkout, built htmx, compiled translations)
#   venv          /opt/smilepass/venv (runtime packages only: no pytest, no Playwright)
#   instance      /var/lib/smilepass (database, uploads; user smilepass, 0750)
#   backups       /var/backups/smilepass (0750)
#   settings      /etc/smilepass/smilepass.env (root:smilepass 0640; SECRET_KEY generated once)
#   units         /etc/systemd/system/smilepass*.{service,target,timer} (from deploy/systemd/)
#   proxy         /etc/caddy/Caddyfile (HTTPS for HOST; a Caddyfile that is not ours is kept once
#                 as Caddyfile.before-smilepass)
#
# Safe to run again (after `git pull`, or to change HOST): the settings file keeps every edit and only
# gains variables that are missing; SECRET_KEY stays.
#
# Environment:
#   HOST          the portal's host name (first install; later the settings file remembers it)
#   TLS           auto (default), public (Let's Encrypt) or internal (Caddy's own CA, LAN-only names)
#   DATABASE_URL  first install only: PostgreSQL instead of SQLite in the instance folder
#   REDIS_URL     first install only (default redis://127.0.0.1:6379/0)
#   DESTDIR       write everything under this folder instead of / and touch nothing else: no apt, no
#                 user, no chown, no systemctl (for tests and packaging; the venv's scripts then point
#                 into DESTDIR)
set -euo pipefail
umask 022

cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}
PYTHON=${PYTHON:-python3}
SERVICE_USER=smilepass
APP_DIR=/opt/smilepass
STATE_DIR=/var/lib/smilepass
BACKUP_DIR=/var/backups/smilepass
CONF_DIR=/etc/smilepass
ENV_FILE=$CONF_DIR/smilepass.env
UNIT_DIR=/etc/systemd/system
CADDYFILE=/etc/caddy/Caddyfile
UPSTREAM=127.0.0.1:8000
# Marks a Caddyfile as ours, so that a re-run replaces it without keeping a copy.
CADDY_MARK='# Written by SmilePass (scripts/install.sh)'
SRC=$(pwd)

# Where PATH really is on disk: under DESTDIR when one is given.
at() { printf '%s%s' "$DESTDIR" "$1"; }

# On a real install only: owner and group of PATH...
own() {
    local owner=$1
    shift
    [ -n "$DESTDIR" ] || chown "$owner" "$@"
}

installer() { "$PYTHON" scripts/installer.py "$@"; }

check() {
    if [ -z "$DESTDIR" ] && [ "$(id -u)" -ne 0 ]; then
        die "run it as root: sudo make install HOST=portal.clinic.example"
    fi
    [ -f static/vendor/htmx.min.js ] || die "static/vendor/htmx.min.js is missing: run 'sudo make install', which builds it"
    command -v git >/dev/null 2>&1 && git rev-parse --git-dir >/dev/null 2>&1 ||
        die "run it from a git checkout of SmilePass (the installed files are the tracked ones)"
}

system_packages() {
    if [ -n "$DESTDIR" ]; then
        log "DESTDIR: skipping Debian packages (caddy, redis-server, python3-venv)"
        return
    fi
    bash scripts/system-deps.sh redis-server libusb-1.0-0 caddy python3-venv
}

system_user() {
    if [ -n "$DESTDIR" ]; then
        log "DESTDIR: skipping the system user $SERVICE_USER"
    elif id "$SERVICE_USER" >/dev/null 2>&1; then
        log "system user $SERVICE_USER exists"
    else
        log "creating the system user $SERVICE_USER (home $STATE_DIR, no login shell)"
        useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
            --shell /usr/sbin/nologin --comment "SmilePass" "$SERVICE_USER"
    fi
}

# The instance and the backups: only the service user (and root) may look inside.
data_dirs() {
    local dir
    for dir in "$STATE_DIR" "$STATE_DIR/uploads" "$BACKUP_DIR"; do
        install -d -m 0750 "$(at "$dir")"
        chmod 0750 "$(at "$dir")"
        own "$SERVICE_USER:$SERVICE_USER" "$(at "$dir")"
    done
    install -d -m 0750 "$(at "$CONF_DIR")"
    own "root:$SERVICE_USER" "$(at "$CONF_DIR")"
}

# The tracked files of this checkout (as they are in the working tree) without tests and benchmarks,
# plus the built htmx. Staged next to the old copy and swapped in, so a running server never sees a
# half-copied tree; the venv moves over.
copy_code() {
    local target new old
    target=$(at "$APP_DIR")
    new=$target.new
    old=$target.old
    log "copying the code to $APP_DIR"
    rm -rf "$new" "$old"
    mkdir -p "$new" "$(dirname "$target")"
    git ls-files -z -- . ':(exclude)tests/' ':(exclude)bench/' | tar --null -T - -cf - | tar -xf - -C "$new"
    mkdir -p "$new/static/vendor"
    cp static/vendor/htmx.min.js "$new/static/vendor/"
    if [ -d "$target" ]; then
        [ -d "$target/venv" ] && mv "$target/venv" "$new/venv"
        mv "$target" "$old"
    fi
    mv "$new" "$target"
    rm -rf "$old"
}

# Runtime packages only (pyproject's dependencies, not its [test] extras). pip's cache is kept, so a
# re-run downloads nothing new.
runtime_venv() {
    local app venv
    app=$(at "$APP_DIR")
    venv=$app/venv
    if [ ! -x "$venv/bin/python" ]; then
        log "creating the venv $APP_DIR/venv"
        "$PYTHON" -m venv "$venv"
    fi
    log "installing SmilePass and its runtime packages into $APP_DIR/venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$app"
    # pip built the wheel inside the copy; its leftovers are not code.
    rm -rf "$app/build" "$app"/*.egg-info
    "$venv/bin/pybabel" -q compile -d "$app/smilepass/translations"
}

# The settings file: written from deploy/smilepass.env.in the first time; later only the blocks of
# variables it does not name yet are added, and HOST/TLS given on the command line are applied.
settings() {
    local file rendered merged nproc web_workers scan_workers
    file=$(at "$ENV_FILE")
    nproc=$(nproc)
    web_workers=$((2 * nproc + 1))
    scan_workers=$((nproc > 1 ? nproc - 1 : 1))

    if [ -z "$HOST" ]; then
        HOST=$(installer get-env "$file" SMILEPASS_HOST 2>/dev/null) ||
            die "HOST is needed the first time: sudo make install HOST=portal.clinic.example"
    fi
    [[ $HOST =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]] || die "HOST '$HOST' is not a host name"
    if [ -z "$TLS" ]; then
        TLS=$(installer get-env "$file" SMILEPASS_TLS 2>/dev/null) || TLS=auto
    fi
    case $TLS in auto | public | internal) ;; *) die "TLS must be auto, public or internal (not '$TLS')" ;; esac

    rendered=$(mktemp)
    merged=$(mktemp)
    installer render deploy/smilepass.env.in \
        SECRET_KEY="$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(48))')" \
        BASE_URL="https://$HOST" HOST="$HOST" TLS="$TLS" STATE_DIR="$STATE_DIR" BACKUP_DIR="$BACKUP_DIR" \
        DATABASE_URL="${DATABASE_URL:-sqlite:///$STATE_DIR/smilepass.db}" \
        REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}" \
        WEB_WORKERS="$web_workers" SCAN_WORKERS="$scan_workers" >"$rendered"
    if [ -f "$file" ]; then
        log "keeping $ENV_FILE (adding only variables it does not name)"
        installer merge-env "$file" "$rendered" >"$merged"
        # A host or TLS mode given on the command line is a decision: it replaces the one on file.
        set_env "$merged" SMILEPASS_HOST "$HOST"
        set_env "$merged" SMILEPASS_TLS "$TLS"
        if [ "$(installer get-env "$merged" SMILEPASS_BASE_URL)" != "https://$HOST" ]; then
            log "SMILEPASS_BASE_URL becomes https://$HOST"
            set_env "$merged" SMILEPASS_BASE_URL "https://$HOST"
        fi
    else
        log "writing $ENV_FILE (new SECRET_KEY)"
        cp "$rendered" "$merged"
    fi
    # Written in place (same inode, mode and owner): a file the admin made stricter stays so.
    [ -f "$file" ] || install -m 0640 /dev/null "$file"
    cat "$merged" >"$file"
    chmod 0640 "$file"
    own "root:$SERVICE_USER" "$file"
    rm -f "$rendered" "$merged"
}

# set_env FILE NAME VALUE: replace NAME's active line (values here are host names and modes: no
# characters special to sed).
set_env() {
    sed -i "s|^$2=.*|$2=$3|" "$1"
}

env_value() { installer get-env "$(at "$ENV_FILE")" "$1"; }

# The systemd units, from deploy/systemd/. @DEPS@: Redis and PostgreSQL units to start first, when they
# run on this machine. @RW_PATHS@: the only folders the services may write to.
units() {
    local dir redis_url database_url deps rw upload_dir name
    dir=$(at "$UNIT_DIR")
    mkdir -p "$dir"
    redis_url=$(env_value REDIS_URL)
    database_url=$(env_value DATABASE_URL)
    deps=
    if [[ $redis_url =~ ^rediss?://([^@/]*@)?(127\.0\.0\.1|localhost|\[::1\])(:|/|$) ]]; then
        deps=redis-server.service
    fi
    if [[ $database_url =~ ^postgres(ql)?://([^@/]*@)?(127\.0\.0\.1|localhost|\[::1\])?(:|/|$) ]]; then
        deps="$deps postgresql.service"
    fi
    rw="$(env_value SMILEPASS_INSTANCE || echo "$STATE_DIR") $(env_value SMILEPASS_BACKUP_DIR || echo "$BACKUP_DIR")"
    if upload_dir=$(env_value SMILEPASS_UPLOAD_DIR); then rw="$rw $upload_dir"; fi
    log "writing the systemd units to $UNIT_DIR"
    for template in deploy/systemd/*; do
        name=$(basename "$template")
        installer render "$template" DEPS="${deps# }" RW_PATHS="$rw" >"$dir/$name.tmp"
        chmod 0644 "$dir/$name.tmp"
        mv "$dir/$name.tmp" "$dir/$name"
    done
}

# The installed app's command line (deploy/smilepass, installed as /usr/local/bin/smilepass): in
# /opt/smilepass, settings loaded, as the service user (on a real install; under DESTDIR as the caller).
app_command() {
    local run_as=$SERVICE_USER
    [ -z "$DESTDIR" ] || run_as=
    SMILEPASS_APP_DIR=$(at "$APP_DIR") SMILEPASS_ENV_FILE=$(at "$ENV_FILE") SMILEPASS_RUN_AS=$run_as \
        bash deploy/smilepass "$@"
}

# /usr/local/bin/smilepass: `sudo smilepass doctor`, `sudo smilepass users create ...`.
command_line() {
    install -D -m 0755 deploy/smilepass "$(at /usr/local/bin/smilepass)"
}

# /etc/caddy/Caddyfile for HOST, from the proxy generator (smilepass/install/caddy.py), with the upload
# limit of the app's settings. A Caddyfile that is not ours is kept once as Caddyfile.before-smilepass.
caddyfile() {
    local file max_body new
    file=$(at "$CADDYFILE")
    mkdir -p "$(dirname "$file")"
    max_body=$(app_command python -c \
        'from smilepass import config; print(config.load("/nonexistent")["MAX_CONTENT_LENGTH"])')
    new=$(mktemp)
    {
        echo "$CADDY_MARK for https://$HOST; make install rewrites it."
        app_command python -m smilepass.install.caddy --host "$HOST" \
            --upstream "$UPSTREAM" --max-body-bytes "$max_body" --tls "$TLS"
    } >"$new"
    if [ -f "$file" ] && ! grep -qF "$CADDY_MARK" "$file" && [ ! -e "$file.before-smilepass" ]; then
        log "keeping the existing Caddyfile as $CADDYFILE.before-smilepass"
        cp -p "$file" "$file.before-smilepass"
    fi
    log "writing $CADDYFILE for https://$HOST (tls $TLS, uploads up to $max_body bytes)"
    chmod 0644 "$new"
    mv "$new" "$file"
    if command -v caddy >/dev/null 2>&1; then
        caddy validate --adapter caddyfile --config "$file" >/dev/null 2>&1 ||
            die "caddy validate refuses $CADDYFILE: $(caddy validate --adapter caddyfile --config "$file" 2>&1 | tail -n 3)"
    elif [ -z "$DESTDIR" ]; then
        die "caddy is not installed"
    else
        log "DESTDIR: caddy is not installed here, Caddyfile not validated"
    fi
}

# The scan worker instances the settings ask for: scans-1 .. scans-SCAN_WORKERS.
scan_instances() {
    local n count
    count=$(env_value SCAN_WORKERS || echo 1)
    [[ $count =~ ^[1-9][0-9]*$ ]] || die "SCAN_WORKERS in $ENV_FILE must be a whole number of at least 1"
    for ((n = 1; n <= count; n++)); do echo "smilepass-worker@scans-$n.service"; done
}

# Migrate, enable and (re)start everything. Only on a real install with systemd running.
activate() {
    local wanted link unit
    if [ -n "$DESTDIR" ]; then
        log "DESTDIR: not migrating, not touching systemd or Caddy"
        return
    fi
    if [ ! -d /run/systemd/system ]; then
        warn "systemd is not running here: the units are written, start them yourself"
        return
    fi
    log "applying database migrations"
    app_command migrate
    systemctl daemon-reload
    mapfile -t wanted < <(scan_instances)
    # Scan workers beyond SCAN_WORKERS (it was lowered): stopped and disabled.
    for link in "$UNIT_DIR"/smilepass.target.wants/smilepass-worker@scans-*.service; do
        [ -e "$link" ] || [ -L "$link" ] || continue
        unit=$(basename "$link")
        if ! printf '%s\n' "${wanted[@]}" | grep -qxF "$unit"; then
            log "disabling $unit (SCAN_WORKERS is ${#wanted[@]})"
            systemctl disable --now "$unit"
        fi
    done
    systemctl enable smilepass.target smilepass-web.service smilepass-cron.service \
        smilepass-worker@default.service "${wanted[@]}" smilepass-backup.timer
    if [[ $(env_value REDIS_URL) =~ ^rediss?://([^@/]*@)?(127\.0\.0\.1|localhost)(:|/|$) ]]; then
        systemctl enable --now redis-server.service
    fi
    log "starting SmilePass (smilepass.target: web, cron, 1 + ${#wanted[@]} workers) and the backup timer"
    systemctl restart smilepass.target
    systemctl start smilepass-backup.timer
    systemctl enable caddy.service
    systemctl reload-or-restart caddy.service
}

next_steps() {
    cat >&2 <<EOF

  SmilePass is installed for https://$HOST/ (settings: $ENV_FILE).

  Next steps (docs/install.md):
    1. Mail: set SMTP_HOST (and SMTP_PORT, SMTP_USER, SMTP_PASSWORD, SMTP_STARTTLS, SMILEPASS_MAIL_FROM)
       in $ENV_FILE, then: systemctl restart smilepass.target
    2. The first admin:
       cd $APP_DIR && sudo -u $SERVICE_USER sh -c 'set -a; . $ENV_FILE; exec venv/bin/flask --app app users create you@clinic.example --role admin'
    3. Check everything:
       cd $APP_DIR && sudo -u $SERVICE_USER sh -c 'set -a; . $ENV_FILE; exec venv/bin/flask --app app doctor'
    Logs: journalctl -u 'smilepass-*' -f     Upgrade later: git pull && sudo make upgrade

EOF
}

main() {
    HOST=${HOST:-}
    TLS=${TLS:-}
    check
    system_packages
    system_user
    data_dirs
    settings
    copy_code
    runtime_venv
    command_line
    units
    caddyfile
    activate
    next_steps
}

main "$@"
