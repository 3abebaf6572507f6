package mqtt_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/broker"
	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/mqtt/mqtttest"
)

// BenchmarkFailover: the time from the terminal's node dying (the embedded
// broker closed under an established connection) to the terminal's birth on
// the next node, with the production backoff: the first wait after a stable
// connection is drawn from [0, 1 s]. Reports the mean, the fastest and the
// slowest in ms.
//
//	go test -run '^$' -bench BenchmarkFailover -benchtime 20x ./agent/central/mqtt
func BenchmarkFailover(b *testing.B) {
	var took []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		nodes := []*broker.Broker{mqtttest.StartMochi(b, "127.0.0.1:0", quietLogger()), mqtttest.StartMochi(b, "127.0.0.1:0", quietLogger())}
		first := mqtt.StartIndex(tid, len(nodes))
		next := nodes[(first+1)%len(nodes)]
		c, err := mqtt.New(mqtt.Options{URLs: []string{nodes[0].URL(), nodes[1].URL()}, TID: tid, Logger: quietLogger()})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		if err := c.Start(ctx); err != nil {
			b.Fatal(err)
		}
		if err := c.WaitConnected(ctx); err != nil {
			b.Fatal(err)
		}
		s := mqtttest.Subscribe(b, next.URL(), mqtt.StateTopic(tid))
		b.StartTimer()
		start := time.Now()
		nodes[first].Close()
		s.Until(b, "birth on the next node", mqtttest.IsState(tid, mqtt.Online))
		took = append(took, time.Since(start))
		b.StopTimer()
		_ = c.Close(ctx)
		cancel()
		b.StartTimer()
	}
	slices.Sort(took)
	var sum time.Duration
	for _, d := range took {
		sum += d
	}
	b.ReportMetric(float64(sum.Microseconds())/1000/float64(len(took)), "ms/failover")
	b.ReportMetric(float64(took[0].Microseconds())/1000, "min-ms")
	b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
}
