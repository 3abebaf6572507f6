//go:build firmware

package main

import (
	"context"
	"errors"
	"io"

	"github.com/posagent/posagent/agent/central/monitor"
)

// watchQueues: the firmware build of posctl runs on the terminal, which has
// no cluster's queues to consume, and it is spared amqp091-go.
func watchQueues(context.Context, []string, *queueFlags, monitor.Options, io.Writer) error {
	return errors.New("--amqp is not in this build (firmware); run posctl watch --amqp from a central host")
}
