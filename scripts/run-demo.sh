#!/usr/bin/env bash
# `make run`: Tidegate's main job on its embedded default (SQLite, local files).
# Builds the demo image and its advisories, starts the console, registers the demo image through
# the CI gate (so the console shows it with its verdict), then keeps the console in the foreground.
set -euo pipefail
BIN=${BIN:-.venv/bin}
DEMO_DIR=${DEMO_DIR:-$HOME/.cache/tidegate/demo}
DATA_DIR=${TIDEGATE_DATA_DIR:-$DEMO_DIR/data}
PORT=${TIDEGATE_PORT:-8080}
URL="http://127.0.0.1:$PORT"

"$BIN/python" -m tidegate.demo "$DEMO_DIR"
"$BIN/tidegate" db import --data-dir "$DATA_DIR" -q "$DEMO_DIR/advisories"
"$BIN/tidegate" apply --data-dir "$DATA_DIR" -f "$DEMO_DIR/policy.yaml"
TOKEN=$("$BIN/tidegate" admin create-token --data-dir "$DATA_DIR" --role ci --name "make-run-$(date +%s)")

"$BIN/tidegate" console --data-dir "$DATA_DIR" --port "$PORT" &
CONSOLE=$!
trap 'kill $CONSOLE 2>/dev/null || true' INT TERM
for _ in $(seq 1 100); do
  curl -fsS "$URL/readyz" >/dev/null 2>&1 && break
  kill -0 "$CONSOLE" 2>/dev/null || { echo "the console did not start" >&2; exit 1; }
  sleep 0.2
done
echo
echo "== registering the demo image with the console (the CI gate, audit mode) =="
"$BIN/tidegate" scan "oci:$DEMO_DIR/layout:demo" --data-dir "$DATA_DIR" \
  --console "$URL" --token "$TOKEN" --quiet || true
echo
echo "Console: $URL  (API docs: $URL/api/v1/docs; log in as shown above; Ctrl-C stops it)"
wait "$CONSOLE"
