#!/usr/bin/env bash
# Installs what building and testing Switchyard needs (Debian packages, the test virtualenv); safe to run repeatedly.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

say() { echo "install-deps: $*"; }

# Swift is not a Debian package: it has to be installed beforehand.
if ! command -v swift >/dev/null 2>&1 && [[ -x /opt/swift/usr/bin/swift ]]; then
    export PATH=/opt/swift/usr/bin:$PATH
fi
if ! command -v swift >/dev/null 2>&1; then
    echo "install-deps: error: no Swift toolchain on PATH (nor in /opt/swift/usr/bin)." >&2
    echo "install-deps: install Swift 6 for Linux as https://www.swift.org/install/linux/ describes, then put its usr/bin on PATH." >&2
    exit 1
fi

sudo=()
if [[ $(id -u) != 0 ]]; then
    sudo=(sudo)
fi

# C libraries the package links (libpq, OpenSSL, libpg_query), the openssl command the TLS tests make
# their certificates with, the PostgreSQL server the tests run, pgbouncer for comparisons, Python for the client-library tests, and a headless browser
# the HTML report test opens the page in.
packages=(libpq-dev libssl-dev openssl libpg-query-dev pkg-config postgresql postgresql-contrib pgbouncer chromium-headless-shell)
# Any Python 3 with a working venv (pyenv's, say) will do; Debian's only when there is none.
if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    packages+=(python3 python3-venv)
fi

missing=()
for package in "${packages[@]}"; do
    if ! dpkg -s "$package" >/dev/null 2>&1; then
        missing+=("$package")
    fi
done
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    say "Debian packages present"
fi

# The Python client tests (psycopg 3) run from this virtualenv; the harness finds it by path.
venv=$root/.venv-test
if [[ -x $venv/bin/python ]] && "$venv/bin/python" -c 'import psycopg' >/dev/null 2>&1; then
    say "test virtualenv present ($venv)"
else
    if [[ ! -x $venv/bin/python ]]; then
        say "creating $venv"
        rm -rf "$venv"
        python3 -m venv "$venv"
    fi
    say "installing psycopg into $venv"
    "$venv/bin/python" -m pip install --disable-pip-version-check -q 'psycopg>=3.1,<4'
    "$venv/bin/python" -c 'import psycopg' >/dev/null
fi
