#!/usr/bin/env bash
# Installs whatever is missing, builds the clawpatrol binary, checks the bundled example policy
# and replays the quickstart fixtures. (The gateway subcommand arrives with the gateway work
# item; until then these are what the binary runs.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --locked -p clawpatrol-proxy
policy="${1:-fixtures/examples/platform/policy.hcl}"
./target/release/clawpatrol validate "$policy"
./target/release/clawpatrol test fixtures/quickstart/policy.hcl fixtures/quickstart/fixtures
