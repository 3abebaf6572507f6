// Package command carries central's signed commands to one terminal and the
// terminal's answers: JSON on pos/v1/{tid}/cmd, replies on
// pos/v1/{tid}/cmd/reply (docs/mqtt.md, "Commands").
//
// A command is signed like an install ticket (agent/central/trust): one of central's
// Ed25519 keys, named by its kid, signs a canonical encoding of the id, name,
// args, terminal, nonce and a validity window of at most MaxValidity. The
// terminal refuses, with a stable code in the reply, anything unsigned,
// signed with an unknown or revoked key or wrongly, for another terminal,
// outside its window (by the clock or by the time floor), or already seen:
// nonces are kept on disk until their command could no longer be valid, so a
// replay is refused across restarts too.
//
// Everything that arrives is external input: Parse and Decode validate it
// completely and never panic (FuzzDecode, FuzzVerify), a bad command gets an
// error reply rather than silence, and the agent sees only a verified call
// on its Handler. The package decides nothing about the install itself: the
// agent implements Handler and decides whether, say, a retry is possible
// right now.
package command

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/posagent/posagent/agent/central/trust"
	"github.com/posagent/posagent/provisioning"
)

// Names of the commands.
const (
	NameRetryStep       = "retry-step"       // args {"step": STEP}: retry that failed step
	NameRerunTestSale   = "rerun-test-sale"  // no args: run the test sale again
	NameReportNow       = "report-now"       // no args: publish the current status now
	NameClearUnresolved = "clear-unresolved" // args {"kind": "sale"|"void", "stan": N, "batch": "NNNNNN"}
)

// Domain starts the signed bytes: a signature over a command can never be
// taken for a ticket's, or for a command of another format version.
const Domain = "posagent-command-v1\n"

// MaxSize bounds a command payload, checked before anything parses it: the
// largest valid one is well under 1 KiB.
const MaxSize = 4096

// MaxValidity bounds expires_at - issued_at. A command is meant for now; the
// short window also bounds how long its nonce must be kept.
const MaxValidity = 10 * time.Minute

// Command is a decoded, validated command.
type Command struct {
	ID   string
	Name string
	// Step is retry-step's argument.
	Step provisioning.Step
	// Kind, STAN and Batch are clear-unresolved's arguments.
	Kind  string
	STAN  int
	Batch string
	// The signed envelope: who it is for, which key signed it, when.
	TID       string
	KID       string
	Nonce     string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Envelope is a command as it travels, the JSON on the cmd topic. Args stays
// raw: the signature covers its exact bytes, and the name says what it holds.
type Envelope struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Args      json.RawMessage `json:"args,omitempty"`
	TID       string          `json:"tid"`
	Nonce     string          `json:"nonce"`
	IssuedAt  time.Time       `json:"issued_at"`
	ExpiresAt time.Time       `json:"expires_at"`
	KID       string          `json:"kid"`
	// Sig is the base64 (standard, padded) Ed25519 signature of Canonical().
	Sig string `json:"sig,omitempty"`
}

// Canonical is the byte string the signature covers: Domain, then id, name,
// args (its JSON text exactly as sent, "" when absent), tid, nonce,
// issued_at, expires_at (YYYY-MM-DDTHH:MM:SSZ) and kid, each as a 4-byte
// big-endian length and its bytes (trust.Canonical).
func (e Envelope) Canonical() []byte {
	return trust.Canonical(Domain, e.ID, e.Name, string(e.Args), e.TID, e.Nonce,
		trust.Stamp(e.IssuedAt), trust.Stamp(e.ExpiresAt), e.KID)
}

// Error codes of a refused or failed command, stable for central's scripts.
const (
	CodeTooLarge      = "E_CMD_TOO_LARGE"      // over MaxSize
	CodeMalformed     = "E_CMD_MALFORMED"      // not a strict JSON command, bad id, nonce or window
	CodeUnsigned      = "E_CMD_UNSIGNED"       // no sig
	CodeUnknownKey    = "E_CMD_UNKNOWN_KEY"    // kid names no configured key
	CodeKeyRevoked    = "E_CMD_KEY_REVOKED"    // kid names a revoked key
	CodeBadSignature  = "E_CMD_BAD_SIGNATURE"  // does not verify with the key its kid names (forged, altered)
	CodeOtherTerminal = "E_CMD_OTHER_TERMINAL" // signed for another tid
	CodeNotYetValid   = "E_CMD_NOT_YET_VALID"  // issued_at later than the terminal's clock
	CodeExpired       = "E_CMD_EXPIRED"        // expires_at has passed (clock or time floor)
	CodeReplayed      = "E_CMD_REPLAYED"       // this nonce was seen before: not run again
	CodeUnknown       = "E_CMD_UNKNOWN"        // name is not a command
	CodeBadArgs       = "E_CMD_BAD_ARGS"       // args do not fit the command
	CodeRetained      = "E_CMD_RETAINED"       // published retained: it would run on every reconnect
	CodeDisabled      = "E_CMD_DISABLED"       // the terminal takes no commands (no keys)
	CodeFailed        = "E_CMD_FAILED"         // the agent tried and could not
	CodeBusy          = "E_CMD_BUSY"           // too many commands queued, or too many recent nonces
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

var (
	// idPattern keeps ids printable and short: they are echoed into replies
	// and logs.
	idPattern    = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
	noncePattern = regexp.MustCompile(`^([0-9a-f]{2}){16,32}$`)
	batchPattern = regexp.MustCompile(`^[0-9]{6}$`)
)

// retryable are the steps a retry-step may name: every step of the
// procedure table's line that runs (live only publishes) and can so fail
// and wait for the installer. A download step may also be named while the
// install waits at another step's failure: the agent then runs the
// download again before the next transaction (agent/remote.go).
var retryable = func() map[provisioning.Step]bool {
	m := map[provisioning.Step]bool{}
	for _, s := range provisioning.Steps {
		if s != provisioning.StepLive {
			m[s] = true
		}
	}
	return m
}()

// Parse reads the envelope of a payload: at most MaxSize bytes, strict JSON
// (trust.DecodeStrict) and a valid id. It checks nothing else, signature
// included. On error it still returns the id when one could be read, so the
// reply can name the command.
func Parse(payload []byte) (Envelope, *Error) {
	if len(payload) > MaxSize {
		return Envelope{}, &Error{Code: CodeTooLarge, Message: fmt.Sprintf("the command is larger than %d bytes", MaxSize)}
	}
	var e Envelope
	if err := trust.DecodeStrict(payload, &e); err != nil {
		msg := "not a JSON command object"
		var je *trust.JSONError
		if errors.As(err, &je) {
			msg = je.Msg
		}
		return Envelope{ID: looseID(payload)}, &Error{Code: CodeMalformed, Message: msg}
	}
	if !idPattern.MatchString(e.ID) {
		return Envelope{}, &Error{Code: CodeMalformed, Message: "id must be 1-64 characters of A-Z a-z 0-9 . _ : -"}
	}
	return e, nil
}

// looseID is a best effort for the reply's id of a payload that is not
// strict: the id may be fine when something else is not.
func looseID(payload []byte) string {
	var loose map[string]json.RawMessage
	_ = json.NewDecoder(bytes.NewReader(payload)).Decode(&loose) // the first value; exact keys
	var id string
	if json.Unmarshal(loose["id"], &id) == nil && idPattern.MatchString(id) {
		return id
	}
	return ""
}

// Decode parses a payload and validates everything but what needs the
// terminal's state: the signature, the terminal, the window against the
// clock, and replays. The Verifier does those; Decode is for tools (posctl
// checks what it signs) and the fuzzer.
func Decode(payload []byte) (Command, *Error) {
	e, err := Parse(payload)
	if err != nil {
		return Command{ID: e.ID}, err
	}
	return e.decode()
}

// decode validates the envelope's fields and its name and args.
func (e Envelope) decode() (Command, *Error) {
	c := Command{ID: e.ID, Name: e.Name, TID: e.TID, KID: e.KID, Nonce: e.Nonce, IssuedAt: e.IssuedAt, ExpiresAt: e.ExpiresAt}
	bad := func(msg string) (Command, *Error) {
		return Command{ID: e.ID}, &Error{Code: CodeMalformed, Message: msg}
	}
	switch {
	case e.TID == "":
		return bad("tid is empty")
	case !trust.ValidKID(e.KID):
		return bad("kid is not 1-32 characters of A-Z a-z 0-9 . _ -")
	case !noncePattern.MatchString(e.Nonce):
		return bad("nonce is not 32 to 64 lowercase hex digits")
	case e.IssuedAt.IsZero() || !e.ExpiresAt.After(e.IssuedAt):
		return bad("expires_at is not after issued_at")
	case e.ExpiresAt.Sub(e.IssuedAt) > MaxValidity:
		return bad("expires_at is more than 10 minutes after issued_at")
	}
	args := func(v any) bool {
		return len(e.Args) > 0 && trust.DecodeStrict(e.Args, v) == nil
	}
	badArgs := func(msg string) (Command, *Error) {
		return Command{ID: e.ID}, &Error{Code: CodeBadArgs, Message: msg}
	}
	switch e.Name {
	case NameRetryStep:
		var a struct {
			Step provisioning.Step `json:"step"`
		}
		if !args(&a) {
			return badArgs("retry-step needs args {\"step\": STEP}")
		}
		if !retryable[a.Step] {
			return badArgs("args.step is not a step that can be retried")
		}
		c.Step = a.Step
	case NameClearUnresolved:
		var a struct {
			Kind  string `json:"kind"`
			STAN  int    `json:"stan"`
			Batch string `json:"batch"`
		}
		if !args(&a) {
			return badArgs(`clear-unresolved needs args {"kind": "sale"|"void", "stan": N, "batch": "NNNNNN"}`)
		}
		switch {
		case a.Kind != "sale" && a.Kind != "void":
			return badArgs(`args.kind is not "sale" or "void"`)
		case a.STAN < 1 || a.STAN > 999999:
			return badArgs("args.stan is not 1 to 999999")
		case !batchPattern.MatchString(a.Batch):
			return badArgs("args.batch is not 6 digits")
		}
		c.Kind, c.STAN, c.Batch = a.Kind, a.STAN, a.Batch
	case NameRerunTestSale, NameReportNow:
		var a struct{}
		if len(e.Args) > 0 && trust.DecodeStrict(e.Args, &a) != nil {
			return badArgs(e.Name + " takes no args (leave them out, or {})")
		}
	default:
		return Command{ID: e.ID}, &Error{Code: CodeUnknown, Message: "name must be retry-step, rerun-test-sale, report-now or clear-unresolved"}
	}
	return c, nil
}

// Sign signs e with key (e.KID must name it in the terminals' central.keys)
// and returns the payload to publish. Args is compacted first, since the
// signature covers its exact text; the times are truncated to whole seconds.
// A command the terminal would refuse for its form is an error here.
func Sign(e Envelope, key ed25519.PrivateKey) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("command: not an Ed25519 private key")
	}
	if len(e.Args) > 0 {
		var b bytes.Buffer
		if err := json.Compact(&b, e.Args); err != nil {
			return nil, &Error{Code: CodeBadArgs, Message: "args are not JSON"}
		}
		e.Args = b.Bytes()
	}
	e.IssuedAt = e.IssuedAt.UTC().Truncate(time.Second)
	e.ExpiresAt = e.ExpiresAt.UTC().Truncate(time.Second)
	e.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(key, e.Canonical()))
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // args as signed, byte for byte
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	payload := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	if _, err := Decode(payload); err != nil {
		return nil, err
	}
	return payload, nil
}

// ErrNotNow is what a Handler returns when the command cannot apply in the
// current state (no failed step to retry, the test sale not reached yet). The
// reply carries its message.
var ErrNotNow = errors.New("command: not possible in the current state")
