package pan

import "log/slog"

// Track is raw magnetic-stripe track data (or a chip's track-2 equivalent) on
// its way from the reader to the host message. It redacts itself wherever it
// could be printed, logged or marshalled, because PCI DSS forbids storing or
// showing full track data after authorisation; only Reveal gives the bytes,
// and only the message packer should call it.
type Track struct{ data string }

// NewTrack wraps raw track data (without sentinels or LRC).
func NewTrack(data string) Track { return Track{data: data} }

// IsZero reports whether no track was read.
func (t Track) IsZero() bool { return t.data == "" }

// Reveal returns the raw track data.
func (t Track) Reveal() string { return t.data }

const redacted = "[track data]"

// String never shows the data.
func (t Track) String() string {
	if t.data == "" {
		return ""
	}
	return redacted
}

// GoString never shows the data, even under %#v.
func (t Track) GoString() string { return `pan.Track("` + t.String() + `")` }

// LogValue keeps the data out of slog.
func (t Track) LogValue() slog.Value { return slog.StringValue(t.String()) }

// MarshalText keeps the data out of JSON, YAML and checkpoints.
func (t Track) MarshalText() ([]byte, error) { return []byte(t.String()), nil }
