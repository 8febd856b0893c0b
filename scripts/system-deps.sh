#!/usr/bin/env bash
# Make sure the Debian packages SmilePass needs are installed.
#
#   scripts/system-deps.sh PACKAGE...
#
# Besides the packages named, it adds python3/python3-venv when `python3 -m
# venv` cannot work, and nodejs/npm when npm is missing. Packages already
# installed are skipped with `dpkg -s`, so a re-run never touches apt.
# As root it installs what is missing; otherwise it prints the command to
# run and fails, because a half-set-up machine would only fail later.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

# dpkg-query's one short line, compared whole: `dpkg -s | grep -q` fails under pipefail when grep quits
# before dpkg has written a long description (SIGPIPE), and the package then looks missing.
installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# The packages the toolchain itself needs, on top of those asked for.
toolchain_packages() {
    if ! command -v python3 >/dev/null 2>&1; then
        echo python3 python3-venv
    elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        # Debian splits ensurepip out of python3; without it venv fails.
        echo python3-venv
    fi
    # Only when node is missing: a newer one installed by other means is fine.
    if ! command -v npm >/dev/null 2>&1; then
        echo nodejs npm
    fi
}

main() {
    local wanted missing=() pkg
    # shellcheck disable=SC2207 # package names never contain spaces
    wanted=("$@" $(toolchain_packages))

    if ! command -v dpkg >/dev/null 2>&1; then
        warn "not a Debian system: make sure these are installed: ${wanted[*]}"
        return 0
    fi

    for pkg in "${wanted[@]}"; do
        installed "$pkg" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0

    if [ "$(id -u)" -ne 0 ]; then
        printf 'Missing Debian packages. Install them as root, then re-run make:\n\n' >&2
        printf '    apt-get update && apt-get install -y %s\n\n' "${missing[*]}" >&2
        exit 1
    fi

    log "installing Debian packages: ${missing[*]}"
    # CI has no terminal: never let a package ask a question.
    export DEBIAN_FRONTEND=noninteractive
    # Wait for a concurrent apt (e.g. unattended-upgrades) instead of failing.
    local apt=(apt-get -o DPkg::Lock::Timeout=300)
    "${apt[@]}" update -q
    "${apt[@]}" install -y -q "${missing[@]}"
}

main "$@"
