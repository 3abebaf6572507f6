//go:build !firmware

package main

import (
	"fmt"
	"io"

	"github.com/posagent/posagent/agent/central/monitor"
)

// serveMetrics starts watch's Prometheus endpoint on addr and makes it the
// fleet o folds into; stop ends it.
func serveMetrics(addr string, o *monitor.Options, stderr io.Writer) (stop func(), err error) {
	m := monitor.NewMetrics(o.Now)
	srv, err := monitor.ServeMetrics(addr, m)
	if err != nil {
		return nil, err
	}
	o.Fleet = m
	// The address as bound: with port 0 it is the only way to learn it.
	fmt.Fprintf(stderr, "posctl: metrics on http://%s/metrics\n", srv.Addr())
	return func() { _ = srv.Close() }, nil
}
