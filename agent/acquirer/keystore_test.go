package acquirer

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
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

// TestFileKeyStoreRefusesUnsafeFile: a key file that is a symbolic link,
// not a regular file, not of mode exactly 0600, or owned by another user is
// refused with an error naming the rule, and never with its content.
func TestFileKeyStoreRefusesUnsafeFile(t *testing.T) {
	dir := t.TempDir()
	good := &FileKeyStore{Path: filepath.Join(dir, "real.json")}
	if err := good.SaveKeys(Keys{TMK: mustHex(t, "0123456789ABCDEFFEDCBA9876543210")}); err != nil {
		t.Fatal(err)
	}
	check := func(name, path, rule string) {
		t.Helper()
		_, err := (&FileKeyStore{Path: path}).LoadKeys()
		if !errors.Is(err, ErrKeyFileUnsafe) || !strings.Contains(err.Error(), rule) {
			t.Errorf("%s: LoadKeys = %v, want ErrKeyFileUnsafe naming %q", name, err, rule)
		}
		if err != nil && strings.Contains(strings.ToLower(err.Error()), "0123456789abcdef") {
			t.Errorf("%s: error quotes the key: %v", name, err)
		}
	}

	link := filepath.Join(dir, "keys.json")
	if err := os.Symlink(good.Path, link); err != nil {
		t.Fatal(err)
	}
	check("symlink", link, "symbolic link")
	check("directory", dir, "not a regular file")

	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o400, 0o700, 0o660} {
		p := filepath.Join(dir, fmt.Sprintf("mode-%o.json", mode))
		raw, err := os.ReadFile(good.Path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("mode %04o", mode), p, fmt.Sprintf("mode %04o", mode))
	}

	// Another owner: the file as it is, seen by a process of another uid.
	defer func(f func() int) { geteuid = f }(geteuid)
	uid := os.Geteuid()
	geteuid = func() int { return uid + 1 }
	check("other owner", good.Path, fmt.Sprintf("owned by uid %d", uid))
	geteuid = func() int { return uid }
	if _, err := good.LoadKeys(); err != nil {
		t.Fatalf("the 0600 file of this user: %v", err)
	}
}

// TestFileKeyStoreCheckValues: every stored key carries its check value,
// and a key that does not match its check value makes the file corrupt.
func TestFileKeyStoreCheckValues(t *testing.T) {
	s := &FileKeyStore{Path: filepath.Join(t.TempDir(), "keys.json")}
	k := Keys{TMK: mustHex(t, "0123456789ABCDEFFEDCBA9876543210"), Mode: DoubleDES,
		Working: WorkingKeys{PIK: mustHex(t, "1111111111111111AAAAAAAAAAAAAAAA"), MAK: mustHex(t, "2222222222222222BBBBBBBBBBBBBBBB"),
			TDK: mustHex(t, "3333333333333333CCCCCCCCCCCCCCCC")}}
	if err := s.SaveKeys(k); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(s.Path)
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]any
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("the file is not JSON: %v\n%s", err, raw)
	}
	for name, key := range map[string]Key{"tmk": k.TMK, "pik": k.Working.PIK, "mak": k.Working.MAK, "tdk": k.Working.TDK} {
		cv, _ := CheckValue(key)
		if got, _ := f[name+"_kcv"].(string); got != hex.EncodeToString(cv[:3]) {
			t.Errorf("%s_kcv = %q, want %x", name, got, cv[:3])
		}
	}
	if f["schema"] != float64(3) {
		t.Errorf("schema %v", f["schema"])
	}
	got, err := s.LoadKeys()
	if err != nil || !bytes.Equal(got.Working.TDK, k.Working.TDK) || got.Mode != DoubleDES {
		t.Fatalf("LoadKeys = %v, %v", got, err)
	}

	edit := func(mut func(map[string]any)) []byte {
		m := map[string]any{}
		for k, v := range f {
			m[k] = v
		}
		mut(m)
		b, _ := json.Marshal(m)
		return b
	}
	otherTMK := "1123456789abcdeffedcba9876543210" // one bit off
	for name, b := range map[string][]byte{
		"tmk kcv wrong":         edit(func(m map[string]any) { m["tmk_kcv"] = "000000" }),
		"tmk flipped":           edit(func(m map[string]any) { m["tmk"] = otherTMK }),
		"mak kcv wrong":         edit(func(m map[string]any) { m["mak_kcv"] = "ffffff" }),
		"mak kcv too long":      edit(func(m map[string]any) { m["mak_kcv"] = f["mak_kcv"].(string) + "00" }),
		"tdk kcv not hex":       edit(func(m map[string]any) { m["tdk_kcv"] = "zzzzzz" }),
		"tmk kcv missing":       edit(func(m map[string]any) { delete(m, "tmk_kcv") }),
		"pik kcv missing":       edit(func(m map[string]any) { delete(m, "pik_kcv") }),
		"kcv without key":       edit(func(m map[string]any) { delete(m, "tdk_under_tmk") }),
		"schema 2 kcv wrong":    edit(func(m map[string]any) { m["schema"] = 2; m["mak_kcv"] = "ffffff" }),
		"unknown key mode":      edit(func(m map[string]any) { m["mode"] = "999" }),
		"tmk of 7 bytes":        edit(func(m map[string]any) { m["tmk"] = "01234567890123"; delete(m, "tmk_kcv") }),
		"working key truncated": edit(func(m map[string]any) { m["mak_under_tmk"] = f["mak_under_tmk"].(string)[:30] }),
	} {
		if err := os.WriteFile(s.Path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LoadKeys(); !errors.Is(err, ErrKeyFile) {
			t.Errorf("%s: LoadKeys = %v, want ErrKeyFile", name, err)
		}
	}

	// A schema-2 file (earlier builds: no check values) still loads, and
	// the next save writes schema 3.
	old := edit(func(m map[string]any) {
		m["schema"] = 2
		for _, n := range []string{"tmk_kcv", "pik_kcv", "mak_kcv", "tdk_kcv"} {
			delete(m, n)
		}
	})
	if err := os.WriteFile(s.Path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err = s.LoadKeys()
	if err != nil || !bytes.Equal(got.Working.MAK, k.Working.MAK) {
		t.Fatalf("schema 2: %v, %v", got, err)
	}
	if err := s.SaveKeys(got); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(s.Path); !bytes.Contains(raw, []byte(`"schema": 3`)) || !bytes.Contains(raw, []byte(`"mak_kcv"`)) {
		t.Errorf("resaved as:\n%s", raw)
	}
}

// TestMemKeyStoreWipesReplacedKeys: the copy a save replaces is zeroed.
func TestMemKeyStoreWipesReplacedKeys(t *testing.T) {
	m := &MemKeyStore{}
	if err := m.SaveKeys(Keys{TMK: mustHex(t, "0123456789ABCDEFFEDCBA9876543210"), Working: WorkingKeys{MAK: mustHex(t, "2222222222222222")}}); err != nil {
		t.Fatal(err)
	}
	old := *m.keys
	if err := m.SaveKeys(Keys{TMK: mustHex(t, "1111111111111111AAAAAAAAAAAAAAAA")}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(old.TMK, make([]byte, 16)) || !bytes.Equal(old.Working.MAK, make([]byte, 8)) {
		t.Errorf("replaced keys not wiped: %x %x", []byte(old.TMK), []byte(old.Working.MAK))
	}
	k := Keys{TMK: mustHex(t, "0123456789ABCDEF"), Working: WorkingKeys{PIK: mustHex(t, "1111111111111111")}}
	k.Wipe()
	if !bytes.Equal(k.TMK, make([]byte, 8)) || !bytes.Equal(k.Working.PIK, make([]byte, 8)) {
		t.Errorf("Keys.Wipe left %x %x", []byte(k.TMK), []byte(k.Working.PIK))
	}
}
