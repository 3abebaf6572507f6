#!/usr/bin/env bash
# RabbitMQ test bench: a 3-node cluster (rmq1..3@localhost) with the MQTT
# plugin on loopback, for the cluster suite (make test-cluster) and for
# agent/testkit/bench.NeedRabbitCluster, which brings it up through this
# script when it is not up yet.
#
#   scripts/rabbitmq-cluster.sh up        start epmd and the 3 nodes, cluster them, make the admin user
#                                         (nothing to do when up; a killed node is started again)
#   scripts/rabbitmq-cluster.sh down      stop every node and the epmd this script started (by pid), remove the state
#   scripts/rabbitmq-cluster.sh status    the cluster's status; exit 0 when all 3 nodes run
#   scripts/rabbitmq-cluster.sh kill N    SIGKILL node N's beam.smp (a crash)
#   scripts/rabbitmq-cluster.sh start N   start node N again; returns once it runs, is clustered and its MQTT port accepts
#   scripts/rabbitmq-cluster.sh stop N    stop node N gracefully
#   scripts/rabbitmq-cluster.sh stop all  stop every node at once (a whole-cluster outage; the state stays)
#   scripts/rabbitmq-cluster.sh start all start every node at once; returns once all run, are clustered and accept MQTT
#   scripts/rabbitmq-cluster.sh env       shell assignments: ports, node names, state dir, admin user
#                                         (the password only as the path of its file)
#
# Environment:
#   POSAGENT_RABBIT_DIR        state dir (default /tmp/posagent-rabbit): cookie, admin password,
#                              each node's data, logs and pid file, the TLS files
#   POSAGENT_RABBIT_PORT_BASE  first port of the bench's 100 (default 27100, below Linux's
#                              ephemeral range 32768-60999 so no outgoing connection holds one):
#                              epmd BASE; node N AMQP BASE+10N+1, dist +2, MQTT +3, MQTT/TLS +4;
#                              the rabbitmqctl processes' own dist ports BASE+50..BASE+99
#
# Everything binds 127.0.0.1. Every rabbitmqctl call runs
# /usr/lib/rabbitmq/bin/rabbitmqctl (the /usr/sbin wrappers su to the
# rabbitmq user, who has another cookie) with HOME set to the state dir,
# where the cookie of this `up` lives: a CLI call without that HOME would
# silently make a random ~/.erlang.cookie and fail to authenticate.
set -euo pipefail
cd "$(dirname "$0")/.."
state=${POSAGENT_RABBIT_DIR:-/tmp/posagent-rabbit}
state=${state%/}
base=${POSAGENT_RABBIT_PORT_BASE:-27100}
nodes=3
sbin=/usr/lib/rabbitmq/bin
admin=admin
epmd_port=$base

amqp_port() { echo $((base + 10 * $1 + 1)); }
dist_port() { echo $((base + 10 * $1 + 2)); }
mqtt_port() { echo $((base + 10 * $1 + 3)); }
mqtts_port() { echo $((base + 10 * $1 + 4)); }
node_name() { echo "rmq$1@localhost"; }
node_dir() { echo "$state/rmq$1"; }
node_pidfile() { echo "$state/rmq$1/beam.pid"; }

log() { echo "rabbitmq-cluster: $*" >&2; }
die() {
	log "$*"
	exit 1
}

# A state dir that is up keeps the ports it came up with: `kill N`, `start N`
# and `stop N` come from tests that pass on POSAGENT_RABBIT_DIR alone, and a
# node started on the default base, beside its own cluster, never rejoins it
# (it registers with another epmd and waits for its peers forever).
if [ -f "$state/env" ]; then
	up_base=$(sed -n 's/^POSAGENT_RABBIT_EPMD_PORT=//p' "$state/env")
	if [ -n "$up_base" ]; then
		[ -z "${POSAGENT_RABBIT_PORT_BASE:-}" ] || [ "$POSAGENT_RABBIT_PORT_BASE" = "$up_base" ] ||
			die "$state is on port base $up_base, not POSAGENT_RABBIT_PORT_BASE=$POSAGENT_RABBIT_PORT_BASE (down it first to move it)"
		base=$up_base
		epmd_port=$base
	fi
fi

check_pkgs() {
	dpkg -s rabbitmq-server >/dev/null 2>&1 && [ -x "$sbin/rabbitmq-server" ] ||
		die "rabbitmq-server is not installed (run scripts/deps.sh)"
	command -v epmd >/dev/null || die "no epmd on PATH (erlang-base; run scripts/deps.sh)"
	command -v openssl >/dev/null || die "no openssl (run scripts/deps.sh)"
}

# node_env N: the environment of node N's server and of every CLI call
# against it, in the array envv. RABBITMQ_CONF_ENV_FILE points at an empty
# file so /etc/rabbitmq's rabbitmq-env.conf cannot move a node elsewhere.
node_env() {
	local d
	d=$(node_dir "$1")
	envv=(HOME="$state" ERL_EPMD_PORT="$epmd_port" ERL_EPMD_ADDRESS=127.0.0.1
		RABBITMQ_CONF_ENV_FILE="$state/rabbitmq-env.conf"
		RABBITMQ_NODENAME="$(node_name "$1")" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
		RABBITMQ_NODE_PORT="$(amqp_port "$1")" RABBITMQ_DIST_PORT="$(dist_port "$1")"
		RABBITMQ_MNESIA_BASE="$d/mnesia" RABBITMQ_LOG_BASE="$d/log"
		RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" RABBITMQ_ADVANCED_CONFIG_FILE="$d/advanced.config"
		RABBITMQ_ENABLED_PLUGINS_FILE="$state/enabled_plugins" RABBITMQ_PID_FILE="$(node_pidfile "$1")"
		RABBITMQ_CTL_DIST_PORT_MIN=$((base + 50)) RABBITMQ_CTL_DIST_PORT_MAX=$((base + 99))
		# -start_epmd false: a CLI call while our epmd is down (a node
		# stopped, the cluster going down) would otherwise leave an orphan
		# "epmd -daemon" on our port, and the next up would find it taken.
		"RABBITMQ_CTL_ERL_ARGS=-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}"
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
		ERL_CRASH_DUMP="$d/erl_crash.dump")
}

# ctl N ARGS...: rabbitmqctl against node N, stdin from /dev/null unless
# redirected by the caller (ctl_in).
ctl() { ctl_in /dev/null "$@"; }
ctl_in() {
	local in=$1 n=$2
	shift 2
	node_env "$n"
	env "${envv[@]}" "$sbin/rabbitmqctl" -q -n "$(node_name "$n")" "$@" <"$in"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
node_alive() { alive "$(node_pidfile "$1")"; }
epmd_alive() { alive "$state/epmd.pid"; }

# wait_for SECONDS COND...: poll a condition that has no event to wait on.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.1
	done
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pid_gone() { ! kill -0 "$1" 2>/dev/null; }

write_config() {
	local n=$1 d
	d=$(node_dir "$n")
	mkdir -p "$d/log" "$d/mnesia"
	cat >"$d/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$(amqp_port "$n")
mqtt.listeners.tcp.default = 127.0.0.1:$(mqtt_port "$n")
mqtt.listeners.ssl.default = 127.0.0.1:$(mqtts_port "$n")
ssl_options.cacertfile = $state/pki/ca.pem
ssl_options.certfile = $state/pki/server.pem
ssl_options.keyfile = $state/pki/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
mqtt.allow_anonymous = false
log.connection.level = warning
log.file.level = info
vm_memory_high_watermark.absolute = 4GB
log.console = false
EOF
}

# The memory watermark is absolute: the default (0.4 of RAM per node) lets
# three nodes on one machine take more than it has before any alarm.

# make_pki: a CA and a server certificate for 127.0.0.1 and localhost, made
# per `up` (test keys, never committed), for the nodes' MQTT/TLS listeners.
make_pki() {
	local p=$state/pki
	mkdir -p "$p"
	(
		cd "$p"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
			-subj "/CN=posagent rabbit test CA" -keyout ca.key -out ca.pem 2>/dev/null
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
			-extfile server.ext -out server.pem 2>/dev/null
		rm -f server.csr server.ext ca.srl ca.key
		chmod 600 server.key
	)
}

# launch N: start node N's server in the background, detached from our
# stdio (a caller reading our output, such as a Go test, would otherwise
# wait for the nodes to exit).
launch() {
	local n=$1
	rm -f "$(node_pidfile "$n")"
	node_env "$n"
	env "${envv[@]}" "$sbin/rabbitmq-server" </dev/null >"$(node_dir "$n")/server.out" 2>&1 9>&- &
	echo $! >"$(node_dir "$n")/wrapper.pid"
}

# wait_node N: until node N's rabbit app runs (rabbitmqctl wait reads the
# pid file the node writes, and fails when that process dies).
wait_node() {
	local n=$1
	wait_for 60 test -s "$(node_pidfile "$n")" || {
		tail -n 30 "$(node_dir "$n")/server.out" >&2
		die "node $n wrote no pid file in 60 s"
	}
	ctl "$n" wait --timeout 180 "$(node_pidfile "$n")" >/dev/null || {
		tail -n 30 "$(node_dir "$n")/server.out" >&2
		die "node $n did not start; log: $(node_dir "$n")/log"
	}
}

# running_nodes N: how many nodes node N's cluster_status lists as running.
running_nodes() {
	ctl "$1" cluster_status --formatter json | tr ',' '\n' | sed -n '/"running_nodes"/,/]/p' | grep -c '@localhost'
}
in_cluster() {
	local n=$1
	ctl "$n" cluster_status --formatter json | sed 's/.*"running_nodes":\[\([^]]*\)\].*/\1/' | grep -q "\"$(node_name "$n")\""
}

start_node() {
	local n=$1
	[ -f "$state/env" ] || die "the cluster is not up (scripts/rabbitmq-cluster.sh up)"
	if ! node_alive "$n"; then
		launch "$n"
		wait_node "$n"
	fi
	wait_for 60 in_cluster "$n" || die "node $n runs but is not in the cluster"
	wait_for 60 port_open "$(mqtt_port "$n")" || die "node $n's MQTT port $(mqtt_port "$n") does not accept"
}

stop_pid() {
	local pid=$1
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	wait_for 60 pid_gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
	wait_for 10 pid_gone "$pid" || true
}

# stop_node N: graceful (SIGTERM makes rabbit stop itself), then the
# wrapper shell that waited on it.
stop_node() {
	local n=$1 f
	for f in "$(node_pidfile "$n")" "$(node_dir "$n")/wrapper.pid"; do
		[ -f "$f" ] && stop_pid "$(cat "$f")"
	done
	rm -f "$(node_pidfile "$n")"
}

# start_all: every node that is down, launched together. After a
# whole-cluster stop a node that was not the last to stop waits for its
# peers' tables, and the MQTT plugin's Raft cluster (client-ID tracking)
# wants a majority: one node after the other would keep each waiting for
# the next (a sequential start of the three took 115 s here, 100 s of it
# one node's MQTT plugin waiting for its Raft leader).
start_all() {
	local n
	[ -f "$state/env" ] || die "the cluster is not up (scripts/rabbitmq-cluster.sh up)"
	for n in $(seq 1 $nodes); do node_alive "$n" || launch "$n"; done
	for n in $(seq 1 $nodes); do wait_node "$n"; done
	for n in $(seq 1 $nodes); do
		wait_for 60 in_cluster "$n" || die "node $n runs but is not in the cluster"
		wait_for 60 port_open "$(mqtt_port "$n")" || die "node $n's MQTT port $(mqtt_port "$n") does not accept"
	done
}

stop_all() {
	local n pids=()
	for n in $(seq 1 $nodes); do
		stop_node "$n" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
}

kill_node() {
	local n=$1 pid
	node_alive "$n" || die "node $n is not running"
	pid=$(cat "$(node_pidfile "$n")")
	kill -KILL "$pid"
	wait_for 10 pid_gone "$pid" || die "node $n (pid $pid) survived SIGKILL"
}

check_n() {
	case "${1:-}" in
	[1-3]) ;;
	*) die "node number 1..$nodes expected, got '${1:-}'" ;;
	esac
}

print_env() {
	local n
	echo "POSAGENT_RABBIT_DIR=$state"
	echo "POSAGENT_RABBIT_NODES=$nodes"
	echo "POSAGENT_RABBIT_EPMD_PORT=$epmd_port"
	echo "POSAGENT_RABBIT_CTL_DIST_PORT_MIN=$((base + 50))"
	echo "POSAGENT_RABBIT_CTL_DIST_PORT_MAX=$((base + 99))"
	for n in $(seq 1 $nodes); do
		echo "POSAGENT_RABBIT_NODE$n=$(node_name "$n")"
		echo "POSAGENT_RABBIT_AMQP_PORT$n=$(amqp_port "$n")"
		echo "POSAGENT_RABBIT_DIST_PORT$n=$(dist_port "$n")"
		echo "POSAGENT_RABBIT_MQTT_PORT$n=$(mqtt_port "$n")"
		echo "POSAGENT_RABBIT_MQTTS_PORT$n=$(mqtts_port "$n")"
	done
	echo "POSAGENT_RABBIT_ADMIN_USER=$admin"
	echo "POSAGENT_RABBIT_ADMIN_PASSWORD_FILE=$state/admin.password"
	echo "POSAGENT_RABBIT_CA_FILE=$state/pki/ca.pem"
}

all_up() {
	local n
	[ -f "$state/env" ] && epmd_alive || return 1
	for n in $(seq 1 $nodes); do node_alive "$n" || return 1; done
}

up() {
	check_pkgs
	if [ -f "$state/env" ] && epmd_alive; then
		# Up already: start any node a crash test left down.
		local n
		for n in $(seq 1 $nodes); do start_node "$n"; done
		print_env >"$state/env"
		log "up (state $state)"
		return 0
	fi
	# Leftovers of an `up` that did not finish, or of a machine restart.
	down >/dev/null
	# A fresh `up` that fails (or is interrupted) stops what it started: a
	# CI machine keeps no half cluster holding the ports.
	trap 'exit 143' TERM INT
	trap '[ $? -eq 0 ] || { log "up failed; stopping what it started"; down >/dev/null 2>&1; }' EXIT
	local t0=$SECONDS n
	mkdir -p "$state"
	chmod 700 "$state"
	: >"$state/.posagent-rabbit"
	: >"$state/rabbitmq-env.conf"
	echo '[rabbitmq_mqtt,rabbitmq_consistent_hash_exchange].' >"$state/enabled_plugins"
	(umask 077 && head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$state/.erlang.cookie")
	chmod 400 "$state/.erlang.cookie"
	make_pki
	for n in $(seq 1 $nodes); do
		port_open "$(amqp_port "$n")" && die "port $(amqp_port "$n") is taken (set POSAGENT_RABBIT_PORT_BASE)"
		port_open "$(mqtt_port "$n")" && die "port $(mqtt_port "$n") is taken (set POSAGENT_RABBIT_PORT_BASE)"
		write_config "$n"
	done
	port_open "$epmd_port" && die "port $epmd_port (epmd) is taken (set POSAGENT_RABBIT_PORT_BASE)"
	# Our own epmd, started first so it is our child and not one the first
	# node would spawn (and leave running) on its own.
	epmd -address 127.0.0.1 -port "$epmd_port" </dev/null >"$state/epmd.log" 2>&1 9>&- &
	echo $! >"$state/epmd.pid"
	wait_for 10 port_open "$epmd_port" || die "epmd did not listen on $epmd_port: $(cat "$state/epmd.log")"
	for n in $(seq 1 $nodes); do launch "$n"; done
	for n in $(seq 1 $nodes); do wait_node "$n"; done
	for n in $(seq 2 $nodes); do
		ctl "$n" stop_app >/dev/null
		ctl "$n" join_cluster "$(node_name 1)" >/dev/null
		ctl "$n" start_app >/dev/null
	done
	# The password goes to rabbitmqctl on stdin, never on a command line.
	(umask 077 && head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$state/admin.password")
	ctl_in "$state/admin.password" 1 add_user "$admin" >/dev/null
	ctl 1 set_user_tags "$admin" administrator >/dev/null
	ctl 1 set_permissions -p / "$admin" '.*' '.*' '.*' >/dev/null
	ctl 1 delete_user guest >/dev/null
	for n in $(seq 1 $nodes); do
		wait_for 60 port_open "$(mqtt_port "$n")" || die "node $n's MQTT port does not accept"
	done
	[ "$(running_nodes 1)" = "$nodes" ] || die "cluster_status does not list $nodes running nodes"
	print_env >"$state/env"
	trap - EXIT TERM INT
	log "up in $((SECONDS - t0)) s (state $state)"
}

down() {
	local n pids=()
	[ -d "$state" ] || return 0
	# rm -rf only what `up` made: POSAGENT_RABBIT_DIR=/tmp must not empty /tmp.
	# (A dir holding this script's files but no marker is an older version's.)
	if [ ! -f "$state/.posagent-rabbit" ] && [ -n "$(ls -A "$state")" ] &&
		! { [ -f "$state/enabled_plugins" ] && [ -f "$state/rabbitmq-env.conf" ]; }; then
		die "$state is not a state dir of this script (no .posagent-rabbit in it); not touching it"
	fi
	# In parallel: each node's graceful stop takes about 2 s.
	for n in $(seq 1 $nodes); do
		[ -d "$(node_dir "$n")" ] && stop_node "$n" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || true; done
	[ -f "$state/epmd.pid" ] && stop_pid "$(cat "$state/epmd.pid")"
	rm -rf "$state"
	log "down"
}

status() {
	all_up || {
		log "not up"
		return 1
	}
	ctl 1 cluster_status
	[ "$(running_nodes 1)" = "$nodes" ]
}

# One change at a time per state dir: two `up`s at once (two test
# processes, make test-cluster beside a test that brings the cluster up)
# would each start nodes on the same ports and stop the other's. The lock
# lives beside the state dir, which `down` removes; the daemons do not
# inherit it (9>&-).
case "${1:-}" in
up | down | kill | start | stop)
	exec 9>"$state.script-lock"
	flock 9
	;;
esac
case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
kill) check_n "${2:-}" && kill_node "$2" ;;
start) if [ "${2:-}" = all ]; then start_all; else check_n "${2:-}" && start_node "$2"; fi ;;
stop) if [ "${2:-}" = all ]; then stop_all; else check_n "${2:-}" && stop_node "$2"; fi ;;
env) [ -f "$state/env" ] && cat "$state/env" || die "the cluster is not up" ;;
*)
	echo "usage: $0 up|down|status|env|kill N|start N|all|stop N|all" >&2
	exit 2
	;;
esac
