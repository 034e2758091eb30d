#!/usr/bin/env bash
# Runs every test of the workspace. Installs or starts whatever the tests need first,
# so a fresh machine passes: this is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

for setup in scripts/setup-*.sh; do
    [ -e "$setup" ] || continue
    echo "==> $setup"
    bash "$setup"
done

# The PostgreSQL tests run against a private server started here and stopped on exit.
# shellcheck source=scripts/postgres-test-server.sh
source scripts/postgres-test-server.sh
echo "==> starting a private PostgreSQL"
start_test_postgres

# Everything a test needs is installed or started above, so a test that finds a
# precondition missing fails instead of saying it did not run.
export DIEGO_TESTS_REQUIRE_ALL=1

echo "==> cargo test --workspace --all-features"
cargo test --workspace --all-features
