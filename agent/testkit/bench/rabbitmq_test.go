package bench

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"testing"
	"time"
)

// The cluster carries MQTT across nodes, survives a node's crash and takes
// the node back: what every cluster test builds on.
func TestClusterSmokeQoS1AcrossNodesAndNodeRestart(t *testing.T) {
	c := NeedRabbitCluster(t)
	if c.Nodes() != 3 {
		t.Fatalf("%d nodes, want 3", c.Nodes())
	}
	c.Exclusive(t) // the subscriber below must outlive node 1's crash
	tid := "smk" + randHex(t, 4)
	c.AddTerminal(t, tid, "pw-"+tid)
	mon := "smoke-monitor-" + randHex(t, 4)
	c.AddUser(t, mon, "pw-"+mon, ".*", ".*", ".*")

	sub := dialMQTT(t, c.MQTTAddr(2), mon, mon, "pw-"+mon)
	topic := "pos/v1/" + tid + "/events"
	sub.subscribe(t, topic)
	pub := dialMQTT(t, c.MQTTAddr(0), tid, tid, "pw-"+tid)
	pub.publishQoS1(t, topic, []byte("hello from node 0"))
	if got := sub.receive(t); got.topic != topic || string(got.payload) != "hello from node 0" || got.qos != 1 {
		t.Fatalf("node 2 got %q %q qos %d", got.topic, got.payload, got.qos)
	}

	c.Kill(t, 1)
	if c.Running(1) {
		t.Fatal("node 1 runs after Kill")
	}
	c.Start(t, 1)
	if n := runningNodes(t, c, 0); n != 3 {
		t.Fatalf("cluster_status lists %d running nodes after the restart, want 3", n)
	}
	// The restarted node serves MQTT again, to the same logins.
	again := dialMQTT(t, c.MQTTAddr(1), tid+"-2", tid, "pw-"+tid)
	again.publishQoS1(t, topic, []byte("hello from node 1"))
	if got := sub.receive(t); string(got.payload) != "hello from node 1" {
		t.Fatalf("node 2 got %q", got.payload)
	}
}

// A node a test kills and leaves down is started again by the test's
// cleanup; a graceful Stop comes back the same way.
func TestClusterNodeRestoredAfterTheTest(t *testing.T) {
	c := NeedRabbitCluster(t)
	t.Run("crash", func(t *testing.T) {
		c.Kill(t, 2)
		if c.Running(2) {
			t.Fatal("node 2 runs after Kill")
		}
	})
	if !c.Running(2) {
		t.Fatal("node 2 still down after the test that killed it")
	}
	t.Run("stop", func(t *testing.T) { c.Stop(t, 2) })
	if !c.Running(2) {
		t.Fatal("node 2 still down after the test that stopped it")
	}
	if n := runningNodes(t, c, 2); n != 3 {
		t.Fatalf("cluster_status lists %d running nodes, want 3", n)
	}
}

// AddTerminal's topic permissions are the production broker's: a terminal
// publishes under its own TID only; RabbitMQ closes the connection of a QoS 1
// publish it refuses, without a PUBACK.
func TestClusterTerminalWritesOnlyItsOwnTopics(t *testing.T) {
	c := NeedRabbitCluster(t)
	tid, other := "own"+randHex(t, 4), "oth"+randHex(t, 4)
	c.AddTerminal(t, tid, "pw-"+tid)
	m := dialMQTT(t, c.MQTTAddr(1), tid, tid, "pw-"+tid)
	m.publishQoS1(t, "pos/v1/"+tid+"/status", []byte("{}"))
	if err := m.tryPublishQoS1("pos/v1/"+other+"/status", []byte("{}")); err == nil {
		t.Fatal("a terminal's publish to another TID's topic got a PUBACK")
	}
	// Its own cmd and ticket are central's to write (the shipped ACL's
	// read-only topics).
	for _, topic := range []string{"cmd", "ticket"} {
		m := dialMQTT(t, c.MQTTAddr(1), tid, tid, "pw-"+tid)
		if err := m.tryPublishQoS1("pos/v1/"+tid+"/"+topic, []byte("{}")); err == nil {
			t.Errorf("a terminal's publish to its own %s got a PUBACK", topic)
		}
	}
	if _, err := tryDialMQTT(c.MQTTAddr(0), "anon"+randHex(t, 4), "", ""); err == nil {
		t.Fatal("an anonymous MQTT login was accepted")
	}
}

// A terminal subscribes its own state, ticket and cmd, and nothing else:
// not another TID's topics, not its own events, not a wildcard over the
// fleet. RabbitMQ answers a refused subscription with SUBACK 0x80.
func TestClusterTerminalReadsOnlyItsOwnTopics(t *testing.T) {
	c := NeedRabbitCluster(t)
	tid, other := "own"+randHex(t, 4), "oth"+randHex(t, 4)
	c.AddTerminal(t, tid, "pw-"+tid)
	m := dialMQTT(t, c.MQTTAddr(2), tid, tid, "pw-"+tid)
	for _, topic := range []string{"state", "ticket", "cmd"} {
		m.subscribe(t, "pos/v1/"+tid+"/"+topic)
	}
	for _, filter := range []string{
		"pos/v1/" + other + "/cmd", "pos/v1/" + other + "/state", "pos/v1/" + tid + "/events",
		"pos/v1/+/cmd", "pos/v1/#", "#", "pos/v1/" + tid + "/#",
	} {
		// A refusal may also close the connection: each on its own.
		m := dialMQTT(t, c.MQTTAddr(2), tid+"-"+randHex(t, 2), tid, "pw-"+tid)
		code, err := m.trySubscribe(filter)
		if err == nil && code != 0x80 {
			t.Errorf("a terminal's subscription to %s was granted QoS %d", filter, code)
		}
	}
}

// AMQPURL names the admin and a node's AMQP listener, which answers the
// AMQP 0-9-1 protocol header with a method frame (Connection.Start).
func TestClusterAMQPURL(t *testing.T) {
	c := NeedRabbitCluster(t)
	for i := 0; i < c.Nodes(); i++ {
		u, err := url.Parse(c.AMQPURL(i))
		if err != nil {
			t.Fatal(err)
		}
		user, pass := c.Admin()
		if p, _ := u.User.Password(); u.Scheme != "amqp" || u.User.Username() != user || p != pass || pass == "" {
			t.Fatalf("node %d: AMQPURL does not carry the admin's login", i)
		}
		conn, err := net.DialTimeout("tcp", u.Host, ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(ioTimeout))
		if _, err := conn.Write([]byte("AMQP\x00\x00\x09\x01")); err != nil {
			t.Fatal(err)
		}
		frame := make([]byte, 7)
		_, err = io.ReadFull(conn, frame)
		conn.Close()
		if err != nil || frame[0] != 1 {
			t.Fatalf("node %d (%s): no AMQP method frame: %x %v", i, u.Host, frame, err)
		}
	}
}

func runningNodes(t *testing.T, c *RabbitCluster, i int) int {
	t.Helper()
	var st struct {
		Running []string `json:"running_nodes"`
	}
	out := c.Ctl(t, i, "cluster_status", "--formatter", "json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("cluster_status: %v: %s", err, out)
	}
	return len(st.Running)
}

func randHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// rawMQTT is just enough MQTT 3.1.1 for the smoke test: this package may
// not import paho (only agent/central speaks MQTT), and agent/central's
// test kits build on this one.
type rawMQTT struct {
	c    net.Conn
	r    *bufio.Reader
	next uint16
}

type rawMessage struct {
	topic   string
	payload []byte
	qos     byte
}

// ioTimeout bounds every exchange so a lost packet fails the test instead of
// hanging it; it is no assertion on how fast the cluster is.
const ioTimeout = 20 * time.Second

func dialMQTT(t *testing.T, addr, clientID, user, password string) *rawMQTT {
	t.Helper()
	m, err := tryDialMQTT(addr, clientID, user, password)
	if err != nil {
		t.Fatalf("mqtt %s as %s: %v", addr, user, err)
	}
	t.Cleanup(func() { m.c.Write([]byte{0xe0, 0}); m.c.Close() })
	return m
}

func tryDialMQTT(addr, clientID, user, password string) (*rawMQTT, error) {
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return nil, err
	}
	m := &rawMQTT{c: c, r: bufio.NewReader(c), next: 1}
	var body []byte
	body = appendString(body, "MQTT")
	flags := byte(0x02) // clean session
	if user != "" {
		flags |= 0x80 | 0x40
	}
	body = append(body, 4, flags, 0, 60)
	body = appendString(body, clientID)
	if user != "" {
		body = appendString(body, user)
		body = appendString(body, password)
	}
	if err := m.send(0x10, body); err != nil {
		c.Close()
		return nil, err
	}
	typ, p, err := m.read()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("connack: %w", err)
	}
	if typ != 0x20 || len(p) != 2 || p[1] != 0 {
		c.Close()
		return nil, fmt.Errorf("connect refused: packet %#x %x", typ, p)
	}
	return m, nil
}

func (m *rawMQTT) subscribe(t *testing.T, topic string) {
	t.Helper()
	code, err := m.trySubscribe(topic)
	if err != nil || code != 1 {
		t.Fatalf("suback for %s: return code %#x, %v", topic, code, err)
	}
}

// trySubscribe subscribes at QoS 1 and returns SUBACK's return code (the
// granted QoS, or 0x80 for a refusal).
func (m *rawMQTT) trySubscribe(topic string) (byte, error) {
	id := m.id()
	body := appendString([]byte{byte(id >> 8), byte(id)}, topic)
	if err := m.send(0x82, append(body, 1)); err != nil {
		return 0, err
	}
	typ, p, err := m.read()
	if err != nil {
		return 0, err
	}
	if typ != 0x90 || len(p) != 3 || uint16(p[0])<<8|uint16(p[1]) != id {
		return 0, fmt.Errorf("suback: packet %#x %x", typ, p)
	}
	return p[2], nil
}

func (m *rawMQTT) publishQoS1(t *testing.T, topic string, payload []byte) {
	t.Helper()
	if err := m.tryPublishQoS1(topic, payload); err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
}

func (m *rawMQTT) tryPublishQoS1(topic string, payload []byte) error {
	id := m.id()
	body := appendString(nil, topic)
	body = append(body, byte(id>>8), byte(id))
	if err := m.send(0x32, append(body, payload...)); err != nil {
		return err
	}
	typ, p, err := m.read()
	if err != nil {
		return err
	}
	if typ != 0x40 || len(p) != 2 || uint16(p[0])<<8|uint16(p[1]) != id {
		return fmt.Errorf("puback: packet %#x %x", typ, p)
	}
	return nil
}

// receive reads the next PUBLISH and acknowledges it.
func (m *rawMQTT) receive(t *testing.T) rawMessage {
	t.Helper()
	typ, p, err := m.read()
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if typ&0xf0 != 0x30 || len(p) < 2 {
		t.Fatalf("receive: packet %#x, not a PUBLISH", typ)
	}
	msg := rawMessage{qos: typ >> 1 & 3}
	n := int(p[0])<<8 | int(p[1])
	if len(p) < 2+n {
		t.Fatalf("receive: short PUBLISH")
	}
	msg.topic, p = string(p[2:2+n]), p[2+n:]
	if msg.qos > 0 {
		if len(p) < 2 {
			t.Fatalf("receive: PUBLISH without a packet id")
		}
		if err := m.send(0x40, p[:2]); err != nil {
			t.Fatal(err)
		}
		p = p[2:]
	}
	msg.payload = p
	return msg
}

func (m *rawMQTT) id() uint16 { m.next++; return m.next - 1 }

func (m *rawMQTT) send(header byte, body []byte) error {
	pkt := []byte{header}
	for n := len(body); ; {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		pkt = append(pkt, b)
		if n == 0 {
			break
		}
	}
	m.c.SetWriteDeadline(time.Now().Add(ioTimeout))
	_, err := m.c.Write(append(pkt, body...))
	return err
}

func (m *rawMQTT) read() (byte, []byte, error) {
	m.c.SetReadDeadline(time.Now().Add(ioTimeout))
	typ, err := m.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for i := 0; ; i++ {
		b, err := m.r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(b&0x7f) * mul
		mul *= 128
		if b&0x80 == 0 {
			break
		}
		if i == 3 {
			return 0, nil, errors.New("bad remaining length")
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(m.r, p); err != nil {
		return 0, nil, err
	}
	return typ, p, nil
}

func appendString(b []byte, s string) []byte {
	return append(append(b, byte(len(s)>>8), byte(len(s))), s...)
}

// How long a crashed node takes to come back: SIGKILL, start, running,
// clustered and its MQTT port accepting (ms/restart).
func BenchmarkClusterNodeRestart(b *testing.B) {
	c := NeedRabbitCluster(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Kill(b, 1)
		c.Start(b, 1)
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/restart")
}
