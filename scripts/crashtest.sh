#!/usr/bin/env bash
# make crashtest [CRASH_N=100] [MODE=crash|hostile] [CRASH_SEED=... | HOSTILE_SEED=...]:
# a campaign on real pcscd + a virtual chip card, mosquitto, the acquirer
# simulator and a pty printer (agent/testkit/crashtest); one line per install shows
# what happened to it and the invariants checked.
#   crash    (default) each of the N fresh installs is SIGKILLed 1-3 times at
#            random moments and restarted until live (TestCrashCampaign).
#   hostile  agent/testkit/hostile's proxy sits between the agent and the host and
#            drops, delays, duplicates, strips and forges answers, mixed with
#            SIGKILLs; the campaign answers retry as an installer would, and
#            each install must end live or stop for the operator with a code
#            (TestHostileCampaign; every third install swipes its card).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-${CRASH_N:-100}}
mode=${2:-${MODE:-crash}}
case $mode in
crash) test=TestCrashCampaign env="CRASH_N=$n" seedvar=CRASH_SEED ;;
hostile) test=TestHostileCampaign env="HOSTILE_N=$n" seedvar=HOSTILE_SEED ;;
*) echo "crashtest: MODE is crash or hostile, not $mode" >&2; exit 2 ;;
esac
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
if ! env "$env" POSAGENT_REQUIRE_BENCH=1 go test -count=1 -v -timeout 0 -run "^$test\$" ./agent/testkit/crashtest >"$out" 2>&1; then
	cat "$out"
	echo "crashtest: $mode FAILED (N=$n) after $(($(date +%s) - start)) s; $seedvar in the first line replays it"
	exit 1
fi
# The per-install lines without go test's framing.
grep -v -E '^(=== (RUN|NAME|PAUSE|CONT)|    --- PASS|--- PASS|PASS$|ok  )' "$out" | sed -E 's/^ *(campaign|hostile)_test.go:[0-9]*: //'
echo "crashtest: $mode N=$n passed in $(($(date +%s) - start)) s"
