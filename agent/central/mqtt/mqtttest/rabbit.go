package mqtttest

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"os"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/testkit/bench"
)

// RabbitCluster is node node (from 0) of the shared RabbitMQ cluster
// (bench.NeedRabbitCluster; skipped unless POSAGENT_CLUSTER=1), plain MQTT,
// locked down as MosquittoTLSACL is: a user per TID with password "pw-"+TID
// and the production topic permissions (bench.RabbitCluster.AddTerminal), a
// monitor that may read every topic and write none, and central, which may
// write tickets and commands. Login("monitor") and Login("central") are
// those; their real user names are unique to the test, since the cluster
// and its users are shared by every test running.
//
// The cluster is shared: the TIDs must be unique to the test. The test has
// the cluster to itself from here on (bench.RabbitCluster.Exclusive): a
// suite's case may Stop the node after it connected, and a lock taken only
// then could let another test's crash break those connections first. Stop
// kills the node (SIGKILL) and Restart starts it again; unlike a single
// broker's outage, what the other nodes hold survives it.
func RabbitCluster(t *testing.T, node int, tids ...string) Broker {
	t.Helper()
	return rabbit(t, node, false, tids)
}

// RabbitClusterTLS is RabbitCluster on the node's MQTT listener over TLS
// (a server certificate under the cluster's CA, made by the script's `up`;
// the nodes ask for no client certificate, so terminals log in with their
// password only).
func RabbitClusterTLS(t *testing.T, node int, tids ...string) Broker {
	t.Helper()
	return rabbit(t, node, true, tids)
}

// RabbitClusterNodes is every node of the cluster, as RabbitCluster and
// RabbitClusterTLS (withTLS) make one: one terminal user per TID and one
// monitor for them all. Login("central") is central's tools, which may
// write tickets and commands (pos/v1/+/ticket, pos/v1/+/cmd) and read
// replies; its real user name is unique to the test. A node's Stop kills
// it, Restart starts it again.
func RabbitClusterNodes(t *testing.T, withTLS bool, tids ...string) []Broker {
	t.Helper()
	c := bench.NeedRabbitCluster(t)
	c.Exclusive(t)
	u := rabbitUsers(t, c, tids)
	nodes := make([]Broker, c.Nodes())
	for i := range nodes {
		nodes[i] = rabbitNode(t, c, u, i, withTLS)
	}
	return nodes
}

func rabbit(t *testing.T, node int, withTLS bool, tids []string) Broker {
	t.Helper()
	c := bench.NeedRabbitCluster(t)
	c.Exclusive(t)
	if node < 0 || node >= c.Nodes() {
		t.Fatalf("mqtttest: the cluster has no node %d (0..%d)", node, c.Nodes()-1)
	}
	return rabbitNode(t, c, rabbitUsers(t, c, tids), node, withTLS)
}

// rabbitLogins are the real user names behind Login's "monitor" and
// "central".
type rabbitLogins struct{ monitor, central string }

// rabbitUsers adds the terminals, a monitor and central to the cluster for
// this test (users are cluster-wide: once for all nodes).
func rabbitUsers(t *testing.T, c *bench.RabbitCluster, tids []string) rabbitLogins {
	t.Helper()
	for _, tid := range tids {
		c.AddTerminal(t, tid, "pw-"+tid)
	}
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	u := rabbitLogins{monitor: "monitor-" + hex.EncodeToString(b), central: "central-" + hex.EncodeToString(b)}
	c.AddUser(t, u.monitor, "pw-"+u.monitor, ".*", ".*", ".*")
	// Read everything, publish nothing: the mosquitto fleet ACL's monitor.
	c.SetTopicPermissions(t, u.monitor, "^$", ".*")
	c.AddUser(t, u.central, "pw-"+u.central, ".*", ".*", ".*")
	// Tickets and commands to any terminal, and read the replies: what the
	// fleet ACL's central needs of pos/v1/# (MQTT "/" is "." here).
	c.SetTopicPermissions(t, u.central, `^pos\.v1\.[^.]+\.(ticket|cmd)$`, `^pos\.v1\.`)
	return u
}

// rabbitNode is node of c as a Broker, with the logins u.
func rabbitNode(t *testing.T, c *bench.RabbitCluster, u rabbitLogins, node int, withTLS bool) Broker {
	t.Helper()
	addr, scheme := c.MQTTAddr(node), "tcp"
	var clientTLS *tls.Config
	if withTLS {
		addr, scheme = c.MQTTTLSAddr(node), "ssl"
		ca, err := os.ReadFile(c.CAFile())
		if err != nil {
			t.Fatalf("mqtttest: cluster CA: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			t.Fatalf("mqtttest: %s holds no certificate", c.CAFile())
		}
		clientTLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	login := func(user string) *paho.ClientOptions {
		switch user {
		case "monitor":
			user = u.monitor
		case "central":
			user = u.central
		}
		o := paho.NewClientOptions().AddBroker(scheme + "://" + addr).SetUsername(user).SetPassword("pw-" + user)
		if clientTLS != nil {
			o.SetTLSConfig(clientTLS.Clone())
		}
		return o
	}
	return Broker{
		Addr: addr, Scheme: scheme,
		Terminal: func(o *mqtt.Options, id string) {
			o.TID, o.Username, o.Password = id, id, "pw-"+id
			if withTLS {
				o.CAFile = c.CAFile()
			}
		},
		Monitor: func() *paho.ClientOptions { return login("monitor") },
		Login:   login,
		Stop:    func() { c.Kill(t, node) },
		Restart: func() { c.Start(t, node) },
	}
}
