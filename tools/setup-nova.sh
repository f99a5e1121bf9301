#!/usr/bin/env bash
# What `make test-nova` needs beyond `make setup`: RabbitMQ from Debian and
# nova 34 + placement from PyPI in a virtualenv of their own under /var/tmp
# (made once, reused; tests/fixtures/nova.py).  Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup-nova: rabbitmq-server is missing; run as root or install it" >&2
        exit 1
    fi
    echo "setup-nova: apt-get install rabbitmq-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Installing it must not start the system's broker: we run private ones.
    policy=/usr/sbin/policy-rc.d
    made_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && made_policy=1
    fi
    apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null
    [ -n "$made_policy" ] && rm -f "$policy"
fi
PYTHONPATH=$PWD "$VENV/bin/python" -c \
    'from tests.fixtures.nova import install; print("setup-nova: nova venv", install())'
