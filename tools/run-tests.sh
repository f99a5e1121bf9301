#!/usr/bin/env bash
# Run pytest from the project's virtualenv.  Exit status 5 (no tests
# collected) is a failure here: a suite that runs nothing proves nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
"$VENV/bin/pytest" -q -p no:cacheprovider --durations=15 "$@"
rc=$?
if [ $rc -eq 5 ]; then
    echo "run-tests: no tests were collected" >&2
fi
exit $rc
