#!/usr/bin/env bash
# PC/SC test bench: pcscd with vsmartcard-vpcd's two virtual slots
# ("Virtual PCD 00 00" on 127.0.0.1:35963, "Virtual PCD 00 01" on :35964),
# into which agent/sim/cardsim plugs virtual cards.
#
#   scripts/pcsc-bench.sh up      start pcscd (if this script has not already) and wait for its socket
#   scripts/pcsc-bench.sh down    stop the pcscd this script started (by PID file, never by name)
#   scripts/pcsc-bench.sh status  exit 0 when the socket is there
#
# pcscd is one per machine (fixed socket /run/pcscd/pcscd.comm): if one is
# already running that this script did not start (systemd, another bench),
# `up` uses it and `down` leaves it alone.
set -euo pipefail
cd "$(dirname "$0")/.."
state=${PCSC_BENCH_DIR:-/tmp/posagent-pcsc-bench}
pidfile=$state/pcscd.pid
log=$state/pcscd.log
sock=/run/pcscd/pcscd.comm
pkgs=(pcscd "libpcsclite-dev:$(dpkg --print-architecture)" vsmartcard-vpcd pkg-config)

check_pkgs() {
	local missing=()
	for p in "${pkgs[@]}"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "pcsc-bench: missing Debian packages: ${missing[*]} (run scripts/deps.sh)" >&2
		exit 1
	fi
}

ours_running() {
	[ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# wait_for COND_CMD... : poll a condition (pcscd gives no readiness signal
# besides the socket) for at most 10 s.
wait_for() {
	for _ in $(seq 1 200); do
		if "$@"; then return 0; fi
		sleep 0.05
	done
	return 1
}

# vpcd's two ports lie inside Linux's ephemeral range (32768-60999): a
# test's outgoing connection may take one, and pcscd then comes up without
# that reader ("Address already in use" in its log, the slot missing; seen
# on this bench: a TIME-WAIT of such a connection holds the port for 60 s).
# Reserve them from the ephemeral range where we may (root, the CI); a port
# taken before that makes `up` start pcscd again until it binds.
vpcd_ports=35963-35964
reserve_ports() {
	local f=/proc/sys/net/ipv4/ip_local_reserved_ports cur
	[ -w "$f" ] || return 0
	cur=$(cat "$f")
	case ",$cur," in *",$vpcd_ports,"*) return 0 ;; esac
	echo "${cur:+$cur,}$vpcd_ports" >"$f" 2>/dev/null || true
}
vpcd_failed() { grep -q "Could not initialize connection to virtual ICC" "$log"; }

sock_ready() { [ -S "$sock" ]; }
sock_gone() { [ ! -S "$sock" ]; }

up() {
	check_pkgs
	mkdir -p "$state"
	if ours_running; then
		echo "pcsc-bench: pcscd already up (pid $(cat "$pidfile"))"
		return 0
	fi
	if sock_ready && pcsc_alive; then
		echo "pcsc-bench: using the pcscd already running on this machine"
		return 0
	fi
	reserve_ports
	for try in $(seq 1 36); do
		# A stale socket after kill -9 is cleaned up by pcscd itself.
		pcscd -f -i >"$log" 2>&1 &
		echo $! >"$pidfile"
		if ! wait_for sock_ready; then
			echo "pcsc-bench: pcscd did not create $sock; log:" >&2
			cat "$log" >&2
			down
			exit 1
		fi
		vpcd_failed || break
		if [ "$try" = 36 ]; then
			echo "pcsc-bench: pcscd came up without a vpcd slot for 70 s; log:" >&2
			cat "$log" >&2
			down
			exit 1
		fi
		echo "pcsc-bench: a vpcd port is still taken; starting pcscd again" >&2
		down >/dev/null
		sleep 2
	done
	echo "pcsc-bench: pcscd up (pid $(cat "$pidfile"), log $log)"
}

# pcsc_alive: a socket with a live pcscd behind it (any pid named in the
# pcscd pid file that pcscd itself writes).
pcsc_alive() {
	local pid
	# pcscd's own pid file ends in a NUL byte: keep the digits only.
	pid=$(tr -dc '0-9' </run/pcscd/pcscd.pid 2>/dev/null) || return 1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

down() {
	if [ -f "$pidfile" ]; then
		pid=$(cat "$pidfile")
		if kill -0 "$pid" 2>/dev/null; then
			kill "$pid"
			pid_gone() { ! kill -0 "$pid" 2>/dev/null; }
			wait_for pid_gone || kill -9 "$pid" 2>/dev/null || true
		fi
		rm -f "$pidfile"
		echo "pcsc-bench: pcscd stopped"
	fi
}

case "${1:-}" in
up) up ;;
down) down ;;
status) sock_ready ;;
*)
	echo "usage: $0 up|down|status" >&2
	exit 2
	;;
esac
