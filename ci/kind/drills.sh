#!/usr/bin/env bash
# Runs drills against the kind pair that setup.sh built, one report folder
# per scenario under $REPORTS, then `drill cleanup` as a safety net. Exits
# with the worst drill exit code (4, a failed revert, outranks everything).
#
#   bash ci/kind/drills.sh                       # the default set
#   SCENARIOS="pod-failure istiod-down" bash ci/kind/drills.sh
set -uo pipefail

DRILL="${DRILL:-target/release/drill}"
REPORTS="${REPORTS:-reports/kind}"
SEED="${SEED:-1}"
SCENARIOS="${SCENARIOS:-pod-failure latency-injection ingress-failover eastwest-failover region-outage}"

worst=0
for s in $SCENARIOS; do
  printf '\n== drill %s\n' "$s"
  "$DRILL" --targets ci/kind/drill.toml run "scenarios/$s.toml" \
    --target kind --seed "$SEED" --report-dir "$REPORTS/$s"
  rc=$?
  echo "drill $s: exit $rc"
  # 4 (revert failed) > 2/3 (invalid, aborted) > 1 (checks failed) > 0.
  rank() { case "$1" in 0) echo 0 ;; 1) echo 1 ;; 2 | 3) echo 2 ;; *) echo 3 ;; esac; }
  if [ "$(rank "$rc")" -gt "$(rank "$worst")" ]; then worst=$rc; fi
done

printf '\n== drill cleanup\n'
"$DRILL" --targets ci/kind/drill.toml cleanup || worst=4
exit "$worst"
