#!/usr/bin/env bash
# `make test`: runs `make demo` as a fresh machine would (no C toolchain, no
# libpcsclite), installs what the tests need, lints, starts pcscd (vpcd slots for
# the virtual chip cards), runs the race tests (which start their own mosquitto
# brokers, host simulators and ptys on loopback), cross-builds for the terminal,
# runs the unit tests as ARM binaries and the armv7 firmware build's install
# on simulated devices under qemu-user.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
# A newcomer's first command, before anything is installed: make demo needs
# nothing but Go. CC and PKG_CONFIG that always fail prove it needs no C
# toolchain and no libpcsclite.
demo_out=$(mktemp) demo_err=$(mktemp)
if ! CC=/bin/false PKG_CONFIG=/bin/false make --no-print-directory demo >"$demo_out" 2>"$demo_err" ||
	[ "$(tail -n 1 "$demo_out")" != "demo| final state: live" ]; then
	cat "$demo_out" "$demo_err"; echo "make demo without a C toolchain did not end with 'final state: live'"; exit 1
fi
rm -f "$demo_out" "$demo_err"
echo "make demo (CC=/bin/false PKG_CONFIG=/bin/false): final state: live"
bash scripts/deps.sh
bash scripts/lint.sh
out=$(mktemp)
# pcscd with vpcd's two virtual slots, for the chip-card tests (one per machine).
trap 'rm -f "$out"; bash scripts/pcsc-bench.sh down' EXIT
bash scripts/pcsc-bench.sh up
# POSAGENT_REQUIRE_BENCH turns "mosquitto missing, skipped" into a failure: in
# this target every real counterpart must be there.
POSAGENT_REQUIRE_BENCH=1 go test -race -count=1 -timeout 15m ./...
# A small crash campaign on the real device stack (make crashtest runs 100),
# then a small hostile-link campaign (make crashtest MODE=hostile runs 100).
bash scripts/crashtest.sh 5
bash scripts/crashtest.sh 5 hostile
# A short, fixed pass of every fuzz target on top of the seed corpora the
# test run replays (make fuzz is the long one).
bash scripts/fuzz.sh 10000x
make --no-print-directory cross
POSAGENT_REQUIRE_BENCH=1 make --no-print-directory test-arm
# The armv7 firmware binary (cgo, no embedded broker) runs the whole install
# on the simulated devices of the example config, under qemu-arm.
qemu-arm bin/posagent-linux-armv7 version
armstate=$(mktemp -d)
sed "s|^state_dir: .*|state_dir: $armstate/state|" testdata/posagent.example.yaml >"$armstate/posagent.yaml"
if ! qemu-arm bin/posagent-linux-armv7 run --config "$armstate/posagent.yaml" >"$out" 2>&1; then
	cat "$out"; echo "armv7 firmware run under qemu failed"; exit 1
fi
grep -q '^step| live' "$out" || { cat "$out"; echo "armv7 firmware run did not end live"; exit 1; }
rm -rf "$armstate"
echo "armv7 firmware build under qemu-arm: live"
echo "make test: all passed in $(( $(date +%s) - start )) s"
