#!/usr/bin/env bash
# Installs whatever is missing, then runs every check and test: the Rust workspace (with the
# bundled fixtures), the Python binding (pytest) and the Node binding (node:test).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

# A one-shot run gains nothing from incremental artefacts (they were 1.3 GB of the target dir).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> crate boundary: clawpatrol-core and clawpatrol-protocols have no I/O runtime"
for crate in clawpatrol-core clawpatrol-protocols; do
  if cargo tree -p "$crate" -e normal --prefix none --locked | grep -E '^(tokio|mio|hyper|rustls|boringtun) '; then
    echo "error: $crate depends on an I/O runtime (DESIGN §2)" >&2
    exit 1
  fi
done

echo "==> cargo test"
cargo test --workspace --locked 2>&1 | tee "$logs/cargo"

echo "==> Python binding: pip install ./bindings/python, pytest"
venv=target/venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check ./bindings/python pytest
(cd bindings/python && "../../$venv/bin/python" -m pytest -q tests) 2>&1 | tee "$logs/pytest"

echo "==> Node binding: npm install (builds the addon), node --test"
(cd bindings/node && npm install --no-audit --no-fund)
if ! git diff --quiet -- bindings/node/index.d.ts; then
  echo "error: bindings/node/index.d.ts is out of date; run 'npm --prefix bindings/node run build' and commit it" >&2
  git diff -- bindings/node/index.d.ts | head -40 >&2
  exit 1
fi
(cd bindings/node && npm test) 2>&1 | tee "$logs/node"

# One closing line over every runner: cargo's test binaries and doc-tests, pytest, node.
awk '
  FILENAME ~ /cargo$/ && /^test result:/ {
    for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) }
  }
  FILENAME ~ /pytest$/ && / passed/ {
    for (i = 1; i <= NF; i++) { if ($i ~ /^passed,?$/) p += $(i-1); if ($i ~ /^failed,?$/) f += $(i-1) }
  }
  FILENAME ~ /node$/ && /^# pass / { p += $3 }
  FILENAME ~ /node$/ && /^# fail / { f += $3 }
  END { printf "tests: %d passed, %d failed\n", p, f; if (p == 0 || f > 0) exit 1 }
' "$logs/cargo" "$logs/pytest" "$logs/node"
