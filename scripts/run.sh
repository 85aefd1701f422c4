#!/usr/bin/env bash
# Installs whatever is missing, builds the clawpatrol binary, checks the quickstart policy
# (validate + replay of its fixtures), then starts the gateway on it with the embedded
# defaults: state in $HOME/.clawpatrol (CA generated on first start, SQLite audit log),
# forward proxy on 127.0.0.1:8080, transparent TLS listener on 127.0.0.1:8443.
# Extra arguments go to `clawpatrol gateway` (e.g. --state-dir DIR, --log-format json).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --locked -p clawpatrol-proxy
policy=fixtures/quickstart/policy.hcl
./target/release/clawpatrol validate "$policy"
./target/release/clawpatrol test "$policy" fixtures/quickstart/fixtures
exec ./target/release/clawpatrol gateway "$policy" "$@"
