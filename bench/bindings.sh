#!/usr/bin/env bash
# Prints the per-call cost of decide() from Python and from Node (budget ≤ 5 µs each).
# Needs the Python package installed (`pip install ./bindings/python`) and the Node addon
# built (`npm --prefix bindings/node install`); set PYTHON to choose the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
"${PYTHON:-python3}" bench/decide_python.py
node bench/decide_node.js
