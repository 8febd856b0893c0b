#!/usr/bin/env bash
# Upgrade an installed SmilePass to this checkout: `git pull && sudo make upgrade`.
#
#   1. a backup with the installed version (`smilepass backup`, into SMILEPASS_BACKUP_DIR, keeping
#      SMILEPASS_BACKUP_KEEP); when it fails, nothing else happens and the exit status is 1;
#   2. the services stop (smilepass.target), so no request runs half on old and half on new code;
#   3. scripts/install.sh: code, venv, settings (edits kept), units, Caddyfile, migrations, start;
#   4. `smilepass doctor`; its exit status is this script's (retried for up to DOCTOR_WAIT seconds
#      while the workers come up).
#
# Environment: DESTDIR as for scripts/install.sh (then there are no services to stop or start, and the
# app's commands run as the caller); DOCTOR_WAIT (default 30).
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}
DOCTOR_WAIT=${DOCTOR_WAIT:-30}
APP_DIR=$DESTDIR/opt/smilepass
ENV_FILE=$DESTDIR/etc/smilepass/smilepass.env
SYSTEMD=
[ -z "$DESTDIR" ] && [ -d /run/systemd/system ] && SYSTEMD=1

# The installed app's command line, as the service user (the caller under DESTDIR).
installed() {
    local run_as=smilepass
    [ -z "$DESTDIR" ] || run_as=
    SMILEPASS_APP_DIR=$APP_DIR SMILEPASS_ENV_FILE=$ENV_FILE SMILEPASS_RUN_AS=$run_as bash deploy/smilepass "$@"
}

main() {
    if [ -z "$DESTDIR" ] && [ "$(id -u)" -ne 0 ]; then die "run it as root: sudo make upgrade"; fi
    [ -x "$APP_DIR/venv/bin/flask" ] && [ -f "$ENV_FILE" ] ||
        die "SmilePass is not installed here ($APP_DIR, $ENV_FILE): run 'sudo make install HOST=...' first"

    log "backup before the upgrade (installed version)"
    if ! installed backup --keep "$(keep)"; then
        printf '\nerror: the backup failed, so the upgrade stops here: nothing was changed.\n' >&2
        printf '  Fix the cause above (disk space? SMILEPASS_BACKUP_DIR in %s?), then run make upgrade again.\n' \
            "${ENV_FILE#"$DESTDIR"}" >&2
        exit 1
    fi

    if [ -n "$SYSTEMD" ]; then
        log "stopping SmilePass for the upgrade"
        systemctl stop smilepass.target
    fi
    # install.sh starts everything again.
    if ! bash scripts/install.sh; then
        printf '\nerror: installing the new version failed (see above). The backup from step 1 is in %s.\n' \
            "$(setting SMILEPASS_BACKUP_DIR || echo "SMILEPASS_BACKUP_DIR")" >&2
        printf '  Fix the cause and run make upgrade again; the services stay stopped until then.\n' >&2
        exit 1
    fi

    log "checking the installation (doctor)"
    doctor
}

setting() { "${PYTHON:-python3}" scripts/installer.py get-env "$ENV_FILE" "$1"; }

keep() { setting SMILEPASS_BACKUP_KEEP || echo 14; }

# doctor's exit status; while the services are still starting (a worker's first heartbeat), tried again.
doctor() {
    local deadline status
    deadline=$((SECONDS + DOCTOR_WAIT))
    while true; do
        status=0
        installed doctor || status=$?
        if [ "$status" -eq 0 ] || [ -z "$SYSTEMD" ] || [ "$SECONDS" -ge "$deadline" ]; then
            break
        fi
        log "doctor found a problem; trying again in 5 s while the services start"
        sleep 5
    done
    if [ "$status" -ne 0 ]; then
        printf '\nerror: the upgrade is installed, but doctor reports a FAIL above (exit %s).\n' "$status" >&2
        printf '  Logs: journalctl -u "smilepass-*" --since "-10 min"\n' >&2
    fi
    return "$status"
}

main "$@"
