#!/bin/sh
# Copies the scenarios deploy/'s CronJob runs from scenarios/ (the one source
# of truth) into deploy/config/, which kustomize's configMapGenerator can read
# (its load restrictor refuses files outside the kustomization root).
#   ci/deploy-config.sh          write the copies
#   ci/deploy-config.sh --check  exit 1 if a copy differs (tests/deploy.rs checks the same)
set -eu
cd "$(dirname "$0")/.."
suite=monthly-kubernetes
files="suites/$suite.toml"
for s in $(sed -n 's/^scenarios = \[\(.*\)\]/\1/p' "scenarios/suites/$suite.toml" | tr -d '",'); do
    files="$files $s.toml"
done
stale=0
for f in $files; do
    if [ "${1:-}" = --check ]; then
        cmp -s "scenarios/$f" "deploy/config/scenarios/$f" || {
            echo "deploy/config/scenarios/$f differs from scenarios/$f: run ci/deploy-config.sh" >&2
            stale=1
        }
    else
        mkdir -p "$(dirname "deploy/config/scenarios/$f")"
        cp "scenarios/$f" "deploy/config/scenarios/$f"
    fi
done
exit $stale
