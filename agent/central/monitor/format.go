package monitor

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/report"
	"github.com/posagent/posagent/provisioning"
)

// printMessage writes one line for m.
func printMessage(w io.Writer, asJSON bool, m paho.Message) error {
	var line string
	if asJSON {
		line = JSONLine(m.Topic(), m.Retained(), m.Payload())
	} else {
		line = TextLine(m.Topic(), m.Payload())
	}
	if _, err := io.WriteString(w, line+"\n"); err != nil {
		return fmt.Errorf("monitor: write: %w", err)
	}
	return nil
}

func writeLine(w io.Writer, line string) error {
	if _, err := io.WriteString(w, line+"\n"); err != nil {
		return fmt.Errorf("monitor: write: %w", err)
	}
	return nil
}

// staleText is the line for a late Will of an older session: shown, so the
// operator sees the broker's traffic, but never as "offline".
func staleText(m paho.Message) string {
	tid := strings.Split(m.Topic(), "/")[2]
	if path.Base(m.Topic()) == "heartbeat" {
		return staleHeartbeatText(tid, m.Payload())
	}
	var p mqtt.Presence
	_ = json.Unmarshal(m.Payload(), &p)
	return fmt.Sprintf("%s %-7s %s of session %d ignored: a newer session is known", tid, "stale", p.State, p.Session)
}

// staleJSON marks the JSON record of a late Will.
func staleJSON(m paho.Message) string {
	l := JSONLine(m.Topic(), m.Retained(), m.Payload())
	return strings.Replace(l, `{"topic"`, `{"stale":true,"topic"`, 1)
}

// jsonLine is the JSON mode record: the payload is embedded as JSON, not as a
// string, so `jq .payload.step` works.
type jsonLine struct {
	Topic    string          `json:"topic"`
	Retained bool            `json:"retained"`
	Payload  json.RawMessage `json:"payload"`
	Error    string          `json:"error,omitempty"`
}

// JSONLine renders a message for JSON mode. A payload that is not JSON is left
// out (null) with an error instead: its bytes are unknown and may not be safe
// to print.
func JSONLine(topic string, retained bool, payload []byte) string {
	l := jsonLine{Topic: topic, Retained: retained, Payload: payload}
	if !json.Valid(payload) {
		l.Payload = json.RawMessage("null")
		l.Error = fmt.Sprintf("payload is not JSON (%d bytes)", len(payload))
	}
	b, err := json.Marshal(l)
	if err != nil { // cannot happen: Payload was validated
		return `{"error":"cannot encode"}`
	}
	return string(b)
}

// TextLine renders a message for people: the TID, the kind of message padded to
// a column, then key=value fields; a failure ends the line as
// "error=CODE message" since the message has spaces.
//
//	10000001 online  serial=SN1 time=2025-01-02T10:00:00Z
//	10000001 status  step=test-sale state=done attempt=1 card=622202*********0128 rc=00 rrn=000000000001 auth=123456 stan=3 amount=1 seq=12 time=…
//	10000001 event   step=sign-on state=failed attempt=2 seq=5 time=… error=E_HOST_TIMEOUT host did not answer
func TextLine(topic string, payload []byte) string {
	parts := strings.Split(topic, "/")
	if len(parts) != 4 || parts[0]+"/"+parts[1]+"/" != mqtt.TopicPrefix {
		return fmt.Sprintf("%s (%d bytes, not this schema)", topic, len(payload))
	}
	tid, kind := parts[2], parts[3]
	switch kind {
	case "state":
		var p mqtt.Presence
		if err := json.Unmarshal(payload, &p); err != nil || p.State == "" {
			return fmt.Sprintf("%s %-7s invalid payload (%d bytes)", tid, "state", len(payload))
		}
		f := fields{}
		f.add("reason", p.Reason)
		f.add("serial", p.Serial)
		if p.Session != 0 {
			f.add("session", strconv.FormatUint(p.Session, 10))
		}
		f.time(p.Time)
		return fmt.Sprintf("%s %-7s %s", tid, p.State, f)
	case "status", "events":
		if kind == "events" {
			kind = "event"
		}
		var m report.Message
		if err := json.Unmarshal(payload, &m); err != nil {
			return fmt.Sprintf("%s %-7s invalid payload (%d bytes)", tid, kind, len(payload))
		}
		return fmt.Sprintf("%s %-7s %s", tid, kind, statusFields(m))
	case "heartbeat":
		return heartbeatText(tid, payload)
	default:
		return fmt.Sprintf("%s %-7s (%d bytes)", tid, kind, len(payload))
	}
}

// statusFields picks what matters for the step at hand, so a line stays short:
// the sale's result on test-sale, the batch on sign-on, and so on.
func statusFields(m report.Message) fields {
	// Masked again in case another publisher sent a full number: this output
	// ends up in tickets and chat.
	s, _ := report.Sanitize(m.Status)
	f := fields{}
	f.add("step", string(s.Step))
	f.add("state", s.State)
	f.add("attempt", strconv.Itoa(s.Attempt))
	if s.Boot > 1 {
		f.add("boot", strconv.Itoa(s.Boot))
	}
	switch s.Step {
	case provisioning.StepSignOn:
		if s.SignOn != nil {
			f.add("batch", s.SignOn.Batch)
			f.add("keys", map[bool]string{true: "ok", false: "FAIL"}[s.SignOn.KeysOK])
		}
	case provisioning.StepBindCard:
		f.add("card", s.Card)
	case provisioning.StepTestSale:
		f.txn(s.Sale, s.Card)
	case provisioning.StepVoid:
		f.txn(s.Void, s.Card)
	case provisioning.StepCAPK:
		f.download(s.CAPK)
	case provisioning.StepICParams:
		f.download(s.Apps)
	case provisioning.StepSettle:
		if st := s.Settlement; st != nil {
			f.add("batch", st.Batch)
			if st.Answered {
				f.add("balanced", strconv.FormatBool(st.Balanced))
			}
			if st.Uploaded > 0 {
				f.add("uploaded", strconv.Itoa(st.Uploaded))
			}
			f.add("next", st.NextBatch)
		}
	case provisioning.StepSignOnBusiness:
		if s.Business != nil {
			f.add("batch", s.Business.Batch)
		}
	}
	switch s.Clock {
	case provisioning.ClockBuild, provisioning.ClockPersisted:
		// Stamps from a floor, not a clock anyone set: worth a look.
		f.add("clock", string(s.Clock))
	}
	f.add("seq", strconv.FormatUint(m.Seq, 10))
	f.time(s.Time)
	if s.Message != "" {
		f.add("msg", strconv.Quote(s.Message))
	}
	if s.Error != nil {
		f = append(f, "error="+s.Error.Code+" "+s.Error.Message)
	}
	return f
}

// fields is a line of key=value pairs; empty values are left out.
type fields []string

func (f *fields) add(k, v string) {
	if v != "" {
		*f = append(*f, k+"="+v)
	}
}

func (f *fields) time(t time.Time) {
	if !t.IsZero() {
		f.add("time", t.UTC().Format(time.RFC3339))
	}
}

func (f *fields) download(d *provisioning.DownloadRecord) {
	if d != nil {
		f.add("count", strconv.Itoa(d.Count))
	}
}

func (f *fields) txn(t *provisioning.TxnRecord, card string) {
	if t == nil {
		f.add("card", card)
		return
	}
	c := t.Masked
	if c == "" {
		c = card
	}
	f.add("card", c)
	f.add("rc", t.RC)
	f.add("rrn", t.RRN)
	f.add("auth", t.AuthCode)
	if t.STAN != 0 {
		f.add("stan", strconv.Itoa(t.STAN))
	}
	if t.Amount != 0 {
		f.add("amount", strconv.FormatInt(t.Amount, 10))
	}
}

func (f fields) String() string { return strings.Join(f, " ") }

// redact hides a password in a URL for errors.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
