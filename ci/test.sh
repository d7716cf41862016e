#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need when
# it is missing, then runs every test with --locked. `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "ci/test.sh: cargo not found; install Rust (rustup) first" >&2
  exit 1
fi

# Journals of the test runs go to a private state directory, never the user's.
export DRILL_STATE_DIR="${DRILL_STATE_DIR:-$(mktemp -d -t drill-state.XXXXXX)}"

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
# End-to-end tests run real drills against the lab (timing-sensitive): they
# serialise themselves; unit tests run in parallel.
cargo test --locked --all-targets
