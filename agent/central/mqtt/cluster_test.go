package mqtt_test

import (
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt/mqtttest"
)

// The session's single-broker cases on one node of the RabbitMQ cluster
// (make test-cluster; skipped without POSAGENT_CLUSTER=1). The terminal and
// the monitor are on the same node and the monitor names the terminal's
// topics exactly: RabbitMQ keeps a retained message (the shutdown state, the
// Will) on the node that received it and gives it to exact-topic
// subscribers only.

func TestClusterCloseLeavesRetainedShutdown(t *testing.T) {
	tid := mqtttest.NewTID(t)
	closeLeavesRetainedShutdown(t, mqtttest.RabbitCluster(t, 2, tid), tid)
}

func TestClusterWillOnConnectionLoss(t *testing.T) {
	tid := mqtttest.NewTID(t)
	willOnConnectionLoss(t, mqtttest.RabbitCluster(t, 2, tid), tid)
}

// The stale Will is published with the terminal's own login (its state
// topic is the one of its own topics it may write and read): the cluster
// has no anonymous client to play it.
func TestClusterStaleWillIsAnsweredWithBirth(t *testing.T) {
	tid := mqtttest.NewTID(t)
	b := mqtttest.RabbitCluster(t, 2, tid)
	staleWillIsAnsweredWithBirth(t, b, tid, b.Login(tid))
}

// RabbitMQ 3.10 notices a silent client later than mosquitto: after about 3
// × keepalive (TESTBENCH.md), not 1.5 ×. Three such windows and a second
// still tell "the keepalive fired" from "nothing fired".
func TestClusterWillOnSilentLink(t *testing.T) {
	tid := mqtttest.NewTID(t)
	willOnSilentLink(t, mqtttest.RabbitCluster(t, 2, tid), tid, 3*3*silentKeepalive+time.Second)
}
