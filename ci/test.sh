#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need when
# it is missing, then runs every test with --locked. `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "ci/test.sh: cargo not found; install Rust (rustup) first" >&2
  exit 1
fi

# The database drills run real PostgreSQL servers (initdb, pg_ctl,
# pg_basebackup, postgres from one bin directory): install Debian's when absent.
have_pg() {
  [ -n "${DRILL_PG_BIN:-}" ] && [ -x "$DRILL_PG_BIN/postgres" ] && return 0
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && return 0
  command -v postgres >/dev/null 2>&1 && command -v pg_basebackup >/dev/null 2>&1
}
if ! have_pg; then
  echo "ci/test.sh: PostgreSQL server binaries missing; installing Debian's postgresql" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  have_pg || { echo "ci/test.sh: PostgreSQL install failed" >&2; exit 1; }
fi

# Alert drills run real Prometheus and Alertmanager, and the rule tests run
# promtool: install Debian's when absent.
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus-alertmanager >/dev/null 2>&1; then
  echo "ci/test.sh: Prometheus/Alertmanager missing; installing Debian's" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager >/dev/null
fi

# The HTTP conformance tests (src/load/conformance.rs) count against real
# nginx's access log: install Debian's nginx-light when absent.
if ! [ -x /usr/sbin/nginx ] && ! command -v nginx >/dev/null 2>&1; then
  echo "ci/test.sh: nginx missing; installing Debian's nginx-light" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nginx-light >/dev/null
fi

# The results end-to-end test (tests/pushgateway.rs) pushes to a real
# Pushgateway: install Debian's when absent.
if ! command -v prometheus-pushgateway >/dev/null 2>&1; then
  echo "ci/test.sh: prometheus-pushgateway missing; installing Debian's" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus-pushgateway >/dev/null
fi

# The HTTPS test makes a CA with openssl and serves with python3.
for tool in openssl python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$tool" >/dev/null
  fi
done

# Independent readers of drill's output, from PyPI: junitparser and junit2html
# read junit.xml back, xmlschema validates it against Jenkins' junit-10.xsd
# (fixtures/xsd/), check-jsonschema checks schemas/ against scenarios and
# results.json.
py_tools_missing() {
  python3 -c 'import junitparser, junit2htmlreport, xmlschema' >/dev/null 2>&1 || return 0
  command -v check-jsonschema >/dev/null 2>&1 || return 0
  return 1
}
if py_tools_missing; then
  echo "ci/test.sh: installing junitparser, junit2html, xmlschema and check-jsonschema from PyPI" >&2
  python3 -m pip install --quiet --user junitparser junit2html xmlschema check-jsonschema \
    || python3 -m pip install --quiet --user --break-system-packages junitparser junit2html xmlschema check-jsonschema
  export PATH="$HOME/.local/bin:$PATH"
  py_tools_missing && { echo "ci/test.sh: PyPI tools install failed" >&2; exit 1; }
fi

# The container image is assembled from scratch with buildah (ci/image.sh).
if ! command -v buildah >/dev/null 2>&1; then
  echo "ci/test.sh: buildah missing; installing Debian's buildah" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends buildah >/dev/null
fi

# The test runner: cargo-nextest runs the test binaries side by side, a
# process per test, with the drills on the lab one at a time (the `lab` test
# group of .config/nextest.toml). From crates.io when missing.
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "ci/test.sh: cargo-nextest missing; installing it from crates.io" >&2
  cargo install cargo-nextest --locked
fi

# Containerfile, GitHub action, GitLab template, deploy/: real linters
# (installs them when missing; tests/deploy.rs uses kubectl's kustomize).
bash ci/lint.sh

# Journals of the test runs go to a private state directory, never the user's.
export DRILL_STATE_DIR="${DRILL_STATE_DIR:-$(mktemp -d -t drill-state.XXXXXX)}"

cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
# The image, from scratch with the debug binary the tests use anyway (a
# release build would add minutes; the layout is the same): runs --version
# and validate inside it, as a non-root user.
cargo build --locked
bash ci/image.sh --bin target/debug/drill
# Every test of drill and drill-testkit (testkit/): the end-to-end drills on
# the lab (timing-sensitive) one at a time, everything else beside them
# (.config/nextest.toml). `cargo test --locked --workspace --all-targets`
# runs the same tests one binary after another (the lab drills serialise
# themselves there with tests/common's lab_lock). There are no doctests
# (`cargo test --doc` finds none), as under `--all-targets` before.
cargo nextest run --locked --workspace --all-targets
