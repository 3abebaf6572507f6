#!/usr/bin/env bash
# make bench: the firmware targets of issue 8 as one table (agent/perfbench),
# measured on the real device stack: pcscd + a virtual chip card, mosquitto,
# the acquirer simulator, a pty printer. The cross builds are redone first,
# so the armv7 size is that of the current source. Misses are reported, not
# failed: the bench measures, `make test` never times anything.
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory cross >/dev/null
# pcscd is one per machine and pcsc-bench.sh's pid file is shared: stop it
# at the end only if it was not already running (another bench is using it).
down=true
if bash scripts/pcsc-bench.sh status; then down=false; fi
bash scripts/pcsc-bench.sh up >/dev/null
out=$(mktemp)
trap 'rm -f "$out"; if $down; then bash scripts/pcsc-bench.sh down >/dev/null; fi' EXIT
if ! POSAGENT_BENCH=1 POSAGENT_REQUIRE_BENCH=1 go test -count=1 -v -timeout 15m -run '^TestBenchTable$' ./agent/perfbench >"$out" 2>&1; then
	cat "$out"
	echo "bench: a measurement failed" >&2
	exit 1
fi
grep '^|' "$out"
