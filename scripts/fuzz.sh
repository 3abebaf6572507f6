#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a fixed number of inputs each
# (scripts/fuzz.sh 20000x). Targets are found by their `func FuzzXxx(` line, so
# a new one is fuzzed without being listed anywhere. Counts, not durations: a
# duration -fuzztime fails spuriously on a loaded machine (go#75804).
# A crasher is written to the package's testdata/fuzz/FuzzXxx/ by go test;
# commit it as a seed once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000x}
total=0
start=$(date +%s)
while IFS= read -r file; do
	dir=./$(dirname "$file")
	# Only _test.go files of this module (the vendored fork has none).
	for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file"); do
		echo "fuzz: $dir $target ($n)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$n" "$dir" >/tmp/posagent-fuzz.log 2>&1 || {
			cat /tmp/posagent-fuzz.log; echo "fuzz: $dir $target failed"; exit 1; }
		total=$((total + 1))
	done
done < <(git ls-files '*_test.go' 2>/dev/null | xargs grep -l '^func Fuzz' | grep -v '^agent/third_party/' | sort)
echo "fuzz: $total targets, $n inputs each, in $(( $(date +%s) - start )) s"
