#!/usr/bin/env bash
# make crashtest [CRASH_N=100] [CRASH_SEED=...]: the crash campaign
# (agent/crashtest) on real pcscd + a virtual chip card, mosquitto, the
# acquirer simulator and a pty printer. Each of the N fresh installs is
# SIGKILLed 1-3 times at random moments and restarted until live; one line
# per install shows the kills and the invariants checked.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-${CRASH_N:-100}}
start=$(date +%s)
# pcscd with vpcd's slots; `down` stops it only if `up` started it.
# pcscd is one per machine and pcsc-bench.sh's pid file is shared: stop it
# at the end only if it was not already running (another bench is using it).
down=true
if bash scripts/pcsc-bench.sh status; then down=false; fi
bash scripts/pcsc-bench.sh up
out=$(mktemp)
trap 'rm -f "$out"; if $down; then bash scripts/pcsc-bench.sh down >/dev/null; fi' EXIT
# POSAGENT_REQUIRE_BENCH: a missing mosquitto or pcscd fails instead of
# skipping, so a "pass" always means the campaign ran.
if ! CRASH_N=$n POSAGENT_REQUIRE_BENCH=1 go test -count=1 -v -timeout 0 -run '^TestCrashCampaign$' ./agent/crashtest >"$out" 2>&1; then
	cat "$out"
	echo "crashtest: FAILED (N=$n) after $(($(date +%s) - start)) s; CRASH_SEED in the first line replays the kill plan"
	exit 1
fi
# The per-install lines without go test's framing.
grep -v -E '^(=== (RUN|NAME|PAUSE|CONT)|    --- PASS|--- PASS|PASS$|ok  )' "$out" | sed 's/^ *campaign_test.go:[0-9]*: //'
echo "crashtest: N=$n passed in $(($(date +%s) - start)) s"
