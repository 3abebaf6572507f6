package provisioning

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DownloadStore keeps what the acquirer's downloads delivered: the CA
// public keys and IC (application) parameters the chip needs, the active
// lists and the one being downloaded. It is its own small record beside the
// checkpoint (larger, and read by whatever needs the keys). LoadDownloads
// returns ErrNoState when nothing was ever saved and an error wrapping
// ErrCorruptDownloads for a record that cannot be trusted; SaveDownloads
// replaces the record whole and atomically.
type DownloadStore interface {
	LoadDownloads() (Downloads, error)
	SaveDownloads(d Downloads) error
}

// ErrCorruptDownloads is a download record that does not parse, or holds a
// CA key whose checksum fails: it is not used. Unlike a corrupt checkpoint
// it costs nothing to replace (the host sends the lists again), so the
// download steps start afresh over it and a chip sale refuses to run on it.
var ErrCorruptDownloads = errors.New("provisioning: download record is corrupt")

// DownloadSchema is the download record layout this build writes and reads.
const DownloadSchema = 1

// Downloads is the download record. Active lists are only ever replaced
// whole, by a staged list whose end message the host acknowledged: a power
// cut inside a download leaves the old list active and the new one staged,
// never half a list the terminal takes for complete.
type Downloads struct {
	Schema int `json:"schema"`
	// CAPKs and Apps are the active lists, what chip transactions use.
	CAPKs []CAPK      `json:"capks,omitempty"`
	Apps  []AppParams `json:"apps,omitempty"`
	// CAPKAt and AppsAt are when each became active.
	CAPKAt time.Time `json:"capk_at,omitzero"`
	AppsAt time.Time `json:"apps_at,omitzero"`
	// StagedCAPK and StagedApps are downloads under way.
	StagedCAPK *CAPKStage `json:"staged_capk,omitempty"`
	StagedApps *AppStage  `json:"staged_apps,omitempty"`
}

// CAPKStage is a CA key download under way: the keys the host listed so
// far (ListDone once it said no more follow) and those fetched, in the
// list's order, each verified.
type CAPKStage struct {
	Listed   []CAPKID `json:"listed"`
	ListDone bool     `json:"list_done"`
	Keys     []CAPK   `json:"keys"`
}

// AppStage is an IC parameter download under way, as CAPKStage.
type AppStage struct {
	Listed   [][]byte    `json:"listed"`
	ListDone bool        `json:"list_done"`
	Apps     []AppParams `json:"apps"`
}

// ChipReady reports whether chip transactions may run: a CA key list and
// an application list are active.
func (d Downloads) ChipReady() bool { return len(d.CAPKs) > 0 && len(d.Apps) > 0 }

// verify checks every key the record holds, active and staged.
func (d Downloads) verify() error {
	keys := append([]CAPK(nil), d.CAPKs...)
	if d.StagedCAPK != nil {
		keys = append(keys, d.StagedCAPK.Keys...)
	}
	for _, k := range keys {
		if err := k.Verify(); err != nil {
			return err
		}
	}
	return nil
}

// EncodeDownloads renders d for a byte store, refusing a record with a key
// whose checksum fails: such a key is never written where it could be used.
func EncodeDownloads(d Downloads) ([]byte, error) {
	if err := d.verify(); err != nil {
		return nil, fmt.Errorf("provisioning: download record: %w", err)
	}
	d.Schema = DownloadSchema
	return json.MarshalIndent(d, "", "  ")
}

// DecodeDownloads parses a download record and checks every key's
// checksum again: a record damaged at rest is not used.
func DecodeDownloads(b []byte) (Downloads, error) {
	var d Downloads
	if len(bytes.TrimSpace(b)) == 0 {
		return Downloads{}, fmt.Errorf("%w: empty", ErrCorruptDownloads)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return Downloads{}, fmt.Errorf("%w: %v", ErrCorruptDownloads, err)
	}
	if d.Schema != DownloadSchema {
		return Downloads{}, fmt.Errorf("%w: schema %d, this build reads %d", ErrCorruptDownloads, d.Schema, DownloadSchema)
	}
	if err := d.verify(); err != nil {
		return Downloads{}, fmt.Errorf("%w: %w", ErrCorruptDownloads, err)
	}
	return d, nil
}

// DownloadFile is a DownloadStore on a byte Store (the agent's atomic
// file in the state dir, mode 0600): it encodes and verifies.
type DownloadFile struct{ Store Store }

var _ DownloadStore = DownloadFile{}

// LoadDownloads reads and verifies the record.
func (f DownloadFile) LoadDownloads() (Downloads, error) {
	b, err := f.Store.Load()
	if err != nil {
		return Downloads{}, err
	}
	return DecodeDownloads(b)
}

// SaveDownloads verifies and writes the record.
func (f DownloadFile) SaveDownloads(d Downloads) error {
	b, err := EncodeDownloads(d)
	if err != nil {
		return err
	}
	return f.Store.Save(b)
}

// memDownloads is the flow's download store when it was given none: the
// lists live as long as the process, and a restart downloads them again.
type memDownloads struct {
	mu sync.Mutex
	b  []byte
}

func (m *memDownloads) LoadDownloads() (Downloads, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.b == nil {
		return Downloads{}, ErrNoState
	}
	return DecodeDownloads(m.b)
}

func (m *memDownloads) SaveDownloads(d Downloads) error {
	b, err := EncodeDownloads(d)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.b = b
	m.mu.Unlock()
	return nil
}

// DownloadRecord is what the checkpoint keeps of an acknowledged
// download: how many entries became active, and when. The lists themselves
// are in the DownloadStore.
type DownloadRecord struct {
	Count int       `json:"count"`
	At    time.Time `json:"at"`
}
