# posagent — the targets are the interface (README.md).
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/posagent/posagent/agent.Version=$(VERSION)
BIN       := bin
CMDS      := posagent posctl
STATICCHECK_VERSION := v0.8.2

# cgo cross environments (Debian multiarch; scripts/deps.sh cross installs them).
ARMV7 := GOOS=linux GOARCH=arm GOARM=7 CGO_ENABLED=1 CC=arm-linux-gnueabihf-gcc PKG_CONFIG_LIBDIR=/usr/lib/arm-linux-gnueabihf/pkgconfig
ARM64 := GOOS=linux GOARCH=arm64 CGO_ENABLED=1 CC=aarch64-linux-gnu-gcc PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig

# Packages whose tests also run as armv7 and arm64 binaries under qemu-user.
ARM_TEST_PKGS := ./provisioning/... ./agent/store ./agent/receipt ./agent/installer/ui ./agent/config ./agent/sim/inproc ./agent/sim/ledger \
	./drivers/magstripe ./drivers/printer ./drivers/serialport ./agent/sim/devsim \
	./drivers/cardreader/... ./agent/card/emv ./agent/sim/cardsim ./cmd/cardsim ./agent/central/outbox \
	./drivers/keypad/... ./agent/acquirer

.PHONY: all build demo test test-cluster test-go test-arm cross lint bench bench-go bench-fleet bench-fleet-restart bench-fleet-inproc install crashtest fuzz deps clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# The whole install on simulated devices, with an embedded MQTT broker. It
# needs nothing but Go: built without cgo (the PC/SC backend, which the demo
# does not use, is then a stub; no C compiler, no libpcsclite), and it installs
# nothing. Without a CJK font the slips stay text and the demo says how to get
# the pictures (scripts/deps.sh demo).
demo:
	CGO_ENABLED=0 $(GO) run -ldflags '$(LDFLAGS)' ./cmd/posagent demo --slips $(BIN)/demo-slips

# Everything CI checks: packages the tests need, lint, race tests against real
# peers (mosquitto), cross builds and the armv7 demo under qemu.
test:
	bash scripts/test.sh

# The cluster suite (every test named *Cluster*): a 3-node RabbitMQ MQTT
# cluster on loopback (scripts/rabbitmq-cluster.sh, shared by the tests, about
# 20 s to come up and 125 MB per node), stopped again when the suite ends,
# passed or failed. make test skips these tests: they need POSAGENT_CLUSTER=1.
# pcscd with vpcd too: the whole-agent node-death test reads a virtual chip card.
test-cluster:
	@bash scripts/deps.sh >/dev/null
	trap 'bash scripts/rabbitmq-cluster.sh down; bash scripts/pcsc-bench.sh down' EXIT; \
	bash scripts/pcsc-bench.sh up && \
	bash scripts/rabbitmq-cluster.sh up && \
	POSAGENT_CLUSTER=1 POSAGENT_REQUIRE_BENCH=1 $(GO) test -race -count=1 -run 'Cluster' -timeout 40m ./...

test-go:
	POSAGENT_REQUIRE_BENCH=1 $(GO) test -race -count=1 ./...

# The unit tests as ARM binaries (cgo, PC/SC linked) under qemu-user. Plain
# qemu-arm, not -L /usr/arm-linux-gnueabihf: with libc6:armhf installed that
# would mix two libcs (TESTBENCH.md). The PC/SC tests in the list reach the
# host's pcscd over its socket when scripts/pcsc-bench.sh is up.
test-arm:
	@bash scripts/deps.sh cross >/dev/null
	$(ARMV7) $(GO) test -count=1 -exec qemu-arm $(ARM_TEST_PKGS)
	$(ARM64) $(GO) test -count=1 -exec qemu-aarch64 $(ARM_TEST_PKGS)

# Firmware builds: cgo with libpcsclite for the chip reader, stripped, version
# stamped, and without the simulators, the demo and its embedded MQTT broker
# (-tags firmware; deps_test.go holds the line). A
# pure-Go build of every package proves CGO_ENABLED=0 still works (the PC/SC
# backend then reports itself unavailable).
cross:
	@bash scripts/deps.sh cross >/dev/null
	@mkdir -p $(BIN)
	$(ARMV7) $(GO) build -tags firmware -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/posagent-linux-armv7 ./cmd/posagent
	$(ARM64) $(GO) build -tags firmware -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/posagent-linux-arm64 ./cmd/posagent
	$(ARMV7) $(GO) build -tags firmware -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/posctl-linux-armv7 ./cmd/posctl
	$(ARM64) $(GO) build -tags firmware -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/posctl-linux-arm64 ./cmd/posctl
	GOOS=linux GOARCH=arm GOARM=7 CGO_ENABLED=0 $(GO) build ./...
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build ./...
	@ls -l $(BIN)/*-linux-*

lint:
	bash scripts/lint.sh $(STATICCHECK_VERSION)

# The firmware bench: one table of the targets (armv7 size, idle RSS, start →
# MQTT online, agent CPU vs simulated device I/O, allocations) on pcscd +
# cardsim, mosquitto, hostsim and a pty printer; redoes `make cross` first.
bench:
	bash scripts/bench.sh

# Every Go benchmark (ns/op, B/op, allocs/op).
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The fleet benchmark: N simulated terminals (N=1000 by default; child
# processes of at most 7,000 connections, agent/testkit/fleet) installing
# on one mosquitto and on the 3-node RabbitMQ cluster
# (scripts/rabbitmq-cluster.sh, brought up here and taken down after), and
# with a node SIGKILLed mid-install, every event counted by (tid, seq): one
# table; then bench-fleet-restart. First connects arrive at RATE per second
# (default 100: faster collapses the cluster on a busy 2-core machine,
# README). About 45 minutes at N=10000 RATE=40, most of it RabbitMQ;
# SHORT=1 leaves out the restarts. CENTRAL=queue (the default) counts the
# cluster's runs in queue mode, as central runs there; CENTRAL=mqtt with an
# MQTT subscriber on a node that is never killed. bench-fleet-inproc is the
# older figure: N terminals in this one process on mosquitto.
N ?= 1000
RATE ?= 100
CENTRAL ?= queue
SHORT ?=
bench-fleet:
	@bash scripts/deps.sh >/dev/null
	trap 'bash scripts/rabbitmq-cluster.sh down; bash scripts/pcsc-bench.sh down' EXIT; \
	bash scripts/pcsc-bench.sh up && \
	bash scripts/rabbitmq-cluster.sh up && \
	POSAGENT_CLUSTER=1 POSAGENT_REQUIRE_BENCH=1 POSAGENT_FLEET_N=$(N) POSAGENT_FLEET_RATE=$(RATE) POSAGENT_FLEET_CENTRAL=$(CENTRAL) $(GO) test -run '^$$' -bench '^BenchmarkFleetCluster$$' \
		-benchtime 1x -timeout 90m ./agent/central/monitor
	$(if $(SHORT),,$(MAKE) --no-print-directory bench-fleet-restart N=$(N) RATE=$(RATE) RESTARTS=$(RESTARTS))

# Whole-cluster restarts with the N connected, one per kind RESTARTS names
# (jitter: the agent's full-jitter backoff; nojitter: every wait at its
# window's top), each on a fresh cluster (down, up), so that one kind's
# run cannot leave the next its backlog (a restart that churns leaves
# thousands of half-open sockets and queued client-ID registrations).
# RECONNECT_MAX (a Go duration) sets the client's backoff cap (agent default
# 1m); BACK_WITHIN how long to watch the fleet come back (default 10m).
comma := ,
RESTARTS ?= jitter,nojitter
RECONNECT_MAX ?=
BACK_WITHIN ?=
bench-fleet-restart:
	@bash scripts/deps.sh >/dev/null
	trap 'bash scripts/rabbitmq-cluster.sh down' EXIT; \
	for kind in $(subst $(comma), ,$(RESTARTS)); do \
		bash scripts/rabbitmq-cluster.sh down && bash scripts/rabbitmq-cluster.sh up && \
		POSAGENT_CLUSTER=1 POSAGENT_REQUIRE_BENCH=1 POSAGENT_FLEET_N=$(N) POSAGENT_FLEET_RATE=$(RATE) POSAGENT_FLEET_RESTARTS=$$kind POSAGENT_FLEET_RECONNECT_MAX=$(RECONNECT_MAX) POSAGENT_FLEET_BACK_WITHIN=$(BACK_WITHIN) $(GO) test -run '^$$' -bench '^BenchmarkFleetClusterRestart$$' \
			-benchtime 1x -timeout 90m ./agent/central/monitor || exit 1; \
	done

bench-fleet-inproc:
	POSAGENT_FLEET_N=$(N) $(GO) test -run '^$$' -bench '^BenchmarkFleet$$' -benchtime 1x -timeout 10m ./agent/central/monitor

# The crash campaign: CRASH_N fresh installs on real pcscd + cardsim,
# mosquitto, hostsim and a pty printer, each SIGKILLed at random moments and
# restarted until live, invariants printed per install (CRASH_SEED replays).
# MODE=hostile puts agent/testkit/hostile's attacker between the agent and hostsim
# (drops, delays, forged and stripped answers, mixed with SIGKILLs): each
# install must end live or stop for the operator, with no double charge and
# no clear track on the wire (HOSTILE_SEED replays).
CRASH_N ?= 100
MODE    ?= crash
crashtest:
	bash scripts/crashtest.sh $(CRASH_N) $(MODE)

# Lays out the daemon in a root file system: $(PREFIX)/bin, /etc/posagent,
# the systemd unit, the sysvinit script, /var/lib/posagent. ARCH=armv7 or
# arm64 installs the firmware builds of `make cross` instead of `make build`.
PREFIX ?= /usr
ARCH   ?=
install: $(if $(ARCH),,build)
	DESTDIR='$(DESTDIR)' PREFIX='$(PREFIX)' bash scripts/install.sh \
		$(BIN)/posagent$(if $(ARCH),-linux-$(ARCH)) $(BIN)/posctl$(if $(ARCH),-linux-$(ARCH))

# Every fuzz target, FUZZ_N inputs each (make test runs a short pass; this is
# the long one).
FUZZ_N ?= 100000x
fuzz:
	bash scripts/fuzz.sh $(FUZZ_N)

deps:
	bash scripts/deps.sh

clean:
	rm -rf $(BIN)
