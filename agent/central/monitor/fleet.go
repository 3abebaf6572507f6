package monitor

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/report"
)

// Row is what the fleet view knows about one terminal.
type Row struct {
	TID, MID, Serial string
	Step, State      string // from the newest status
	Presence         string // online, offline, "" (never seen)
	Session          uint64 // of the newest presence
	Seq              uint64 // of the newest status or event
	// Updated is the newest status's own time (when the terminal produced it),
	// not when it arrived: a retained status arrives "now" whatever its age.
	Updated   time.Time
	LastError string // code and message of the newest status's error
	// LastSeen is when the newest heartbeat or birth of Session arrived, by
	// the monitor's clock (a terminal's own clock may run on a floor);
	// Interval is the heartbeat period the terminal announced, 0 until one
	// arrived (no silence is judged without it); Beat is the newest
	// heartbeat number of Session. PresenceAt turns them into Silent.
	LastSeen time.Time
	Interval time.Duration
	Beat     uint64
}

// Fleet folds the schema's messages into one row per terminal. It applies
// the session rule of docs/mqtt.md: an offline presence from an older session
// than the newest presence seen is a late Will and changes nothing. It is not
// safe for concurrent use (Watch owns one).
type Fleet struct {
	rows   map[string]*Row
	now    func() time.Time
	silent map[string]time.Time // LastSeen of each silence Silenced returned
}

// NewFleet returns an empty fleet on the wall clock.
func NewFleet() *Fleet { return NewFleetClock(time.Now) }

// NewFleetClock returns an empty fleet that stamps arrivals (Row.LastSeen)
// with now.
func NewFleetClock(now func() time.Time) *Fleet {
	return &Fleet{rows: map[string]*Row{}, now: now, silent: map[string]time.Time{}}
}

// Apply folds one message in. It returns stale = true for a presence or a
// heartbeat that was ignored because it belongs to an older session (a late
// Will, a delayed heartbeat of an earlier run).
func (f *Fleet) Apply(topic string, payload []byte) (stale bool) {
	return f.apply(topic, payload, false)
}

// ApplyRetained is Apply for a message the broker delivered as retained.
// A retained birth of a session the row has already seen alive is a replay
// (the broker resends it on every subscribe, so on each of the monitor's
// reconnects, or late when a subscribe raced the publish) and is no sign
// of life: it leaves LastSeen alone, or every reconnect of the monitor
// would bring each silent terminal back for SilentAfter intervals.
func (f *Fleet) ApplyRetained(topic string, payload []byte) (stale bool) {
	return f.apply(topic, payload, true)
}

func (f *Fleet) apply(topic string, payload []byte, retained bool) (stale bool) {
	parts := strings.Split(topic, "/")
	if len(parts) != 4 || parts[0]+"/"+parts[1]+"/" != mqtt.TopicPrefix {
		return false
	}
	tid, kind := parts[2], parts[3]
	row := f.rows[tid]
	if row == nil {
		row = &Row{TID: tid}
		f.rows[tid] = row
	}
	switch kind {
	case "state":
		var p mqtt.Presence
		if json.Unmarshal(payload, &p) != nil || p.State == "" {
			return false
		}
		if mqtt.Stale(p, mqtt.Presence{Session: row.Session}) {
			return true
		}
		replay := retained && p.Session == row.Session && !row.LastSeen.IsZero()
		if p.Session > row.Session {
			row.Beat = 0
		}
		row.Presence, row.Session = p.State, max(row.Session, p.Session)
		if p.State == mqtt.Online && !replay {
			row.LastSeen = f.now()
		}
		if p.MID != "" {
			row.MID = p.MID
		}
		if p.Serial != "" {
			row.Serial = p.Serial
		}
	case "heartbeat":
		return applyHeartbeat(row, payload, f.now())
	case "status", "events":
		var m report.Message
		if json.Unmarshal(payload, &m) != nil {
			return false
		}
		if m.Seq != 0 && m.Seq < row.Seq {
			return false // an older event (a replay after an outage) does not roll the row back
		}
		s, _ := report.Sanitize(m.Status)
		row.Seq = max(row.Seq, m.Seq)
		row.Step, row.State, row.Updated = string(s.Step), s.State, s.Time
		if s.MID != "" {
			row.MID = s.MID
		}
		row.LastError = ""
		if s.Error != nil {
			row.LastError = s.Error.Code + " " + s.Error.Message
		}
	}
	return false
}

// Row returns one terminal's row.
func (f *Fleet) Row(tid string) (Row, bool) {
	r, ok := f.rows[tid]
	if !ok {
		return Row{}, false
	}
	return *r, true
}

// Rows returns the rows ordered by TID.
func (f *Fleet) Rows() []Row {
	out := make([]Row, 0, len(f.rows))
	for _, r := range f.rows {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TID < out[j].TID })
	return out
}

// Count returns how many terminals are online and how many are in each state
// ("live", "failed", …), for a fleet summary.
func (f *Fleet) Count() (online int, byState map[string]int) {
	byState = map[string]int{}
	for _, r := range f.rows {
		if r.Presence == mqtt.Online {
			online++
		}
		if r.State != "" {
			byState[r.State]++
		}
	}
	return online, byState
}

// Table writes the fleet as aligned columns: TID, MID, STEP, STATE, ONLINE,
// AGE (since the newest status was produced, at now) and LAST ERROR; ONLINE
// is the presence at now (PresenceAt), so a terminal gone quiet reads silent.
func (f *Fleet) Table(w io.Writer, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TID\tMID\tSTEP\tSTATE\tONLINE\tAGE\tLAST ERROR")
	for _, r := range f.Rows() {
		age := "-"
		if !r.Updated.IsZero() {
			age = now.Sub(r.Updated).Truncate(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.TID, dash(r.MID), dash(r.Step), dash(r.State), dash(r.PresenceAt(now)), age, dash(r.LastError))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("monitor: write: %w", err)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
