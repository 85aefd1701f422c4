#!/usr/bin/env bash
# Installs whatever is missing, builds the clawpatrol binary and checks the bundled example
# policy with it. (The gateway subcommand arrives with the gateway work item; until then this
# is what the binary can run.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --locked -p clawpatrol-proxy
policy="${1:-fixtures/examples/platform/policy.hcl}"
./target/release/clawpatrol validate "$policy"
