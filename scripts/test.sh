#!/usr/bin/env bash
# `make test`: installs what the tests need, lints, starts pcscd (vpcd slots for
# the virtual chip cards), runs the race tests (which start their own mosquitto
# brokers, host simulators and ptys on loopback), cross-builds for the terminal,
# runs the pure-Go tests and the armv7 build's demo under qemu-user.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/deps.sh
bash scripts/lint.sh
out=$(mktemp)
# pcscd with vpcd's two virtual slots, for the chip-card tests (one per machine).
trap 'rm -f "$out"; bash scripts/pcsc-bench.sh down' EXIT
bash scripts/pcsc-bench.sh up
# POSAGENT_REQUIRE_BENCH turns "mosquitto missing, skipped" into a failure: in
# this target every real counterpart must be there.
POSAGENT_REQUIRE_BENCH=1 go test -race -count=1 -timeout 15m ./...
make --no-print-directory cross
make --no-print-directory test-arm
qemu-arm bin/posagent-linux-armv7 version
if ! qemu-arm bin/posagent-linux-armv7 demo >"$out" 2>&1; then
	cat "$out"; echo "armv7 demo under qemu failed"; exit 1
fi
grep -q '^demo| final state: live$' "$out" || { cat "$out"; echo "armv7 demo did not end live"; exit 1; }
echo "armv7 demo under qemu-arm: live"
echo "make test: all passed in $(( $(date +%s) - start )) s"
