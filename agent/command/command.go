// Package command carries central's commands to one terminal and the
// terminal's answers: JSON on pos/v1/{tid}/cmd, replies on
// pos/v1/{tid}/cmd/reply (docs/mqtt.md, "Commands").
//
// Everything that arrives is external input: Decode validates it completely
// and never panics (FuzzDecode), a bad command gets an error reply rather than
// silence, and the agent sees only a validated call on its Handler. The
// package decides nothing about the install itself: the agent implements
// Handler and decides whether, say, a retry is possible right now.
package command

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"

	"github.com/posagent/posagent/provisioning"
)

// Names of the commands.
const (
	NameRetryStep     = "retry-step"      // args {"step": STEP}: retry that failed step
	NameRerunTestSale = "rerun-test-sale" // no args: run the test sale again
	NameReportNow     = "report-now"      // no args: publish the current status now
)

// MaxSize bounds a command payload: the largest valid one is well under 300
// bytes, and a decoder should not be handed megabytes to parse.
const MaxSize = 4096

// Command is a decoded, validated command.
type Command struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Step is retry-step's argument.
	Step provisioning.Step `json:"-"`
}

// Error codes of a refused or failed command, stable for central's scripts.
const (
	CodeMalformed = "E_CMD_MALFORMED" // not a JSON command object, or a bad id
	CodeTooLarge  = "E_CMD_TOO_LARGE" // over MaxSize
	CodeUnknown   = "E_CMD_UNKNOWN"   // name is not a command
	CodeBadArgs   = "E_CMD_BAD_ARGS"  // args do not fit the command
	CodeRetained  = "E_CMD_RETAINED"  // published retained: it would run on every reconnect
	CodeFailed    = "E_CMD_FAILED"    // the agent tried and could not
	CodeBusy      = "E_CMD_BUSY"      // too many commands queued
)

// Error is a command's failure, as sent in the reply. Message names the rule
// and the field, never echoes the input.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return "command: " + e.Code + ": " + e.Message }

// Reply is the payload of the reply topic.
type Reply struct {
	// ID echoes the command's id; "" when the command was too broken to have one.
	ID    string `json:"id"`
	OK    bool   `json:"ok"`
	Error *Error `json:"error,omitempty"`
}

// idPattern keeps ids printable and short: they are echoed into replies and
// logs.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// wire is the JSON form. Args stays raw until the name says what it holds.
type wire struct {
	ID   string          `json:"id"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

// retryable are the steps a retry-step may name: the ones that can fail and
// wait for the installer.
var retryable = map[provisioning.Step]bool{
	provisioning.StepSelftest: true, provisioning.StepNetwork: true, provisioning.StepParameters: true,
	provisioning.StepSignOn: true, provisioning.StepBindCard: true, provisioning.StepTestSale: true,
	provisioning.StepVoid: true,
}

// Decode parses and validates a command payload. On error it still returns
// the id when one could be read, so the reply can name the command.
func Decode(payload []byte) (Command, *Error) {
	if len(payload) > MaxSize {
		return Command{}, &Error{Code: CodeTooLarge, Message: "the command is larger than 4096 bytes"}
	}
	var w wire
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		// Best effort for the reply's id; the fields may be fine.
		var loose struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(payload, &loose)
		id := ""
		if idPattern.MatchString(loose.ID) {
			id = loose.ID
		}
		return Command{ID: id}, &Error{Code: CodeMalformed, Message: "not a JSON object with id, name and args only"}
	}
	if dec.More() {
		return Command{}, &Error{Code: CodeMalformed, Message: "trailing data after the command"}
	}
	if !idPattern.MatchString(w.ID) {
		return Command{}, &Error{Code: CodeMalformed, Message: "id must be 1-64 characters of A-Z a-z 0-9 . _ : -"}
	}
	c := Command{ID: w.ID, Name: w.Name}
	noArgs := func() *Error {
		if len(w.Args) == 0 || string(w.Args) == "null" || isEmptyObject(w.Args) {
			return nil
		}
		return &Error{Code: CodeBadArgs, Message: w.Name + " takes no args"}
	}
	switch w.Name {
	case NameRetryStep:
		var a struct {
			Step provisioning.Step `json:"step"`
		}
		ad := json.NewDecoder(bytes.NewReader(w.Args))
		ad.DisallowUnknownFields()
		if len(w.Args) == 0 || ad.Decode(&a) != nil {
			return c, &Error{Code: CodeBadArgs, Message: "retry-step needs args {\"step\": STEP}"}
		}
		if !retryable[a.Step] {
			return c, &Error{Code: CodeBadArgs, Message: "args.step is not a step that can be retried"}
		}
		c.Step = a.Step
	case NameRerunTestSale, NameReportNow:
		if err := noArgs(); err != nil {
			return c, err
		}
	default:
		return c, &Error{Code: CodeUnknown, Message: "name must be retry-step, rerun-test-sale or report-now"}
	}
	return c, nil
}

func isEmptyObject(b json.RawMessage) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(b, &m) == nil && len(m) == 0
}

// ErrNotNow is what a Handler returns when the command cannot apply in the
// current state (no failed step to retry, the test sale not reached yet). The
// reply carries its message.
var ErrNotNow = errors.New("command: not possible in the current state")
