#!/usr/bin/env bash
# Installs whatever is missing, then runs every check and test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> crate boundary: clawpatrol-core has no I/O runtime"
if cargo tree -p clawpatrol-core -e normal --prefix none --locked | grep -E '^(tokio|mio|hyper|rustls|boringtun) ' ; then
  echo "error: clawpatrol-core depends on an I/O runtime (DESIGN §2)" >&2
  exit 1
fi

echo "==> cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line over every test binary and doc-test run of the workspace.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f; if (p == 0) exit 1 }' "$log"
