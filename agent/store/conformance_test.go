package store_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/posagent/posagent/agent/installer"
	"github.com/posagent/posagent/agent/store"
	"github.com/posagent/posagent/agent/store/storetest"
	"github.com/posagent/posagent/provisioning"
)

// File keeps the checkpoint and the installer's lock and identity records.
var (
	_ provisioning.Store = store.File{}
	_ installer.Store    = store.File{}
)

func TestFileConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		path := filepath.Join(t.TempDir(), "state.json")
		return storetest.Backend{
			Store:  store.File{Path: path},
			Reopen: func() storetest.Store { return store.File{Path: path} },
			Damage: func(d storetest.Damage) bool {
				var err error
				switch d {
				case storetest.Empty:
					err = os.WriteFile(path, nil, 0o600)
				case storetest.Garbled:
					err = os.WriteFile(path, storetest.Garbage, 0o600)
				case storetest.Unreadable:
					if err = os.Remove(path); err == nil {
						err = os.Mkdir(path, 0o700)
					}
				default:
					return false
				}
				if err != nil {
					t.Fatal(err)
				}
				return true
			},
			// Each Save renames a whole temp file over the old one.
			Concurrent: true,
		}
	})
}
