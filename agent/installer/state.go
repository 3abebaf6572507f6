package installer

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/posagent/posagent/provisioning"
)

// Store keeps one small record. It has the shape and the semantics of
// provisioning.Store (agent/store.File implements both, and every backend
// passes agent/store/storetest): Load returns provisioning.ErrNoState only
// when nothing was ever saved; an empty or garbled record comes back as it
// is, for the decoder to refuse, and an unreadable one is some other error.
type Store interface {
	Load() ([]byte, error)
	Save(data []byte) error
}

// lockSchema is the layout of the lock record this build writes and reads.
const lockSchema = 1

// lockState is the persisted password lock: how many wrong tries in a row,
// and until when install mode is locked. It is persisted so that a power
// cycle neither forgets the wrong tries nor lifts the lock.
type lockState struct {
	Schema      int       `json:"schema"`
	Failures    int       `json:"failures"`
	LockedUntil time.Time `json:"locked_until,omitzero"`
}

// errCorruptLock marks a lock record that exists but cannot be read: the
// installer fails closed on it (see loadLock).
var errCorruptLock = errors.New("installer: lock record is corrupt")

func loadLock(s Store) (lockState, error) {
	b, err := s.Load()
	if errors.Is(err, provisioning.ErrNoState) {
		return lockState{Schema: lockSchema}, nil
	}
	if err != nil {
		return lockState{}, fmt.Errorf("installer: load lock: %w", err)
	}
	var l lockState
	if err := json.Unmarshal(b, &l); err != nil {
		return lockState{}, fmt.Errorf("%w: %v", errCorruptLock, err)
	}
	if l.Schema != lockSchema || l.Failures < 0 {
		return lockState{}, fmt.Errorf("%w: schema %d, failures %d", errCorruptLock, l.Schema, l.Failures)
	}
	return l, nil
}

func saveLock(s Store, l lockState) error {
	l.Schema = lockSchema
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("installer: encode lock: %w", err)
	}
	if err := s.Save(b); err != nil {
		return fmt.Errorf("installer: save lock: %w", err)
	}
	return nil
}

// Identity is the terminal's merchant and terminal numbers as the installer
// confirmed them: MID is field 42 (15 digits), TID field 41 (8 digits).
type Identity struct {
	MID string `json:"mid"`
	TID string `json:"tid"`
}

// Lengths of the numbers, fixed by the UnionPay terminal specification.
const (
	MIDLen = 15
	TIDLen = 8
)

// Valid reports whether both numbers have the right length and only digits.
func (id Identity) Valid() bool { return digits(id.MID, MIDLen) && digits(id.TID, TIDLen) }

func digits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// idSchema is the layout of the identity record.
const idSchema = 1

type idRecord struct {
	Schema int `json:"schema"`
	Identity
}

// LoadIdentity returns the identity the installer confirmed and saved in s,
// or ok false when none was ever saved (see loadIdentity).
func LoadIdentity(s Store) (id Identity, ok bool, err error) { return loadIdentity(s) }

// loadIdentity returns the saved identity, or ok false when none was ever
// saved. A corrupt record is an error, not "none": the terminal would
// otherwise fall back to the config's numbers without anyone noticing.
func loadIdentity(s Store) (id Identity, ok bool, err error) {
	b, err := s.Load()
	if errors.Is(err, provisioning.ErrNoState) {
		return Identity{}, false, nil
	}
	if err != nil {
		return Identity{}, false, fmt.Errorf("installer: load identity: %w", err)
	}
	var r idRecord
	if err := json.Unmarshal(b, &r); err != nil || r.Schema != idSchema || !r.Identity.Valid() {
		return Identity{}, false, errors.New("installer: identity record is corrupt")
	}
	return r.Identity, true, nil
}

func saveIdentity(s Store, id Identity) error {
	b, err := json.Marshal(idRecord{Schema: idSchema, Identity: id})
	if err != nil {
		return fmt.Errorf("installer: encode identity: %w", err)
	}
	if err := s.Save(b); err != nil {
		return fmt.Errorf("installer: save identity: %w", err)
	}
	return nil
}
