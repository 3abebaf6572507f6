package emv_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/cardsim"
	"github.com/posagent/posagent/agent/testkit/golden"
	"github.com/posagent/posagent/drivers/cardreader"
	"github.com/posagent/posagent/drivers/cardreader/cardreadertest"
	"github.com/posagent/posagent/provisioning"
)

const cardsDir = "../../../testdata/cards"

// fixedTerminal makes every APDU byte-exact: a fixed clock and unpredictable number.
func fixedTerminal() emv.Terminal {
	t := emv.DefaultTerminal()
	t.Now = func() time.Time { return time.Date(2026, 11, 27, 8, 30, 0, 0, time.UTC) }
	t.Rand = bytes.NewReader(bytes.Repeat([]byte{0x11, 0x22, 0x33, 0x44}, 64))
	return t
}

func loadCard(t testing.TB, name string, edit func(*cardsim.Profile)) *cardsim.Card {
	t.Helper()
	c, err := cardsim.Open(filepath.Join(cardsDir, name+".yaml"), edit)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type want struct {
	pan, seq, exp, name, label, aid string
	typ                             provisioning.CardType
	apdus                           int
	err                             error
}

// profiles is the expected read of every shipped profile. apdus is the
// minimum for the card: PSE select + directory records + 6A83, one final
// SELECT, GPO, one READ RECORD per AFL record, GENERATE AC (plus GET
// RESPONSE / 6CXX re-sends for the T=0 card; for no-PSE one SELECT per
// terminal AID and no repeated final SELECT).
var profiles = map[string]want{
	"debit":         {"622202*********0128", "01", "3012", "ZHANG/SAN", "PBOC DEBIT", emv.AIDDebit, provisioning.Debit, 9, nil},
	"credit":        {"625094******7898", "00", "3012", "ZHANG/SAN", "PBOC CREDIT", emv.AIDCredit, provisioning.Credit, 9, nil},
	"expired":       {"622202*********0128", "01", "2312", "ZHANG/SAN", "PBOC DEBIT", emv.AIDDebit, provisioning.Debit, 9, nil},
	"foreign":       {"411111******1111", "00", "3012", "ZHANG/SAN", "VISA CREDIT", "A0000000031010", "", 9, nil},
	"name-mismatch": {"622202*********0128", "01", "3012", "李四", "PBOC DEBIT", emv.AIDDebit, provisioning.Debit, 9, nil},
	"no-pse":        {"622202*********0128", "01", "3012", "ZHANG/SAN", "PBOC DEBIT", emv.AIDDebit, provisioning.Debit, 15, nil},
	"t0-quirky":     {"622202*********0128", "01", "3012", "ZHANG/SAN", "PBOC DEBIT", emv.AIDDebit, provisioning.Debit, 32, nil},
	"broken":        {err: emv.ErrCardData},
}

func TestProfilesCovered(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(cardsDir, "*.yaml"))
	if len(files) != len(profiles) {
		t.Fatalf("%d profiles on disk, %d expected", len(files), len(profiles))
	}
}

func TestReadProfiles(t *testing.T) {
	for name, w := range profiles {
		t.Run(name, func(t *testing.T) {
			sim := loadCard(t, name, nil)
			var trace strings.Builder
			card := &tracer{Card: sim.AsCard("sim"), w: &trace}
			res, err := emv.Read(context.Background(), card, fixedTerminal(), emv.Transaction{Amount: 1})
			if w.err != nil {
				if !errors.Is(err, w.err) {
					t.Fatalf("err %v, want %v", err, w.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := want{res.PAN.Masked(), res.Seq, res.Expiry, res.Name, res.Label, res.AID, res.Type, res.Transmissions, nil}
			if got != w {
				t.Errorf("got  %+v\nwant %+v", got, w)
			}
			if res.Track2.IsZero() || strings.Contains(fmt.Sprintf("%v %+v", res, res), "6222021234567890128") {
				t.Errorf("track 2 missing or full PAN printed")
			}
			checkARQC(t, res)
			golden.Check(t, filepath.Join("testdata", "trace", name+".txt"), trace.String())
		})
	}
}

// checkARQC verifies the cryptogram from field 55 the way the host does.
func checkARQC(t *testing.T, res emv.Result) {
	t.Helper()
	key, _ := hex.DecodeString(cardsim.DefaultKey)
	if err := cardsim.VerifyField55(key, "", res.ICData); err != nil {
		t.Error(err)
	}
	if !strings.Contains(res.ICData, "9F270180") {
		t.Errorf("CID is not ARQC")
	}
	i := strings.Index(res.ICData, "9F2608") + 6 // first byte of the cryptogram
	flipped := "00"
	if res.ICData[i:i+2] == "00" {
		flipped = "01"
	}
	bad := res.ICData[:i] + flipped + res.ICData[i+2:]
	if err := cardsim.VerifyField55(key, "", bad); !errors.Is(err, cardsim.ErrARQC) {
		t.Errorf("a corrupted cryptogram: %v, want ErrARQC", err)
	}
}

// tracer writes the exchange as "> cmd\n< resp\n" lines for golden files.
type tracer struct {
	cardreader.Card
	w *strings.Builder
}

func (t *tracer) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	r, err := t.Card.Transmit(ctx, cmd)
	fmt.Fprintf(t.w, "> %X\n< %X\n", cmd, r)
	return r, err
}

// TestPlaybackGolden replays the debit trace through the strict scripted
// card: the flow must send exactly these commands, no more, no fewer.
func TestPlaybackGolden(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "trace", "debit.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var script []cardreadertest.Exchange
	for i := 0; i+1 < len(lines); i += 2 {
		script = append(script, cardreadertest.Ex(lines[i][2:], lines[i+1][2:]))
	}
	card := cardreadertest.NewPlayback(t, script...)
	res, err := emv.Read(context.Background(), card, fixedTerminal(), emv.Transaction{Amount: 1})
	if err != nil || res.PAN.Masked() != "622202*********0128" {
		t.Fatalf("%v %v", res.PAN, err)
	}
}

func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault cardsim.Fault
		err   error
	}{
		{"pulled mid-read", cardsim.Fault{At: "read_record", N: 2, Kind: "remove"}, cardreader.ErrCardRemoved},
		{"mute at GPO", cardsim.Fault{At: "gpo", Kind: "mute"}, cardreader.ErrCardMute},
		{"GPO 6985", cardsim.Fault{At: "gpo", Kind: "status", SW: "6985"}, emv.ErrNoApplication},
		{"PSE blocked", cardsim.Fault{At: "select_pse", Kind: "status", SW: "6A81"}, emv.ErrCardBlocked},
		{"record 6F00", cardsim.Fault{At: "read_record", Kind: "status", SW: "6F00"}, emv.ErrCardStatus},
		{"GEN AC truncated", cardsim.Fault{At: "generate_ac", Kind: "truncate"}, emv.ErrCardData},
		{"PSE record truncated falls back", cardsim.Fault{At: "read_pse", Kind: "truncate"}, nil},
		{"app select 6A82", cardsim.Fault{At: "select_aid", Kind: "status", SW: "6A82"}, emv.ErrNoApplication},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := loadCard(t, "debit", func(p *cardsim.Profile) { p.Faults = []cardsim.Fault{tc.fault} })
			_, err := emv.Read(context.Background(), sim.AsCard("sim"), fixedTerminal(), emv.Transaction{})
			if tc.err == nil && err != nil || tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "6222021234567890128") {
				t.Fatal("PAN in error")
			}
		})
	}
	var sw cardreader.SW
	sim := loadCard(t, "debit", func(p *cardsim.Profile) {
		p.Faults = []cardsim.Fault{{At: "read_record", Kind: "status", SW: "6F00"}}
	})
	_, err := emv.Read(context.Background(), sim.AsCard("sim"), fixedTerminal(), emv.Transaction{})
	if !errors.As(err, &sw) || sw != 0x6F00 {
		t.Fatalf("SW not wrapped: %v", err)
	}
}

func TestContactlessPPSE(t *testing.T) {
	sim := loadCard(t, "t0-quirky", func(p *cardsim.Profile) { p.PPSE = true; p.PSE = false })
	term := fixedTerminal()
	term.Contactless = true
	res, err := emv.ReadData(context.Background(), sim.AsCard("sim"), term, emv.Transaction{Amount: 100})
	if err != nil || res.AID != emv.AIDDebit {
		t.Fatalf("%+v %v", res, err)
	}
	// A card that selects by PPSE but answers its GPO as a contact card
	// does (no cryptogram) cannot pay on this qPBOC-only kernel.
	sim = loadCard(t, "t0-quirky", func(p *cardsim.Profile) { p.PPSE = true; p.PSE = false })
	if _, err := emv.Read(context.Background(), sim.AsCard("sim"), term, emv.Transaction{Amount: 100}); !errors.Is(err, emv.ErrCardData) {
		t.Fatalf("PPSE card without a GPO cryptogram: %v", err)
	}
	sim = loadCard(t, "debit", nil) // no PPSE: contactless cannot go on
	if _, err := emv.Read(context.Background(), sim.AsCard("sim"), term, emv.Transaction{}); !errors.Is(err, emv.ErrNoApplication) {
		t.Fatalf("no PPSE: %v", err)
	}
}

func TestNoMutualApplication(t *testing.T) {
	sim := loadCard(t, "foreign", nil)
	term := fixedTerminal()
	term.AIDs = []string{emv.AIDDebit, emv.AIDCredit}
	_, err := emv.Read(context.Background(), sim.AsCard("sim"), term, emv.Transaction{})
	if !errors.Is(err, emv.ErrNoApplication) {
		t.Fatalf("%v", err)
	}
}

func TestSecondApplicationAfter6985(t *testing.T) {
	// Debit refuses GPO: EMV drops it and selects the next candidate.
	sim := loadCard(t, "t0-quirky", func(p *cardsim.Profile) {
		p.Faults = []cardsim.Fault{{At: "gpo", Kind: "status", SW: "6985"}}
	})
	res, err := emv.Read(context.Background(), sim.AsCard("sim"), fixedTerminal(), emv.Transaction{})
	if err != nil || res.AID != emv.AIDECash || res.Type != "" {
		t.Fatalf("%+v %v", res, err)
	}
}

func BenchmarkReadProfiles(b *testing.B) {
	for name, w := range profiles {
		if w.err != nil {
			continue
		}
		b.Run(name, func(b *testing.B) {
			sim := loadCard(b, name, nil)
			var n int
			for b.Loop() {
				sim.Reset()
				res, err := emv.Read(context.Background(), sim.AsCard("sim"), fixedTerminal(), emv.Transaction{})
				if err != nil {
					b.Fatal(err)
				}
				n = res.Transmissions
			}
			b.ReportMetric(float64(n), "apdus/read")
		})
	}
}

// The acquirer's downloaded IC parameters are the application list: their
// AIDs first in the host's order, then the international schemes (so a
// foreign card is still named); DF01 decides exact or partial selection,
// on the PSE and on the list-of-AIDs path alike.
func TestReadWithDownloadedApps(t *testing.T) {
	partial := func(h string) provisioning.AppParams {
		b, _ := hex.DecodeString(h)
		return provisioning.AppParams{AID: b, PartialMatch: true, Version: []byte{0x00, 0x20}}
	}
	exact := func(h string) provisioning.AppParams { a := partial(h); a.PartialMatch = false; return a }
	term := fixedTerminal().WithApps([]provisioning.AppParams{partial("A000000333010102"), exact("A0000003330101")})
	if got := strings.Join(term.AIDs, " "); got != "A000000333010102 A0000003330101 A0000000031010 A0000000041010 A0000000651010" {
		t.Fatalf("application list %s", got)
	}
	if !bytes.Equal(term.AppVersion, []byte{0x00, 0x20}) {
		t.Errorf("9F09 %X, want the downloaded version", term.AppVersion)
	}
	if same := fixedTerminal().WithApps(nil); strings.Join(same.AIDs, " ") != strings.Join(emv.DefaultAIDs, " ") {
		t.Errorf("no downloads changed the list: %v", same.AIDs)
	}
	for _, tc := range []struct {
		card string
		apps []provisioning.AppParams
		err  error
	}{
		{"debit", []provisioning.AppParams{partial("A0000003330101")}, nil},
		{"debit", []provisioning.AppParams{exact("A000000333010101")}, nil},
		{"debit", []provisioning.AppParams{exact("A0000003330101")}, emv.ErrNoApplication},
		{"no-pse", []provisioning.AppParams{partial("A0000003330101")}, nil},
		{"no-pse", []provisioning.AppParams{exact("A0000003330101")}, emv.ErrNoApplication},
		{"foreign", []provisioning.AppParams{partial("A0000003330101")}, nil}, // read, to be refused by name
	} {
		sim := loadCard(t, tc.card, nil)
		res, err := emv.Read(context.Background(), sim.AsCard("sim"), fixedTerminal().WithApps(tc.apps), emv.Transaction{Amount: 1})
		if !errors.Is(err, tc.err) || err == nil && res.AID == "" {
			t.Errorf("%s with %X (partial %v): %v, AID %q", tc.card, tc.apps[0].AID, tc.apps[0].PartialMatch, err, res.AID)
		}
	}
}
