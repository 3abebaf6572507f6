#!/usr/bin/env bash
# Proves agent/third_party/moov-io/iso8583 is moov-io/iso8583 v0.26.1 with only
# the one-line 32-bit patch described in its PATCHED.md: every file we ship must
# match the pristine module from the proxy, except prefix/binary.go, whose diff
# must be exactly that line (plus its comment).
set -euo pipefail
cd "$(dirname "$0")/.."
fork=agent/third_party/moov-io/iso8583
pristine=$(GOFLAGS=-mod=mod go mod download -json github.com/moov-io/iso8583@v0.26.1 | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$pristine" ] || { echo "check-fork: cannot download moov-io/iso8583 v0.26.1" >&2; exit 1; }
status=0
while IFS= read -r f; do
	rel=${f#"$fork"/}
	case $rel in go.mod|PATCHED.md|prefix/binary.go) continue ;; esac
	if ! cmp -s "$f" "$pristine/$rel"; then echo "check-fork: $rel differs from v0.26.1" >&2; status=1; fi
done < <(find "$fork" -type f)
want=$'< \tif n > math.MaxUint32 {\n---\n> \t// posagent patch: compare as uint64 so the constant fits on 32-bit ints (armv7).\n> \tif uint64(n) > math.MaxUint32 {'
got=$(diff "$pristine/prefix/binary.go" "$fork/prefix/binary.go" | sed 1d || true)
if [ "$got" != "$want" ]; then echo "check-fork: prefix/binary.go is not exactly the documented patch:" >&2; echo "$got" >&2; status=1; fi
[ $status -eq 0 ] && echo "check-fork: moov-io/iso8583 fork = v0.26.1 + 32-bit patch"
exit $status
