#!/usr/bin/env bash
# make bench: the firmware targets of issue 8 as one table (agent/testkit/perfbench),
# measured on the real device stack: pcscd + a virtual chip card, mosquitto,
# the acquirer simulator, a pty printer. The cross builds are redone first,
# so the armv7 size is that of the current source. The table is printed
# either way; a missed target (result "miss") makes the bench fail, as does a
# measurement that could not be made. `make test` never times anything.
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
if POSAGENT_BENCH=1 POSAGENT_REQUIRE_BENCH=1 go test -count=1 -v -timeout 15m -run '^TestBenchTable$' ./agent/testkit/perfbench >"$out" 2>&1; then
	grep '^|' "$out"
	exit 0
fi
if grep -q '^|' "$out" && grep -q 'targets missed:' "$out"; then
	# Every measurement was made: the table, then what missed.
	grep '^|' "$out"
	sed -n '/targets missed:/,/^--- FAIL\|^FAIL/p' "$out" | grep -v '^--- FAIL\|^FAIL' | sed 's/^[[:space:]]*//; s/^table_test.go:[0-9]*: //' >&2
	echo "bench: a target was missed" >&2
else
	cat "$out"
	echo "bench: a measurement failed" >&2
fi
exit 1
