#!/usr/bin/env bash
# Set up everything `make test` and `make demo` need on a fresh Debian
# machine (as root): Debian packages when missing, a virtualenv, and the
# project with its test dependencies.  Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

need_apt=()
command -v ovs-vswitchd >/dev/null 2>&1 || need_apt+=(openvswitch-switch)
command -v ping >/dev/null 2>&1 || need_apt+=(iputils-ping)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v socat >/dev/null 2>&1 || need_apt+=(socat)
command -v nc >/dev/null 2>&1 || need_apt+=(netcat-openbsd)
command -v tcpdump >/dev/null 2>&1 || need_apt+=(tcpdump)
command -v dhclient >/dev/null 2>&1 || need_apt+=(isc-dhcp-client)
command -v ethtool >/dev/null 2>&1 || need_apt+=(ethtool)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# MariaDB for the tests' private server (quantum_ovs/testing/mariadb.py); in a
# container /usr/sbin/policy-rc.d (exit 101) keeps apt from starting a system one.
[ -x /usr/sbin/mariadbd ] || need_apt+=(mariadb-server)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup: missing Debian packages (${need_apt[*]}); run as root or install them" >&2
        exit 1
    fi
    echo "setup: apt-get install ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

stamp="$VENV/.qovs-installed"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ requirements.txt -nt "$stamp" ] \
        || [ test-requirements.txt -nt "$stamp" ]; then
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q -r requirements.txt -r test-requirements.txt
    "$VENV/bin/pip" install -q --no-deps -e .
    touch "$stamp"
fi
