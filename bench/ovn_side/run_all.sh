#!/bin/bash
# Side by side with OVN 23.03 (adapted from ../shared/peers/ovn-side/run_all.sh): for each configuration,
# quantum-ovs (bench/ovn_side/ours.py, this tree) then OVN (ovn.py of the shared harness, unchanged), back to
# back, so both see the same machine, into one results file; then report.py's tables (ratios ours/OVN and the
# ovs-ofctl --bundle baseline).  Needs root, and Debian's ovn-central and ovn-host.
# Usage (from anywhere): bash bench/ovn_side/run_all.sh ["L P B global|per-switch" ...]
#   OVN_SIDE: the shared harness (default ../shared/peers/ovn-side from the repo root, else
#   /work/shared/peers/ovn-side); OUT: results file (default /tmp/ovn-side/results.jsonl, appended to);
#   SKIP_OVN=1: our side only.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=${PY:-$REPO/.venv/bin/python}
OVN_SIDE=${OVN_SIDE:-$REPO/../shared/peers/ovn-side}
[ -f "$OVN_SIDE/ovn.py" ] || OVN_SIDE=/work/shared/peers/ovn-side
OUT=${OUT:-/tmp/ovn-side/results.jsonl}
RUN=$(dirname "$OUT"); mkdir -p "$RUN"
cfgs=("$@"); [ ${#cfgs[@]} -gt 0 ] || cfgs=("10 100 100 global" "100 100 1000 per-switch" "100 100 1000 global")
for cfg in "${cfgs[@]}"; do
  tag=$(echo $cfg | tr ' ' _)
  echo "== $(date -u +%T) $cfg"
  (cd "$REPO" && PYTHONPATH=$REPO timeout 3000 $PY bench/ovn_side/ours.py $cfg --out "$OUT") \
    > "$RUN/ours-$tag.out" 2>&1; echo "ours rc=$? (log $RUN/ours-$tag.out)"
  if [ -z "${SKIP_OVN:-}" ]; then
    # ovn.py keeps its peer's run directory beside itself unless PEER says otherwise (the shared
    # directory may be read-only).
    (cd "$OVN_SIDE" && PEER=${PEER:-$RUN/ovn-peer} timeout 5400 python3 ovn.py $cfg --out "$OUT") \
      > "$RUN/ovn-$tag.out" 2>&1; echo "ovn rc=$? (log $RUN/ovn-$tag.out)"
  fi
done
$PY "$HERE/report.py" "$OUT"
