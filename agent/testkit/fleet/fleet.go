// Package fleet is the simulated fleet of the fleet benchmarks
// (agent/central/monitor's BenchmarkFleetCluster): terminals — real
// agent/central/mqtt clients with agent/central/report reporters on the
// in-memory queue — that connect and report a whole install, run in child
// processes of the benchmark, which reads their progress.
//
// A fleet is split into processes because open files are capped at 20,000
// per process on the bench machine and root cannot raise the cap
// (TESTBENCH.md): a child holds at most MaxPerProcess connections. The
// benchmark's test binary is the child: its TestMain calls ChildMain when
// IsChild says it was started as one (Launch sets that up).
//
// A child prints a progress line every ProgressInterval, counted from the
// clients' own log records (the client has no other hook and this package
// does not change it): CONNACKs, lost connections, failed attempts, and
// terminals whose install the broker has acknowledged. The parent
// aggregates the connects per wall-clock second, which is as close to the
// broker's side as the bench gets without asking RabbitMQ (rabbitmqctl
// list_connections takes seconds at 10,000 connections).
package fleet

import (
	"time"

	"github.com/posagent/posagent/provisioning"
)

// MaxPerProcess is the most connections a child holds: well under the
// 20,000 open files a process may have here, with room for the Go runtime
// and the reporters' descriptors.
const MaxPerProcess = 7000

// ProgressInterval is how often a child prints its counters.
const ProgressInterval = 100 * time.Millisecond

// Install is one terminal's reports: each step running then done, then
// live. Each report is one event (seq 1, 2, …) on pos/v1/{tid}/events.
func Install() []provisioning.Status {
	var out []provisioning.Status
	at := time.Date(2025, 1, 2, 10, 0, 0, 0, time.UTC)
	for _, st := range provisioning.Steps {
		if st == provisioning.StepLive {
			out = append(out, provisioning.Status{Step: st, State: provisioning.StateLive, Attempt: 1, Boot: 1, Time: at})
			break
		}
		out = append(out,
			provisioning.Status{Step: st, State: provisioning.StateRunning, Attempt: 1, Boot: 1, Time: at},
			provisioning.Status{Step: st, State: provisioning.StateDone, Attempt: 1, Boot: 1, Time: at})
	}
	return out
}
