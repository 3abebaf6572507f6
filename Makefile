# posagent — the targets are the interface (README.md).
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/posagent/posagent/agent.Version=$(VERSION)
BIN       := bin
CMDS      := posagent posctl
STATICCHECK_VERSION := v0.8.2

.PHONY: all build demo test test-go cross lint bench deps clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# The whole install on simulated devices, with an embedded MQTT broker.
demo:
	$(GO) run -ldflags '$(LDFLAGS)' ./cmd/posagent demo

# Everything CI checks: packages the tests need, lint, race tests against real
# peers (mosquitto), cross builds and the armv7 demo under qemu.
test:
	bash scripts/test.sh

test-go:
	POSAGENT_REQUIRE_BENCH=1 $(GO) test -race -count=1 ./...

# Firmware builds. CGO stays off until the PC/SC driver lands (issue 8 adds cgo).
cross:
	@mkdir -p $(BIN)
	GOOS=linux GOARCH=arm GOARM=7 CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/posagent-linux-armv7 ./cmd/posagent
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/posagent-linux-arm64 ./cmd/posagent
	GOOS=linux GOARCH=arm GOARM=7 CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/posctl-linux-armv7 ./cmd/posctl
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/posctl-linux-arm64 ./cmd/posctl

lint:
	bash scripts/lint.sh $(STATICCHECK_VERSION)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

deps:
	bash scripts/deps.sh

clean:
	rm -rf $(BIN)
