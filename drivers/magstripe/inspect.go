package magstripe

import (
	"strings"

	"github.com/posagent/posagent/provisioning/pan"
)

// Inspection is a field engineer's view of one track, for tools such as
// `posctl decode track`. It marshals to JSON with the PAN masked; showing the
// full number is the tool's explicit choice (PAN.Reveal), never a default.
type Inspection struct {
	Track       int     `json:"track"`
	PAN         pan.PAN `json:"pan"`
	Name        string  `json:"name,omitempty"`
	Expiry      string  `json:"expiry,omitempty"`
	ServiceCode string  `json:"service_code,omitempty"`
	Chip        bool    `json:"chip"` // service code 2xx/6xx: must be read by its chip
	Valid       bool    `json:"valid"`
	Failed      []Check `json:"failed"`
}

// Inspect parses one track as typed by a person: with its sentinels, or
// without them (track 1 starting with its format code B, track 2 holding '=',
// as field 35 carries it), in which case the sentinels are added first.
// Discretionary data is not part of the result.
func Inspect(s string, opts ParseOptions) Inspection {
	s = strings.TrimSpace(s)
	if s != "" && !strings.ContainsAny(s[:1], "%;+") {
		switch {
		case strings.Contains(s, "^"):
			s = "%" + s + "?"
		case strings.Contains(s, "="):
			s = ";" + s + "?"
		}
	}
	t, err := ParseTrack([]byte(s), opts)
	failed := t.Failed
	if failed == nil {
		failed = []Check{}
	}
	return Inspection{Track: t.Number, PAN: t.PAN, Name: t.Name, Expiry: t.Expiry,
		ServiceCode: t.ServiceCode, Chip: t.Chip(), Valid: err == nil, Failed: failed}
}
