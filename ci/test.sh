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

# The HTTPS test makes a CA with openssl and serves with python3.
for tool in openssl python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$tool" >/dev/null
  fi
done

# Journals of the test runs go to a private state directory, never the user's.
export DRILL_STATE_DIR="${DRILL_STATE_DIR:-$(mktemp -d -t drill-state.XXXXXX)}"

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
# End-to-end tests run real drills against the lab (timing-sensitive): they
# serialise themselves; unit tests run in parallel.
cargo test --locked --all-targets
