package ledger_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/sim/ledger"
)

var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

func sale(stan int) ledger.Entry {
	return ledger.Entry{Time: t0, Event: ledger.EventApproved, Kind: ledger.KindSale, TID: "10000001",
		Batch: "000001", STAN: stan, Amount: 1, Card: "622202*********0128"}
}

func open(t *testing.T, path string) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func stans(es []ledger.Entry) []int {
	var out []int
	for _, e := range es {
		out = append(out, e.STAN)
	}
	return out
}

func same(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	if _, err := ledger.Read(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read of no file = %v, want not exist", err)
	}
	l := open(t, path)
	for stan := 1; stan <= 2; stan++ {
		if e, err := l.Append(sale(stan)); err != nil || e.Seq != stan {
			t.Fatalf("Append = %+v, %v", e, err)
		}
	}
	l.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ledger file: %v %v", fi, err)
	}
	// Reopened, it goes on numbering where it was.
	l = open(t, path)
	if e, err := l.Append(sale(3)); err != nil || e.Seq != 3 {
		t.Fatalf("Append after reopening = %+v, %v", e, err)
	}
	got, err := ledger.Read(path)
	if err != nil || !same(stans(got), []int{1, 2, 3}) || !same(stans(l.Entries()), []int{1, 2, 3}) {
		t.Fatalf("Read = %+v, %v; Entries %+v", got, err, l.Entries())
	}
	if want := sale(2); got[1].Seq != 2 || got[1].Card != want.Card || !got[1].Time.Equal(t0) || got[1].Event != want.Event {
		t.Errorf("entry 2 read back as %+v", got[1])
	}
}

// A host killed mid-write leaves a torn last line: it was never answered.
// Reading ignores it; opening cuts it off, so the next entry has a line of
// its own and the ledger reads whole afterwards.
func TestTornTail(t *testing.T) {
	for _, torn := range []string{
		`{"seq":3,"event":"approved","ki`,
		`{"seq":3,"time":"2026-11-27T08:00:00Z","event":"approved","kind":"sale","stan":3}`, // all but its '\n'
		"\x00\x00\x00",
	} {
		path := filepath.Join(t.TempDir(), "ledger.jsonl")
		l := open(t, path)
		l.Append(sale(1))
		l.Append(sale(2))
		l.Close()
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(torn)
		f.Close()

		got, err := ledger.Read(path)
		if err != nil || !same(stans(got), []int{1, 2}) {
			t.Fatalf("torn %q: Read = %+v, %v", torn, got, err)
		}
		l = open(t, path)
		if !same(stans(l.Entries()), []int{1, 2}) {
			t.Fatalf("torn %q: Open holds %+v", torn, l.Entries())
		}
		if e, err := l.Append(sale(4)); err != nil || e.Seq != 3 {
			t.Fatalf("torn %q: Append = %+v, %v", torn, e, err)
		}
		if got, err := ledger.Read(path); err != nil || !same(stans(got), []int{1, 2, 4}) {
			t.Fatalf("torn %q: after the next entry Read = %+v, %v", torn, got, err)
		}
	}
}

// Any line but the torn tail that does not parse is an error: a crash
// cannot cause it, and a ledger is not guessed at.
func TestCorrupt(t *testing.T) {
	good := `{"seq":1,"event":"approved","kind":"sale","stan":1}` + "\n"
	for name, content := range map[string]string{
		"middle":        good + "{garbage\n" + good,
		"last complete": good + "{garbage\n",
		"empty line":    good + "\n" + good,
		"both":          good + "{garbage\n" + `{"se`,
	} {
		path := filepath.Join(t.TempDir(), "ledger.jsonl")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ledger.Read(path); !errors.Is(err, ledger.ErrCorrupt) || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%s: Read = %v, want corrupt line 2", name, err)
		}
		if l, err := ledger.Open(path); !errors.Is(err, ledger.ErrCorrupt) {
			t.Errorf("%s: Open = %v, want corrupt", name, err)
			if l != nil {
				l.Close()
			}
		}
		if b, _ := os.ReadFile(path); string(b) != content {
			t.Errorf("%s: a failed Open changed the file", name)
		}
	}
}

func TestEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := ledger.Read(path); err != nil || len(got) != 0 {
		t.Fatalf("Read = %+v, %v", got, err)
	}
	if l := open(t, path); len(l.Entries()) != 0 {
		t.Fatalf("Entries = %+v", l.Entries())
	}
}

// TestInstallProcedureLines: a settlement line round-trips with its totals,
// and a line written before these fields existed reads as it always did.
func TestInstallProcedureLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	old := `{"seq":1,"time":"2026-11-27T08:00:00Z","event":"approved","kind":"sale","tid":"10000001","mid":"898310048160001","batch":"000001","stan":2,"amount":1,"card":"622202*********0128"}` + "\n"
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	l := open(t, path)
	st := &ledger.Settlement{Balanced: true, Domestic: "1", Foreign: "1", Sales: 1, Voids: 1, Netting: "gross",
		Host: ledger.Totals{DebitCount: 1, DebitAmount: 1, CreditCount: 1, CreditAmount: 1}}
	if _, err := l.Append(ledger.Entry{Time: t0, Event: ledger.EventSettled, Kind: ledger.KindSettlement, TID: "10000001",
		Batch: "000001", Code: "201", Codes: "unionpay", Settlement: st}); err != nil {
		t.Fatal(err)
	}
	got, err := ledger.Read(path)
	if err != nil || len(got) != 2 {
		t.Fatalf("%+v %v", got, err)
	}
	if got[0].Settlement != nil || got[0].Code != "" || got[0].Kind != ledger.KindSale {
		t.Errorf("the old line read as %+v", got[0])
	}
	if s := got[1].Settlement; s == nil || *s != *st || got[1].Code != "201" || got[1].Codes != "unionpay" {
		t.Errorf("settlement read back as %+v", got[1])
	}
	b, _ := os.ReadFile(path)
	if line := strings.Split(string(b), "\n")[1]; strings.Contains(line, "next_batch") || strings.Contains(line, `"count"`) ||
		strings.Contains(line, "uploaded") {
		t.Errorf("empty fields written: %s", line)
	}
}

// ledger.Money keeps the sales, voids and reversals, in order, and drops the
// procedure's lines between them.
func TestMoney(t *testing.T) {
	es := []ledger.Entry{{Seq: 1, Event: ledger.EventDownloaded, Kind: ledger.KindCAPK}, {Seq: 2, Event: ledger.EventApproved, Kind: ledger.KindSale},
		{Seq: 3, Event: ledger.EventVoided, Kind: ledger.KindVoid}, {Seq: 4, Event: ledger.EventSettled, Kind: ledger.KindSettlement},
		{Seq: 5, Event: ledger.EventDeclined, Kind: ledger.KindReversal}, {Seq: 6, Event: ledger.EventSignedOff, Kind: ledger.KindSignOff}}
	var got []int
	for _, e := range ledger.Money(es) {
		got = append(got, e.Seq)
	}
	if fmt.Sprint(got) != "[2 3 5]" {
		t.Fatalf("ledger.Money kept %v", got)
	}
}
