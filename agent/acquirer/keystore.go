package acquirer

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/posagent/posagent/agent/store"
)

// Keys is what the terminal keeps: the TMK (loaded at key injection) and the
// working keys of the last sign-on. Like Key, it never prints its contents.
type Keys struct {
	TMK     Key
	Mode    KeyMode // the sign-on mode the working keys came from
	Working WorkingKeys
}

// String shows check values only.
func (k Keys) String() string {
	return fmt.Sprintf("keys(tmk %v, mode %s, pik %v, mak %v, tdk %v)", k.TMK, k.Mode, k.Working.PIK, k.Working.MAK, k.Working.TDK)
}

// GoString hides keys from %#v.
func (k Keys) GoString() string { return k.String() }

// KeyStore keeps the terminal's keys across restarts. The client needs the
// MAK of the last sign-on after a restart, to MAC the reversal of a message
// that was in flight.
type KeyStore interface {
	// LoadKeys returns the stored keys, or an error wrapping ErrNoKeys when
	// none were ever stored.
	LoadKeys() (Keys, error)
	// SaveKeys replaces the stored keys atomically.
	SaveKeys(Keys) error
}

// ErrNoKeys is returned by LoadKeys when no keys were ever stored: the
// terminal has not had its TMK injected.
var ErrNoKeys = errors.New("acquirer: no keys stored")

// ErrKeyFile is returned for a key file that exists but cannot be used; it
// is never treated as "no keys".
var ErrKeyFile = errors.New("acquirer: key file is corrupt")

// keyFile is the on-disk record. The working keys are stored as the host
// delivers them, encrypted under the TMK (ECB), never in clear; only the TMK
// itself is clear here, since something must hold it (see FileKeyStore).
type keyFile struct {
	Schema int    `json:"schema"`
	TMK    string `json:"tmk"`
	Mode   string `json:"mode,omitempty"`
	PIK    string `json:"pik_under_tmk,omitempty"`
	MAK    string `json:"mak_under_tmk,omitempty"`
	TDK    string `json:"tdk_under_tmk,omitempty"`
}

// keyFileSchema is the layout above; schema 1 held clear working keys and is
// refused.
const keyFileSchema = 2

// FileKeyStore is a KeyStore on one JSON file of mode 0600, replaced
// atomically on every save (temp file, fsync, rename, fsync directory).
// Working keys are kept encrypted under the TMK. The TMK is the one clear key:
// on a terminal without a secure element the file permissions and the
// device's disk encryption are what protect it (a PED or secure element
// replaces this store, not the flow).
type FileKeyStore struct {
	Path string
	mu   sync.Mutex
}

var _ KeyStore = (*FileKeyStore)(nil)

// LoadKeys reads the file.
func (s *FileKeyStore) LoadKeys() (Keys, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := os.ReadFile(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return Keys{}, ErrNoKeys
	}
	if err != nil {
		return Keys{}, fmt.Errorf("acquirer: key store: %w", err)
	}
	var f keyFile
	// The decoder's error could quote file content: report only that it failed.
	if json.Unmarshal(b, &f) != nil || f.Schema != keyFileSchema {
		return Keys{}, ErrKeyFile
	}
	var k Keys
	k.Mode = KeyMode(f.Mode)
	tmk, err := ParseKey(f.TMK)
	if err != nil {
		return Keys{}, ErrKeyFile
	}
	k.TMK = tmk
	for _, e := range []struct {
		hex string
		dst *Key
	}{{f.PIK, &k.Working.PIK}, {f.MAK, &k.Working.MAK}, {f.TDK, &k.Working.TDK}} {
		if e.hex == "" {
			continue
		}
		sealed, err := hex.DecodeString(e.hex)
		if err != nil {
			return Keys{}, ErrKeyFile
		}
		clear, err := DecryptECB(tmk, sealed)
		if err != nil {
			return Keys{}, ErrKeyFile
		}
		*e.dst = clear
	}
	return k, nil
}

// SaveKeys writes the file with mode 0600.
func (s *FileKeyStore) SaveKeys(k Keys) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(k.TMK) == 0 {
		return fmt.Errorf("acquirer: key store: no TMK")
	}
	f := keyFile{Schema: keyFileSchema, TMK: hex.EncodeToString(k.TMK), Mode: string(k.Mode)}
	for _, e := range []struct {
		key Key
		dst *string
	}{{k.Working.PIK, &f.PIK}, {k.Working.MAK, &f.MAK}, {k.Working.TDK, &f.TDK}} {
		if len(e.key) == 0 {
			continue
		}
		sealed, err := EncryptECB(k.TMK, e.key)
		if err != nil {
			return fmt.Errorf("acquirer: key store: %w", err)
		}
		*e.dst = hex.EncodeToString(sealed)
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("acquirer: key store: %w", err)
	}
	if err := store.WriteFile(s.Path, b, 0o600); err != nil {
		return fmt.Errorf("acquirer: key store: %w", err)
	}
	return nil
}

// MemKeyStore is a KeyStore in memory, for tests and the simulator.
type MemKeyStore struct {
	mu   sync.Mutex
	keys *Keys
}

var _ KeyStore = (*MemKeyStore)(nil)

// LoadKeys returns the last saved keys.
func (m *MemKeyStore) LoadKeys() (Keys, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys == nil {
		return Keys{}, ErrNoKeys
	}
	return cloneKeys(*m.keys), nil
}

// SaveKeys keeps a copy of k.
func (m *MemKeyStore) SaveKeys(k Keys) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := cloneKeys(k)
	m.keys = &c
	return nil
}

func cloneKeys(k Keys) Keys {
	c := func(x Key) Key {
		if x == nil {
			return nil
		}
		return append(Key(nil), x...)
	}
	return Keys{TMK: c(k.TMK), Mode: k.Mode, Working: WorkingKeys{PIK: c(k.Working.PIK), MAK: c(k.Working.MAK), TDK: c(k.Working.TDK)}}
}
