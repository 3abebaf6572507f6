package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// RabbitCluster is the 3-node RabbitMQ cluster of scripts/rabbitmq-cluster.sh
// (rmq1..3@localhost, MQTT plugin, anonymous MQTT refused, an admin user), as
// one test sees it.
//
// Unlike mosquitto, which each test starts for itself, the cluster is one per
// machine: it takes 20 s to come up and 125 MB per node. Every test of the
// cluster suite shares it, so a test must
//   - use TIDs, user names, client IDs and queue names no other test uses
//     (users it adds are deleted when it ends, queues it declares are its own
//     to delete);
//   - restore the nodes it kills or stops (Kill's cleanup starts the node
//     again; Stop's does too).
//
// A test that takes a node down has the cluster to itself while it does:
// NeedRabbitCluster holds a shared machine-wide lock for the whole test, and
// the first Kill or Stop turns it into an exclusive one (waiting for every
// other test using the cluster, in any package, to end), so no test sees a
// node vanish that it did not stop. Call NeedRabbitCluster at most once per
// top-level test; its subtests share that test's handle and lock.
type RabbitCluster struct {
	dir, script string
	env         map[string]string
	user, pass  string
	nodes       []rabbitNode
	lock        *clusterLock
	t           testing.TB // the test that asked for it, for the accessors' errors
}

type rabbitNode struct {
	name              string
	amqp, mqtt, mqtts int
	pidFile           string
}

// defaultRabbitDir is the script's state dir when POSAGENT_RABBIT_DIR is unset.
const defaultRabbitDir = "/tmp/posagent-rabbit"

// rabbitCtl is the CLI itself: the /usr/sbin wrapper su's to the rabbitmq
// user, whose cookie is not the cluster's.
const rabbitCtl = "/usr/lib/rabbitmq/bin/rabbitmqctl"

// NeedRabbitCluster returns the shared cluster, bringing it up through
// scripts/rabbitmq-cluster.sh (under a machine-wide lock) when the script has
// not. It skips unless POSAGENT_CLUSTER=1 (make test-cluster sets it; make
// test must not need the cluster, even with POSAGENT_REQUIRE_BENCH=1); when
// the cluster cannot be brought up it fails with POSAGENT_REQUIRE_BENCH=1 and
// skips otherwise.
func NeedRabbitCluster(t testing.TB) *RabbitCluster {
	t.Helper()
	if os.Getenv("POSAGENT_CLUSTER") != "1" {
		t.Skip("cluster suite: make test-cluster runs it")
	}
	unavailable := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("POSAGENT_REQUIRE_BENCH") == "1" {
			t.Fatal("rabbitmq cluster: " + msg)
		}
		t.Skip("rabbitmq cluster: " + msg + "; POSAGENT_REQUIRE_BENCH=1 makes this a failure")
	}
	if _, err := os.Stat(rabbitCtl); err != nil {
		unavailable("rabbitmq-server is not installed (scripts/deps.sh installs it)")
	}
	dir := os.Getenv("POSAGENT_RABBIT_DIR")
	if dir == "" {
		dir = defaultRabbitDir
	}
	script, err := findScript()
	if err != nil {
		unavailable("%v", err)
	}
	// The lock is the cluster's: a cluster in another state dir (another
	// port base) is another cluster, whose tests do not wait for ours.
	lockPath := clusterLockPath
	if dir != defaultRabbitDir {
		lockPath = filepath.Clean(dir) + ".test-lock"
	}
	lk := acquireClusterLock(t, lockPath)
	// Bring-up is serialized: packages run in parallel, and two `up`s at
	// once would each start a cluster on the same ports.
	upLock := lockFile(t, filepath.Join(os.TempDir(), "posagent-rabbit-up.lock"))
	env, err := readRabbitEnv(filepath.Join(dir, "env"))
	if err != nil || !clusterAlive(dir, env) {
		cmd := exec.Command("bash", script, "up")
		cmd.Env = append(os.Environ(), "POSAGENT_RABBIT_DIR="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			upLock.Close()
			unavailable("%s up: %v\n%s", script, err, out)
		}
		if env, err = readRabbitEnv(filepath.Join(dir, "env")); err != nil {
			upLock.Close()
			unavailable("%v", err)
		}
	}
	upLock.Close()
	c := &RabbitCluster{dir: dir, script: script, env: env, lock: lk, t: t, user: env["POSAGENT_RABBIT_ADMIN_USER"]}
	pw, err := os.ReadFile(env["POSAGENT_RABBIT_ADMIN_PASSWORD_FILE"])
	if err != nil {
		t.Fatalf("rabbitmq cluster: admin password: %v", err)
	}
	c.pass = strings.TrimSpace(string(pw))
	n, _ := strconv.Atoi(env["POSAGENT_RABBIT_NODES"])
	if n < 1 {
		t.Fatalf("rabbitmq cluster: %s/env names no nodes", dir)
	}
	for i := 1; i <= n; i++ {
		port := func(key string) int {
			p, err := strconv.Atoi(env[fmt.Sprintf("POSAGENT_RABBIT_%s_PORT%d", key, i)])
			if err != nil {
				t.Fatalf("rabbitmq cluster: %s/env: node %d has no %s port", dir, i, key)
			}
			return p
		}
		c.nodes = append(c.nodes, rabbitNode{
			name: env[fmt.Sprintf("POSAGENT_RABBIT_NODE%d", i)],
			amqp: port("AMQP"), mqtt: port("MQTT"), mqtts: port("MQTTS"),
			pidFile: filepath.Join(dir, fmt.Sprintf("rmq%d", i), "beam.pid"),
		})
	}
	return c
}

// findScript finds scripts/rabbitmq-cluster.sh in the module root above the
// working directory (a package's directory under go test).
func findScript() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			s := filepath.Join(d, "scripts", "rabbitmq-cluster.sh")
			if _, err := os.Stat(s); err != nil {
				return "", fmt.Errorf("no %s", s)
			}
			return s, nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", fmt.Errorf("no go.mod above the working directory, so no scripts/rabbitmq-cluster.sh")
		}
		d = up
	}
}

// readRabbitEnv parses the script's env file (NAME=VALUE lines).
func readRabbitEnv(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	if env["POSAGENT_RABBIT_NODES"] == "" {
		return nil, fmt.Errorf("%s names no nodes", path)
	}
	return env, nil
}

// clusterAlive says whether epmd and every node the env file names run.
func clusterAlive(dir string, env map[string]string) bool {
	n, _ := strconv.Atoi(env["POSAGENT_RABBIT_NODES"])
	files := []string{filepath.Join(dir, "epmd.pid")}
	for i := 1; i <= n; i++ {
		files = append(files, filepath.Join(dir, fmt.Sprintf("rmq%d", i), "beam.pid"))
	}
	for _, f := range files {
		if !pidAlive(f) {
			return false
		}
	}
	return n > 0
}

func pidAlive(pidFile string) bool {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && pid > 0 && syscall.Kill(pid, 0) == nil
}

// Nodes is the number of nodes.
func (c *RabbitCluster) Nodes() int { return len(c.nodes) }

func (c *RabbitCluster) node(t testing.TB, i int) rabbitNode {
	t.Helper()
	if i < 0 || i >= len(c.nodes) {
		t.Fatalf("rabbitmq cluster: no node %d (0..%d)", i, len(c.nodes)-1)
	}
	return c.nodes[i]
}

// nodeOr is node i for the accessors that have no test to fail: a bad
// index is an error of the test that asked for the cluster, and the address
// it gets (port 0) refuses every connection.
func (c *RabbitCluster) nodeOr(i int) rabbitNode {
	if i < 0 || i >= len(c.nodes) {
		c.t.Errorf("rabbitmq cluster: no node %d (0..%d)", i, len(c.nodes)-1)
		return rabbitNode{name: "none@localhost", pidFile: "/nonexistent"}
	}
	return c.nodes[i]
}

// MQTTAddr is node i's plain MQTT listener, "127.0.0.1:port" (i from 0).
func (c *RabbitCluster) MQTTAddr(i int) string {
	return fmt.Sprintf("127.0.0.1:%d", c.nodeOr(i).mqtt)
}

// MQTTURL is MQTTAddr as "tcp://127.0.0.1:port".
func (c *RabbitCluster) MQTTURL(i int) string { return "tcp://" + c.MQTTAddr(i) }

// MQTTTLSAddr is node i's MQTT listener over TLS (server certificate for
// 127.0.0.1 and localhost under CAFile; no client certificate asked for).
func (c *RabbitCluster) MQTTTLSAddr(i int) string {
	return fmt.Sprintf("127.0.0.1:%d", c.nodeOr(i).mqtts)
}

// CAFile is the PEM file of the CA that signed the nodes' TLS certificate
// (made by the script's `up`).
func (c *RabbitCluster) CAFile() string { return c.env["POSAGENT_RABBIT_CA_FILE"] }

// AMQPURL is node i's AMQP listener with the admin's credentials.
func (c *RabbitCluster) AMQPURL(i int) string {
	u := url.URL{Scheme: "amqp", User: url.UserPassword(c.user, c.pass), Host: fmt.Sprintf("127.0.0.1:%d", c.nodeOr(i).amqp), Path: "/"}
	return u.String()
}

// NodeName is node i's Erlang node name (rmq1@localhost for i = 0).
func (c *RabbitCluster) NodeName(i int) string { return c.nodeOr(i).name }

// Admin is the administrator's login (every permission on vhost /).
func (c *RabbitCluster) Admin() (user, password string) { return c.user, c.pass }

// Running says whether node i's Erlang VM is alive (not whether it has
// finished booting: Start waits for that).
func (c *RabbitCluster) Running(i int) bool { return pidAlive(c.nodeOr(i).pidFile) }

// Kill SIGKILLs node i's beam.smp: a crash, not a shutdown. The test's
// cleanup starts the node again if it is still down. The test gets the
// cluster to itself first (see RabbitCluster).
func (c *RabbitCluster) Kill(t testing.TB, i int) {
	t.Helper()
	c.node(t, i)
	c.disrupt(t, i)
	c.script1(t, "kill", i)
}

// Stop stops node i gracefully; the test's cleanup starts it again if it is
// still down. The test gets the cluster to itself first (see RabbitCluster).
func (c *RabbitCluster) Stop(t testing.TB, i int) {
	t.Helper()
	c.node(t, i)
	c.disrupt(t, i)
	c.script1(t, "stop", i)
}

// Start starts node i (again) and returns once it runs, is in the cluster
// and its MQTT listener accepts; a running node is left as it is.
func (c *RabbitCluster) Start(t testing.TB, i int) {
	t.Helper()
	c.node(t, i)
	c.script1(t, "start", i)
}

// StopAll stops every node at once, gracefully: a whole-cluster outage.
// The test's cleanup starts what is still down (see Stop).
func (c *RabbitCluster) StopAll(t testing.TB) {
	t.Helper()
	for i := range c.nodes {
		c.disrupt(t, i)
	}
	c.scriptAll(t, "stop")
}

// StartAll starts every node that is down, all at once (after StopAll one
// after the other would keep each waiting for the next), and returns once
// every node runs, is in the cluster and accepts MQTT.
func (c *RabbitCluster) StartAll(t testing.TB) {
	t.Helper()
	c.scriptAll(t, "start")
}

func (c *RabbitCluster) scriptAll(t testing.TB, verb string) {
	t.Helper()
	cmd := exec.Command("bash", c.script, verb, "all")
	cmd.Env = append(os.Environ(), "POSAGENT_RABBIT_DIR="+c.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rabbitmq cluster: %s all: %v\n%s", verb, err, out)
	}
}

// Exclusive takes the cluster for this test alone now, waiting for every
// other test on it to end, as the first Kill or Stop would: a test that
// must kill a node at a given moment takes it first, so the kill does not
// wait.
func (c *RabbitCluster) Exclusive(t testing.TB) {
	t.Helper()
	if err := c.lock.exclusive(); err != nil {
		t.Fatalf("rabbitmq cluster: lock: %v", err)
	}
}

// disrupt takes the cluster for this test alone and, once per node, makes
// the cleanup restore the node.
func (c *RabbitCluster) disrupt(t testing.TB, i int) {
	t.Helper()
	if err := c.lock.exclusive(); err != nil {
		t.Fatalf("rabbitmq cluster: lock: %v", err)
	}
	if c.lock.markRestore(i) {
		t.Cleanup(func() {
			if !c.Running(i) {
				c.script1(t, "start", i)
			}
			c.lock.unmarkRestore(i)
		})
	}
}

// script1 runs `scripts/rabbitmq-cluster.sh VERB N` for node i.
func (c *RabbitCluster) script1(t testing.TB, verb string, i int) {
	t.Helper()
	cmd := exec.Command("bash", c.script, verb, strconv.Itoa(i+1))
	cmd.Env = append(os.Environ(), "POSAGENT_RABBIT_DIR="+c.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rabbitmq cluster: %s node %d: %v\n%s", verb, i, err, out)
	}
}

// Ctl runs rabbitmqctl against node i (HOME at the cluster's cookie) and
// returns its output; a failure fails the test with that output.
func (c *RabbitCluster) Ctl(t testing.TB, i int, args ...string) string {
	t.Helper()
	out, err := c.ctl(c.node(t, i), "", args...)
	if err != nil {
		t.Fatalf("rabbitmqctl -n %s %s: %v\n%s", c.nodes[i].name, strings.Join(args, " "), err, out)
	}
	return out
}

// ctl runs rabbitmqctl with stdin (a password, never on the command line).
func (c *RabbitCluster) ctl(n rabbitNode, stdin string, args ...string) (string, error) {
	cmd := exec.Command(rabbitCtl, append([]string{"-q", "-n", n.name}, args...)...)
	cmd.Env = append(os.Environ(),
		"HOME="+c.dir,
		"ERL_EPMD_PORT="+c.env["POSAGENT_RABBIT_EPMD_PORT"],
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(c.dir, "rabbitmq-env.conf"),
		"RABBITMQ_CTL_DIST_PORT_MIN="+c.env["POSAGENT_RABBIT_CTL_DIST_PORT_MIN"],
		"RABBITMQ_CTL_DIST_PORT_MAX="+c.env["POSAGENT_RABBIT_CTL_DIST_PORT_MAX"],
		"RABBITMQ_CTL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}")
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// anyNode is a running node for cluster-wide changes (users live in the
// whole cluster), which must work while the test has a node down.
func (c *RabbitCluster) anyNode(t testing.TB) int {
	t.Helper()
	for i := range c.nodes {
		if c.Running(i) {
			return i
		}
	}
	t.Fatal("rabbitmq cluster: no node is running")
	return 0
}

// AddUser adds user name with vhost / permissions (configure, write, read
// regexes); the test's cleanup deletes it. The password goes to rabbitmqctl
// on stdin.
func (c *RabbitCluster) AddUser(t testing.TB, name, password, configure, write, read string) {
	t.Helper()
	n := c.anyNode(t)
	if out, err := c.ctl(c.nodes[n], password, "add_user", name); err != nil {
		t.Fatalf("rabbitmqctl add_user %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := c.ctl(c.nodes[c.anyNode(t)], "", "delete_user", name); err != nil {
			t.Errorf("rabbitmqctl delete_user %s: %v\n%s", name, err, out)
		}
	})
	c.Ctl(t, n, "set_permissions", "-p", "/", name, configure, write, read)
}

// AddTerminal adds terminal tid as the production broker has it: vhost /
// permissions for its MQTT session, and topic permissions on amq.topic that
// are the shipped mosquitto ACL's (scripts/packaging/mosquitto-acl): write
// on its own state, heartbeat, status, events and cmd/reply, read on its
// own state, ticket and cmd, nothing else — not its own ticket or cmd to
// write, not another TID's topics or a wildcard to read. MQTT's "/" is "."
// in the routing key, and RabbitMQ expands {username} (= TID). The test's
// cleanup deletes the user.
func (c *RabbitCluster) AddTerminal(t testing.TB, tid, password string) {
	t.Helper()
	c.AddUser(t, tid, password, ".*", ".*", ".*")
	c.SetTopicPermissions(t, tid, TerminalWrite, TerminalRead)
}

// TerminalWrite and TerminalRead are a terminal's topic permissions on
// RabbitMQ (amq.topic routing keys), as AddTerminal sets them.
const (
	TerminalWrite = `^pos\.v1\.{username}\.(state|heartbeat|status|events|cmd\.reply)$`
	TerminalRead  = `^pos\.v1\.{username}\.(state|ticket|cmd)$`
)

// SetTopicPermissions limits user on amq.topic (MQTT's exchange) to the
// routing keys matching write and read (MQTT "/" is "." there; "^$" grants
// nothing). A user without topic permissions may use every topic.
func (c *RabbitCluster) SetTopicPermissions(t testing.TB, user, write, read string) {
	t.Helper()
	c.Ctl(t, c.anyNode(t), "set_topic_permissions", "-p", "/", user, "amq.topic", write, read)
}

// clusterLock is a top-level test's hold on the cluster: a flock on one
// machine-wide file, shared while the test only uses the cluster, exclusive
// once it takes a node down.
type clusterLock struct {
	mu      sync.Mutex
	f       *os.File
	refs    int
	excl    bool
	restore map[int]bool
}

var (
	clusterLocksMu sync.Mutex
	clusterLocks   = map[string]*clusterLock{}
	// clusterLockPath is the machine-wide lock file of the default
	// cluster (a variable for the
	// lock's own test).
	clusterLockPath = filepath.Join(os.TempDir(), "posagent-rabbit.lock")
)

// acquireClusterLock returns the hold of t's top-level test, taking the
// shared lock when it is the first.
func acquireClusterLock(t testing.TB, path string) *clusterLock {
	t.Helper()
	top, _, _ := strings.Cut(t.Name(), "/")
	clusterLocksMu.Lock()
	l := clusterLocks[top]
	if l == nil {
		l = &clusterLock{restore: map[int]bool{}}
		clusterLocks[top] = l
	}
	l.refs++
	clusterLocksMu.Unlock()
	l.mu.Lock()
	if l.f == nil {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
		if err == nil {
			if err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
				f.Close()
			}
		}
		if err != nil {
			l.mu.Unlock()
			t.Fatalf("rabbitmq cluster lock: %v", err)
		}
		l.f = f
	}
	l.mu.Unlock()
	t.Cleanup(func() {
		clusterLocksMu.Lock()
		defer clusterLocksMu.Unlock()
		l.refs--
		if l.refs == 0 {
			delete(clusterLocks, top)
			l.mu.Lock()
			l.f.Close() // releases the flock
			l.mu.Unlock()
		}
	})
	return l
}

// exclusive turns the shared lock into an exclusive one, waiting for every
// other test on the cluster to end.
func (l *clusterLock) exclusive() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.excl {
		return nil
	}
	if err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	l.excl = true
	return nil
}

// markRestore records that a cleanup restores node i; false when one
// already does.
func (l *clusterLock) markRestore(i int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.restore[i] {
		return false
	}
	l.restore[i] = true
	return true
}

func (l *clusterLock) unmarkRestore(i int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.restore, i)
}

// lockFile takes an exclusive flock on path; closing the file releases it.
func lockFile(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("lock %s: %v", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("lock %s: %v", path, err)
	}
	return f
}

// RSS is node i's resident memory in bytes (VmRSS of its beam.smp), for
// the benchmarks' cost per connection.
func (c *RabbitCluster) RSS(i int) (int64, error) {
	b, err := os.ReadFile(c.nodeOr(i).pidFile)
	if err != nil {
		return 0, err
	}
	st, err := os.ReadFile(filepath.Join("/proc", strings.TrimSpace(string(b)), "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("rabbitmq cluster: node %d: VmRSS %q", i, v)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("rabbitmq cluster: node %d: no VmRSS in /proc status", i)
}
