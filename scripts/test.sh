#!/usr/bin/env bash
# `make test`: runs `make demo` as a fresh machine would (no C toolchain, no
# libpcsclite), installs what the tests need, lints, starts pcscd (vpcd slots for
# the virtual chip cards), runs the race tests (which start their own mosquitto
# brokers, host simulators and ptys on loopback), cross-builds for the terminal,
# runs the unit tests as ARM binaries and the armv7 firmware build's install
# under qemu-user on the real device stack (pcscd + a virtual chip card, a pty
# printer, the acquirer simulator over TCP).
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
# The armv7 firmware binary (cgo, no simulators, no embedded broker) runs the
# whole install under qemu-arm against pcscd, a pty printer and hostsim, and
# refuses the demo and a simulated config.
if ! POSAGENT_FIRMWARE_BIN=bin/posagent-linux-armv7 POSAGENT_QEMU=qemu-arm POSAGENT_REQUIRE_BENCH=1 \
	go test -count=1 -v -run '^(TestFirmwareInstallUnderQEMU|TestFirmwareHasNoSimulators)$' ./agent/testkit/firmware >"$out" 2>&1 ||
	! grep -q 'live, 1 sale, 1 void' "$out"; then
	cat "$out"; echo "armv7 firmware install under qemu-arm failed"; exit 1
fi
grep 'live, 1 sale, 1 void' "$out" | sed 's/^ *firmware_test.go:[0-9]*: //'
echo "make test: all passed in $(( $(date +%s) - start )) s"
