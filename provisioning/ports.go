package provisioning

import "context"

// Screen is one screen of text for the installer: a title and a few lines.
type Screen struct {
	Title string
	Lines []string
	// Failure is set on the needs-attention question, for prompters that
	// lay a failure out themselves (Lines hold it already for those that
	// do not).
	Failure *Failure
}

// Option is one answer the installer can give with a key.
type Option struct {
	ID    string // returned by Ask: "confirm", "cancel", "retry", "abort"
	Key   string // the key that picks it: "ENTER", "CANCEL", "1" … "9", "F1" …
	Label string // shown next to the key
}

// Prompter is the terminal's screen and keypad as the flow sees them.
type Prompter interface {
	// Show displays s and returns at once.
	Show(ctx context.Context, s Screen) error
	// Ask displays s with the options and waits for a key that picks one,
	// ignoring other keys; it returns that option's ID.
	Ask(ctx context.Context, s Screen, options ...Option) (string, error)
}

// Reporter sends status to central monitoring. Report must not block the flow on
// the network: a reporter queues what it cannot send yet.
type Reporter interface {
	Report(ctx context.Context, s Status)
}

// Store keeps the checkpoint. Load returns ErrNoState only when nothing was
// ever saved. A record that exists comes back as it is, even empty, for
// Decode to refuse with ErrCorruptState, or Load fails with another error;
// never ErrNoState, which would start a new install over the old one. Save
// replaces the record whole; Load and Save copy. Every backend passes
// agent/store/storetest.
type Store interface {
	Load() ([]byte, error)
	Save(data []byte) error
}
