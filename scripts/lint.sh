#!/usr/bin/env bash
# gofmt, go vet and staticcheck (pinned, installed into GOBIN on first use).
set -euo pipefail
version=${1:-v0.8.2}
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
bash "$(dirname "$0")/check-fork.sh"
go vet ./...
gobin=$(go env GOBIN); [ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
sc="$gobin/staticcheck"
if ! [ -x "$sc" ] || ! "$sc" -version 2>/dev/null | grep -q "(${version#v})"; then
	echo "lint: installing staticcheck $version"
	GOFLAGS= go install "honnef.co/go/tools/cmd/staticcheck@$version"
fi
"$sc" ./...
echo "lint: ok"
