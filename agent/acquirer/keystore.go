package acquirer

import (
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/posagent/posagent/agent/store"
)

// Keys is what the terminal keeps: the TMK (loaded at key injection) and the
// working keys of the last sign-on. Like Key, it never prints its contents.
type Keys struct {
	TMK     Key
	Mode    KeyMode // the sign-on mode the working keys came from
	Working WorkingKeys
	// PendingTMK is a TMK of a remote download (Client.DownloadTMK) whose
	// check value matched but whose activation the host has not yet
	// acknowledged. It is kept only so that a restart can send the
	// activation again; nothing is ever encrypted or decrypted under it.
	PendingTMK Key
}

// String shows check values only.
func (k Keys) String() string {
	return fmt.Sprintf("keys(tmk %v, pending tmk %v, mode %s, pik %v, mak %v, tdk %v)", k.TMK, k.PendingTMK, k.Mode, k.Working.PIK, k.Working.MAK, k.Working.TDK)
}

// GoString hides keys from %#v.
func (k Keys) GoString() string { return k.String() }

// Wipe zeroes every key of k in place (and so in every copy of k that
// shares its slices): for keys that are replaced or no longer needed.
func (k Keys) Wipe() {
	k.TMK.Wipe()
	k.PendingTMK.Wipe()
	k.Working.Wipe()
}

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

// ErrKeyFileUnsafe is returned for a key file that is not a regular file of
// mode 0600 owned by this process's user: someone else could have read the
// TMK, or could have swapped it for a key of theirs. The error names the
// rule the file breaks; the file is not read.
var ErrKeyFileUnsafe = errors.New("acquirer: key file is not protected")

// keyFile is the on-disk record. The working keys are stored as the host
// delivers them, encrypted under the TMK (ECB), never in clear; only the TMK
// itself is clear here, since something must hold it (see FileKeyStore).
// Every key has its check value (the first 3 bytes, in hex, as acquirers
// print them), verified on load: a key that does not match it is a
// corrupt file, not a key to sign on with.
//
// Key material is held in byte slices only (hexKey), never in strings,
// so that it can be wiped after use.
type keyFile struct {
	Schema int    `json:"schema"`
	TMK    hexKey `json:"tmk"`
	TMKKCV string `json:"tmk_kcv,omitempty"`
	Mode   string `json:"mode,omitempty"`
	PIK    hexKey `json:"pik_under_tmk,omitempty"`
	PIKKCV string `json:"pik_kcv,omitempty"`
	MAK    hexKey `json:"mak_under_tmk,omitempty"`
	MAKKCV string `json:"mak_kcv,omitempty"`
	TDK    hexKey `json:"tdk_under_tmk,omitempty"`
	TDKKCV string `json:"tdk_kcv,omitempty"`
	// PendingTMK is a downloaded TMK awaiting activation (Keys.PendingTMK),
	// clear like the TMK. A file may hold it and no TMK: a terminal whose
	// first TMK is on its way. Builds before remote TMK download refuse
	// such a file as corrupt, which is the safe reading.
	PendingTMK    hexKey `json:"pending_tmk,omitempty"`
	PendingTMKKCV string `json:"pending_tmk_kcv,omitempty"`
}

// keyFileSchema is the layout above. Schema 2 is the same without check
// values, as earlier builds wrote it: it is read (with the check values it
// happens to carry verified) and written again as schema 3 by the next
// save. Schema 1 held clear working keys and is refused.
const (
	keyFileSchema       = 3
	keyFileSchemaNoKCVs = 2
)

// kcvLen is how much of a check value the file keeps: 3 bytes, 6 hex
// digits, what an acquirer prints next to a key.
const kcvLen = 3

// hexKey is key material in hex in JSON, decoded without an intermediate
// string.
type hexKey []byte

// UnmarshalJSON decodes a JSON string of hex digits. encoding/json hands it
// a slice of the file's bytes, which LoadKeys wipes afterwards.
func (h *hexKey) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return ErrKeyFile
	}
	b = b[1 : len(b)-1]
	out := make([]byte, hex.DecodedLen(len(b)))
	if _, err := hex.Decode(out, b); err != nil {
		clear(out)
		return ErrKeyFile
	}
	*h = out
	return nil
}

// FileKeyStore is a KeyStore on one JSON file of mode 0600, replaced
// atomically on every save (temp file, fsync, rename, fsync directory).
// Working keys are kept encrypted under the TMK. The TMK is the one clear key:
// on a terminal without a secure element the file permissions and the
// device's disk encryption are what protect it (a PED or secure element
// replaces this store, not the flow). So the file is refused unless it is a
// regular file (not a symbolic link), of mode exactly 0600, owned by the
// process's effective user; an interrupted save's temp file, which holds
// the TMK too, is removed at the daemon's start (store.RemoveTemps).
//
// Keys are wiped from memory where the store handles them (the file's
// bytes after a load or a save, a key that failed its check). That is best
// effort in Go: the runtime may have copied a slice before it is wiped, and
// a caller's copy is the caller's to wipe (Keys.Wipe).
type FileKeyStore struct {
	Path string
	mu   sync.Mutex
}

var _ KeyStore = (*FileKeyStore)(nil)

// LoadKeys checks and reads the file.
func (s *FileKeyStore) LoadKeys() (Keys, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := readKeyFile(s.Path)
	if err != nil {
		return Keys{}, err
	}
	defer clear(b)
	return decodeKeyFile(b)
}

// decodeKeyFile parses and verifies the file's bytes; every error is
// ErrKeyFile, which quotes nothing of the file.
func decodeKeyFile(b []byte) (Keys, error) {
	var f keyFile
	defer f.wipe()
	// The decoder's error could quote file content: report only that it failed.
	if json.Unmarshal(b, &f) != nil || (f.Schema != keyFileSchema && f.Schema != keyFileSchemaNoKCVs) {
		return Keys{}, ErrKeyFile
	}
	if len(f.PendingTMK) > 0 || f.PendingTMKKCV != "" {
		if f.Schema != keyFileSchema || !validKeyLen(len(f.PendingTMK)) || !kcvOK(Key(f.PendingTMK), f.PendingTMKKCV, true) {
			return Keys{}, ErrKeyFile
		}
		if len(f.TMK) == 0 && f.TMKKCV == "" {
			// Only a TMK on its way: there can be no working keys yet.
			if f.Mode != "" || len(f.PIK)+len(f.MAK)+len(f.TDK) > 0 || f.PIKKCV+f.MAKKCV+f.TDKKCV != "" {
				return Keys{}, ErrKeyFile
			}
			return Keys{PendingTMK: append(Key(nil), f.PendingTMK...)}, nil
		}
	}
	if !validKeyLen(len(f.TMK)) || !kcvOK(Key(f.TMK), f.TMKKCV, f.Schema == keyFileSchema) {
		return Keys{}, ErrKeyFile
	}
	switch KeyMode(f.Mode) {
	case "", SingleDES, DoubleNoTDK, DoubleDES:
	default:
		return Keys{}, ErrKeyFile
	}
	k := Keys{TMK: append(Key(nil), f.TMK...), Mode: KeyMode(f.Mode)}
	if len(f.PendingTMK) > 0 {
		k.PendingTMK = append(Key(nil), f.PendingTMK...)
	}
	for _, e := range []struct {
		sealed hexKey
		kcv    string
		dst    *Key
	}{{f.PIK, f.PIKKCV, &k.Working.PIK}, {f.MAK, f.MAKKCV, &k.Working.MAK}, {f.TDK, f.TDKKCV, &k.Working.TDK}} {
		if len(e.sealed) == 0 && e.kcv == "" {
			continue
		}
		plain, err := DecryptECB(k.TMK, e.sealed)
		if err != nil || !kcvOK(plain, e.kcv, f.Schema == keyFileSchema) {
			Key(plain).Wipe()
			k.Wipe()
			return Keys{}, ErrKeyFile
		}
		*e.dst = plain
	}
	return k, nil
}

func validKeyLen(n int) bool { return n == 8 || n == 16 || n == 24 }

// kcvOK verifies a stored check value against the key; a missing one is
// accepted only when not required (schema 2).
func kcvOK(k Key, kcv string, required bool) bool {
	if kcv == "" {
		return !required
	}
	cv, err := CheckValue(k)
	if err != nil {
		return false
	}
	want, err := hex.DecodeString(kcv)
	return err == nil && len(want) == kcvLen && subtle.ConstantTimeCompare(cv[:kcvLen], want) == 1
}

func (f *keyFile) wipe() {
	for _, k := range []hexKey{f.TMK, f.PIK, f.MAK, f.TDK, f.PendingTMK} {
		clear(k)
	}
}

// SaveKeys writes the file with mode 0600.
func (s *FileKeyStore) SaveKeys(k Keys) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := encodeKeyFile(k)
	if err != nil {
		return fmt.Errorf("acquirer: key store: %w", err)
	}
	defer clear(b)
	if err := store.WriteFile(s.Path, b, 0o600); err != nil {
		return fmt.Errorf("acquirer: key store: %w", err)
	}
	return nil
}

// encodeKeyFile writes the record by hand rather than with encoding/json,
// whose pooled buffers would keep a copy of the TMK that nothing wipes.
// Every value is hex or a key mode, so nothing needs escaping.
func encodeKeyFile(k Keys) ([]byte, error) {
	if len(k.TMK) == 0 && len(k.PendingTMK) == 0 {
		return nil, errors.New("no TMK")
	}
	if len(k.TMK) == 0 && (k.Mode != "" || len(k.Working.PIK)+len(k.Working.MAK)+len(k.Working.TDK) > 0) {
		return nil, errors.New("working keys without a TMK")
	}
	if len(k.TMK) > 0 && !validKeyLen(len(k.TMK)) || len(k.PendingTMK) > 0 && !validKeyLen(len(k.PendingTMK)) {
		return nil, ErrKeyLength
	}
	switch k.Mode {
	case "", SingleDES, DoubleNoTDK, DoubleDES:
	default:
		return nil, fmt.Errorf("key mode %q is not supported", k.Mode)
	}
	b := make([]byte, 0, 512)
	field := func(name string, hexValue []byte) {
		b = append(b, ",\n  \""...)
		b = append(b, name...)
		b = append(b, "\": \""...)
		b = hex.AppendEncode(b, hexValue)
		b = append(b, '"')
	}
	kcv := func(k Key) ([]byte, error) {
		cv, err := CheckValue(k)
		if err != nil {
			return nil, err
		}
		return cv[:kcvLen], nil
	}
	b = append(b, "{\n  \"schema\": "...)
	b = strconv.AppendInt(b, keyFileSchema, 10)
	var cv []byte
	var err error
	for _, e := range []struct {
		name string
		key  Key
	}{{"tmk", k.TMK}, {"pending_tmk", k.PendingTMK}} {
		if len(e.key) == 0 {
			continue
		}
		field(e.name, e.key)
		if cv, err = kcv(e.key); err != nil {
			clear(b)
			return nil, err
		}
		field(e.name+"_kcv", cv)
	}
	if k.Mode != "" {
		b = append(b, ",\n  \"mode\": \""...)
		b = append(b, k.Mode...)
		b = append(b, '"')
	}
	for _, e := range []struct {
		name string
		key  Key
	}{{"pik", k.Working.PIK}, {"mak", k.Working.MAK}, {"tdk", k.Working.TDK}} {
		if len(e.key) == 0 {
			continue
		}
		sealed, err := EncryptECB(k.TMK, e.key)
		if err == nil {
			cv, err = kcv(e.key)
		}
		if err != nil {
			clear(b)
			return nil, err
		}
		field(e.name+"_under_tmk", sealed)
		field(e.name+"_kcv", cv)
	}
	return append(b, "\n}\n"...), nil
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

// SaveKeys keeps a copy of k and wipes the copy it replaces.
func (m *MemKeyStore) SaveKeys(k Keys) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := cloneKeys(k)
	if m.keys != nil {
		m.keys.Wipe()
	}
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
	return Keys{TMK: c(k.TMK), PendingTMK: c(k.PendingTMK), Mode: k.Mode,
		Working: WorkingKeys{PIK: c(k.Working.PIK), MAK: c(k.Working.MAK), TDK: c(k.Working.TDK)}}
}
