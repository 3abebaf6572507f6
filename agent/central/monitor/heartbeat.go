package monitor

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt"
)

// Silent is the presence of a terminal that has sent neither a heartbeat
// nor a birth for SilentAfter heartbeat intervals. It is not Offline: nobody
// said the terminal went away (no Will, no shutdown), it just stopped being
// heard — a frozen agent, a half-open link, or a broker that lost the Will
// (RabbitMQ publishes none when the terminal's node dies).
const Silent = "silent"

// SilentAfter is how many heartbeat intervals without a sign of life make a
// terminal Silent: one lost QoS 0 heartbeat is not news, three in a row are.
const SilentAfter = 3

// applyHeartbeat folds a heartbeat into row at arrival time now. It returns
// stale = true for a heartbeat of an older session than the row knows (a
// delayed message of a previous run: it says nothing about this one).
func applyHeartbeat(row *Row, payload []byte, now time.Time) (stale bool) {
	var hb mqtt.Heartbeat
	if json.Unmarshal(payload, &hb) != nil || hb.IntervalS < 0 {
		return false
	}
	switch {
	case hb.Session != 0 && row.Session != 0 && hb.Session < row.Session:
		return true
	case hb.Session > row.Session:
		// A newer run than any presence seen: its birth is late or never
		// came (RabbitMQ delivers retained births to exact-topic subscribers
		// only), and the heartbeat is proof enough that it is online.
		row.Session, row.Beat, row.Presence = hb.Session, 0, mqtt.Online
	case row.Presence == mqtt.Offline:
		// The same session already said offline: this heartbeat was sent
		// before that and arrived late (events, state and heartbeats can
		// travel on different queues). It must not bring the terminal back.
		return false
	}
	if row.Presence == "" {
		row.Presence = mqtt.Online
	}
	row.Beat = max(row.Beat, hb.Beat)
	row.Interval = time.Duration(hb.IntervalS) * time.Second
	row.LastSeen = now
	return false
}

// PresenceAt is the row's presence at now: Silent when a heartbeat interval
// is known and neither a heartbeat nor a birth arrived for SilentAfter of
// them; otherwise what the state topic said (Online, Offline or "").
func (r Row) PresenceAt(now time.Time) string {
	if r.Presence == mqtt.Offline || r.Interval <= 0 || r.LastSeen.IsZero() {
		return r.Presence
	}
	if now.Sub(r.LastSeen) > SilentAfter*r.Interval {
		return Silent
	}
	return r.Presence
}

// Silenced returns the terminals that are Silent at now and were not
// returned by an earlier call for the same silence (a heartbeat or birth
// starts a new one), ordered by TID: what a watcher announces once.
func (f *Fleet) Silenced(now time.Time) []Row {
	var out []Row
	for _, r := range f.Rows() {
		if r.PresenceAt(now) != Silent {
			continue
		}
		if seen, ok := f.silent[r.TID]; ok && seen.Equal(r.LastSeen) {
			continue
		}
		f.silent[r.TID] = r.LastSeen
		out = append(out, r)
	}
	return out
}

// silentText is the line announcing that a terminal went silent.
func silentText(r Row, now time.Time) string {
	return fmt.Sprintf("%s %-7s no heartbeat or birth for %s (interval_s=%d, session=%d)", r.TID, Silent,
		now.Sub(r.LastSeen).Truncate(time.Second), int64(r.Interval/time.Second), r.Session)
}

// silentJSON is the JSON mode record of the same.
func silentJSON(r Row) string {
	b, _ := json.Marshal(struct {
		Presence  string    `json:"presence"`
		TID       string    `json:"tid"`
		Session   uint64    `json:"session,omitempty"`
		LastSeen  time.Time `json:"last_seen"`
		IntervalS int64     `json:"interval_s"`
	}{Silent, r.TID, r.Session, r.LastSeen.UTC(), int64(r.Interval / time.Second)})
	return string(b)
}

// heartbeatText renders a heartbeat for TextLine.
func heartbeatText(tid string, payload []byte) string {
	var hb mqtt.Heartbeat
	if err := json.Unmarshal(payload, &hb); err != nil {
		return fmt.Sprintf("%s %-7s invalid payload (%d bytes)", tid, "beat", len(payload))
	}
	f := fields{}
	f.add("session", strconv.FormatUint(hb.Session, 10))
	f.add("beat", strconv.FormatUint(hb.Beat, 10))
	f.add("interval_s", strconv.FormatInt(hb.IntervalS, 10))
	f.time(hb.Time)
	return fmt.Sprintf("%s %-7s %s", tid, "beat", f)
}

// staleHeartbeatText is the line for a heartbeat of an older session.
func staleHeartbeatText(tid string, payload []byte) string {
	var hb mqtt.Heartbeat
	_ = json.Unmarshal(payload, &hb)
	return fmt.Sprintf("%s %-7s heartbeat of session %d ignored: a newer session is known", tid, "stale", hb.Session)
}
