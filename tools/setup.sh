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
# MariaDB for the tests' private server (quantum_ovs/testing/mariadb.py):
# installed apart (below) so that apt starts no system server.
need_mariadb=
[ -x /usr/sbin/mariadbd ] || need_mariadb=mariadb-server
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
if [ -n "$need_mariadb" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup: missing Debian package mariadb-server; run as root or install it" >&2
        exit 1
    fi
    echo "setup: apt-get install mariadb-server (no system service started)"
    export DEBIAN_FRONTEND=noninteractive
    [ ${#need_apt[@]} -gt 0 ] || apt-get update -qq
    # The tests run their own server; a policy-rc.d answering 101 keeps the
    # package's scripts from starting (and leaving running) the system one.
    # Made here only if there is none (containers have theirs), then removed.
    own_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    rc=0
    apt-get install -y -qq --no-install-recommends mariadb-server >/dev/null || rc=$?
    [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
    [ $rc -eq 0 ] || exit $rc
fi

stamp="$VENV/.qovs-installed"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ requirements.txt -nt "$stamp" ] \
        || [ test-requirements.txt -nt "$stamp" ] || [ tools/setup.sh -nt "$stamp" ]; then
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q -r requirements.txt -r test-requirements.txt
    # editable_mode=compat: the tree on sys.path by a plain .pth line.  The
    # default (an import-hook finder run by site at every start) costs each
    # Python process ~11 ms (pathlib, importlib.util...), a starting agent
    # included (issue 17).
    "$VENV/bin/pip" install -q --no-deps -e . --config-settings editable_mode=compat
    touch "$stamp"
fi
