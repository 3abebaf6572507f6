package acquirer

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testKeyStore is the conformance suite every KeyStore passes.
func testKeyStore(t *testing.T, s KeyStore) {
	t.Helper()
	if _, err := s.LoadKeys(); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("empty store: %v", err)
	}
	k := Keys{TMK: mustHex(t, "0123456789ABCDEFFEDCBA9876543210"), Mode: DoubleDES,
		Working: WorkingKeys{PIK: mustHex(t, "1111111111111111AAAAAAAAAAAAAAAA"), MAK: mustHex(t, "2222222222222222BBBBBBBBBBBBBBBB")}}
	if err := s.SaveKeys(k); err != nil {
		t.Fatal(err)
	}
	k.TMK[0] = 0xFF // the store keeps its own copy
	got, err := s.LoadKeys()
	if err != nil {
		t.Fatal(err)
	}
	if got.TMK[0] != 0x01 || !bytes.Equal(got.Working.MAK, k.Working.MAK) || got.Working.TDK != nil || got.Mode != DoubleDES {
		t.Fatalf("loaded %v", got)
	}
	if err := s.SaveKeys(Keys{}); err == nil {
		// A store may accept an empty set, but the file store refuses one
		// without a TMK; both are fine for the memory store.
		t.Log("empty key set accepted")
	}
}

func TestMemKeyStore(t *testing.T) { testKeyStore(t, &MemKeyStore{}) }

func TestFileKeyStore(t *testing.T) {
	dir := t.TempDir()
	s := &FileKeyStore{Path: filepath.Join(dir, "keys.json")}
	testKeyStore(t, s)
	fi, err := os.Stat(s.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	// No temp files are left behind.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("dir has %d entries", len(ents))
	}
	// Working keys are on disk only under the TMK.
	raw, err := os.ReadFile(s.Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{"1111111111111111aaaaaaaaaaaaaaaa", "2222222222222222bbbbbbbbbbbbbbbb"} {
		if strings.Contains(strings.ToLower(string(raw)), clear) {
			t.Errorf("key file holds a working key in clear:\n%s", raw)
		}
	}
	for _, bad := range []string{"", "{",
		`{"schema":1,"tmk":"0123456789abcdef","mak":"2222222222222222"}`, // the old clear layout
		`{"schema":99,"tmk":"0123456789abcdef"}`,
		`{"schema":2,"tmk":"zz"}`, `{"schema":2}`,
		`{"schema":2,"tmk":"0123456789abcdef","mak_under_tmk":"abc"}`,
		`{"schema":2,"tmk":"0123456789abcdef","mak_under_tmk":"0011"}`} {
		if err := os.WriteFile(s.Path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := s.LoadKeys()
		if !errors.Is(err, ErrKeyFile) {
			t.Errorf("%q: %v", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "zz") {
			t.Errorf("error quotes the file: %v", err)
		}
	}
	k := Keys{TMK: mustHex(t, "0123456789ABCDEF")}
	if s := fmt.Sprintf("%v %+v %#v", k, k, k); strings.Contains(strings.ToUpper(s), "0123456789ABCDEF") {
		t.Fatalf("leak: %s", s)
	}
}
