package hostsim_test

import (
	"context"
	"encoding/hex"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/moov-io/iso8583"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/cardsim"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// The profile card of testdata/cards/debit.yaml (and its siblings).
const profilePAN = "6222021234567890128"

// recorder is a Dial seam that keeps every frame the terminal wrote, so a
// test can read what went on the wire without a hook in the simulator.
type recorder struct {
	mu     sync.Mutex
	frames [][]byte
}

type recConn struct {
	net.Conn
	r *recorder
}

func (c recConn) Write(b []byte) (int, error) {
	c.r.mu.Lock()
	c.r.frames = append(c.r.frames, append([]byte(nil), b...))
	c.r.mu.Unlock()
	return c.Conn.Write(b)
}

func (r *recorder) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return recConn{c, r}, nil
}

// requests unpacks what was sent, in order, with its MTI.
func (r *recorder) requests(t *testing.T) []*iso8583.Message {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*iso8583.Message
	for _, b := range r.frames {
		f, err := acquirer.DecodeFrame(b)
		if err != nil {
			t.Fatal(err)
		}
		m, err := acquirer.Unpack(f.Message)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// raw sends a hand-built financial message MACed with the terminal's stored
// MAK and returns the host's answer: for requests the client refuses to
// build, so that the simulator's own checks are exercised.
func (e *env) raw(m *iso8583.Message) *iso8583.Message {
	e.t.Helper()
	keys, err := e.ks.LoadKeys()
	if err != nil {
		e.t.Fatal(err)
	}
	body, err := acquirer.PackMAC(m, acquirer.MACUnionPayECB, acquirer.MACKey(keys.Working.MAK, false))
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	if err := acquirer.WriteFrame(c, acquirer.Frame{TPDU: acquirer.DefaultTPDU, Header: acquirer.DefaultHeader, Message: body}); err != nil {
		e.t.Fatal(err)
	}
	f, err := acquirer.ReadFrame(c, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := acquirer.Unpack(f.Message)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

// rawSale is a sale as the client builds it, to be altered by the test.
func (e *env) rawSale(stan int, p string) *iso8583.Message {
	m := acquirer.NewMessage("0200")
	for id, v := range map[int]string{2: p, 3: "000000", 4: "000000000100", 11: "000000"[:6-len(itoa(stan))] + itoa(stan),
		25: "00", 41: tid, 42: mid, 49: "156", 60: "22" + e.batch + "00050"} {
		if err := acquirer.Set(m, id, v); err != nil {
			e.t.Fatal(err)
		}
	}
	return m
}

// set and setBytes put test data into a raw message: a value the spec
// refuses is a broken test, which must not pass on a message that lacks the
// field (the host would decline it for that instead).
func (e *env) set(m *iso8583.Message, id int, v string) {
	e.t.Helper()
	if err := acquirer.Set(m, id, v); err != nil {
		e.t.Fatalf("test data: field %d: %v", id, err)
	}
}

func (e *env) setBytes(m *iso8583.Message, id int, v []byte) {
	e.t.Helper()
	if err := acquirer.SetBytes(m, id, v); err != nil {
		e.t.Fatalf("test data: field %d: %v", id, err)
	}
}

func itoa(n int) string {
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}

func lastEntry(t *testing.T, e *env) ledger.Entry {
	t.Helper()
	es := e.ledger.Entries()
	if len(es) == 0 {
		t.Fatal("empty ledger")
	}
	return es[len(es)-1]
}

func swiped(entry provisioning.Entry) provisioning.Card {
	return provisioning.Card{PAN: pan.MustParse(profilePAN), Entry: entry, Expiry: "3012",
		Track2: pan.NewTrack(profilePAN + "=30122011234567890"), Track3: pan.NewTrack("996222021234567890128=1561560000000000000003000000214000030122")}
}

// TestSwipeSale: a swiped (and a fallback) sale is decrypted, checked and
// booked as such, in both key modes (single DES has no TDK: clear tracks).
func TestSwipeSale(t *testing.T) {
	for _, mode := range []acquirer.KeyMode{acquirer.DoubleDES, acquirer.SingleDES} {
		for _, entry := range []provisioning.Entry{provisioning.EntrySwipe, provisioning.EntryFallback} {
			t.Run(string(mode)+"/"+string(entry), func(t *testing.T) {
				e := newEnv(t, nil, func(c *acquirer.Config) {
					c.KeyMode = mode
					// The host books a fallback sale; only a profile that
					// reopens domestic fallback lets the client send one.
					c.Profile = acquirer.DefaultProfile()
					c.Profile.DomesticFallback = entry == provisioning.EntryFallback
				})
				e.signOn()
				c := swiped(entry)
				resp, err := e.c.Sale(context.Background(), provisioning.SaleRequest{Terminal: terminal, STAN: e.nextSTAN(), Batch: e.batch, Amount: 100, Card: c})
				if err != nil || resp.RC != "00" {
					t.Fatalf("%+v %v", resp, err)
				}
				en := lastEntry(t, e)
				if en.Event != ledger.EventApproved || en.Entry != string(entry) || en.Card != "622202*********0128" {
					t.Fatalf("ledger %+v", en)
				}
				// The PAN comes from the track when the reader gave none.
				c.PAN = pan.PAN{}
				resp, err = e.c.Sale(context.Background(), provisioning.SaleRequest{Terminal: terminal, STAN: e.nextSTAN(), Batch: e.batch, Amount: 100, Card: c})
				if err != nil || resp.RC != "00" || lastEntry(t, e).Card != "622202*********0128" {
					t.Fatalf("%+v %v %+v", resp, err, lastEntry(t, e))
				}
			})
		}
	}
}

// TestSwipeTrackMismatch: a track whose PAN is not field 2, or that does not
// decrypt under the session TDK, is declined and booked as declined.
func TestSwipeTrackMismatch(t *testing.T) {
	// Fixed session keys: under a random TDK one wrong-key decryption in a
	// few hundred happens to look like track data, and this test must not
	// depend on luck.
	e := newEnv(t, func(c *hostsim.Config) { c.Rand = rand.NewChaCha8([32]byte{1}) }, nil)
	e.signOn()
	keys, _ := e.ks.LoadKeys()
	other, err := acquirer.EncryptTrack(keys.Working.TDK, "6250941234567898=30122011234567890")
	if err != nil {
		t.Fatal(err)
	}
	m := e.rawSale(e.nextSTAN(), profilePAN)
	e.set(m, 22, "022")
	e.set(m, 35, other)
	e.set(m, 53, acquirer.SecurityControl(acquirer.DoubleDES, true))
	if rc := acquirer.Get(e.raw(m), 39); rc != "14" {
		t.Fatalf("track of another card: %s", rc)
	}
	if en := lastEntry(t, e); en.Event != ledger.EventDeclined || en.RC != "14" || en.Entry != "swipe" {
		t.Fatalf("ledger %+v", en)
	}
	// Encrypted under another key: the track does not come out as a track.
	wrongKey, _ := acquirer.EncryptTrack(acquirer.Key(make([]byte, 16)), profilePAN+"=30122011234567890")
	m = e.rawSale(e.nextSTAN(), profilePAN)
	e.set(m, 22, "022")
	e.set(m, 35, wrongKey)
	e.set(m, 53, acquirer.SecurityControl(acquirer.DoubleDES, true))
	if rc := acquirer.Get(e.raw(m), 39); rc != "30" {
		t.Fatalf("a track under the wrong TDK: %s", rc)
	}
	for _, en := range e.ledger.Entries() {
		if en.Event != ledger.EventDeclined {
			t.Fatalf("ledger %+v", en)
		}
	}
}

// clearPINBlock is ISO 9564 format 0, computed here apart from the acquirer.
func clearPINBlock(pin, p string) provisioning.PINBlock {
	pf, _ := hex.DecodeString("0" + string(rune('0'+len(pin))) + pin + strings.Repeat("F", 14-len(pin)))
	af, _ := hex.DecodeString("0000" + p[len(p)-13:len(p)-1])
	for i := range pf {
		pf[i] ^= af[i]
	}
	return pf
}

// TestPINVerified: the host decrypts field 52 under the session PIK and
// checks it as format 0 against the PAN: the right PIN is approved, a wrong
// one declined 55, a block for another account 99; all on the ledger.
func TestPINVerified(t *testing.T) {
	e := newEnv(t, func(c *hostsim.Config) { c.PINs = map[string]string{profilePAN: "123456"} }, nil)
	e.signOn()
	card := swiped(provisioning.EntrySwipe)
	for _, tc := range []struct {
		pin, rc string
	}{{"123456", "00"}, {"654321", "55"}} {
		resp, err := e.c.Sale(context.Background(), provisioning.SaleRequest{Terminal: terminal, STAN: e.nextSTAN(), Batch: e.batch, Amount: 100,
			Card: card, PINBlock: clearPINBlock(tc.pin, profilePAN)})
		if err != nil || resp.RC != tc.rc {
			t.Fatalf("PIN %s: %+v %v", tc.pin, resp, err)
		}
		if en := lastEntry(t, e); (tc.rc == "00") != (en.Event == ledger.EventApproved) || en.Event == ledger.EventDeclined && en.RC != tc.rc {
			t.Fatalf("PIN %s: ledger %+v", tc.pin, en)
		}
	}
	// A block built for another account, encrypted under the right PIK: the
	// client would refuse to send it, so it goes raw.
	keys, _ := e.ks.LoadKeys()
	enc, err := acquirer.EncryptECB(keys.Working.PIK, clearPINBlock("123456", "6250941234567898"))
	if err != nil {
		t.Fatal(err)
	}
	m := e.rawSale(e.nextSTAN(), profilePAN)
	e.set(m, 22, "051")
	e.setBytes(m, 52, enc)
	if rc := acquirer.Get(e.raw(m), 39); rc != "99" {
		t.Fatalf("PIN block of another PAN: %s", rc)
	}
	if en := lastEntry(t, e); en.Event != ledger.EventDeclined || en.RC != "99" {
		t.Fatalf("ledger %+v", en)
	}
}

// field55 builds an online request's IC data for the profile card: the
// CDOL1 objects of cardsim.DefaultCDOL1, the ATC and the cryptogram the
// card's key gives over them, or a flipped one.
func field55(t *testing.T, mk []byte, good bool) string {
	t.Helper()
	objs := []struct {
		tag string
		v   string
	}{
		{"9F02", "000000000100"}, {"9F03", "000000000000"}, {"9F1A", "0156"}, {"95", "0000000000"},
		{"5F2A", "0156"}, {"9A", "261127"}, {"9C", "00"}, {"9F37", "12345678"}, {"82", "7C00"},
	}
	var data []byte
	var tlv string
	for _, o := range objs {
		v, _ := hex.DecodeString(o.v)
		data = append(data, v...)
		tlv += o.tag + hex.EncodeToString([]byte{byte(len(v))}) + o.v
	}
	const atc = 0x0011
	ac, err := cardsim.ARQC(mk, atc, data)
	if err != nil {
		t.Fatal(err)
	}
	if !good {
		ac[7] ^= 0x01
	}
	return tlv + "9F36020011" + "9F2608" + hex.EncodeToString(ac) + "9F270180"
}

// TestARQCChecked: with the cardsim profiles loaded, a chip sale's ARQC must
// verify under the card's key: a good one is approved, a bad one declined
// 05 (or the configured code), a card with no profile declined 14; each
// decline is on the ledger as such.
func TestARQCChecked(t *testing.T) {
	cards, err := hostsim.LoadCards(filepath.Join("..", "..", "..", "testdata", "cards"))
	if err != nil {
		t.Fatal(err)
	}
	mk, _ := hex.DecodeString(cardsim.DefaultKey)
	chip := func(p, ic string) provisioning.Card {
		return provisioning.Card{PAN: pan.MustParse(p), Seq: "01", Expiry: "3012", ICData: ic}
	}
	for _, tc := range []struct {
		name, declineRC, pan string
		good                 bool
		rc                   string
		amount               int64 // field 4; the cryptogram signs 100
	}{
		{"good", "", profilePAN, true, "00", 100},
		{"bad cryptogram", "", profilePAN, false, "05", 100},
		{"bad cryptogram, acquirer's code", "A7", profilePAN, false, "A7", 100},
		{"unknown card", "", "6222021234567890123", true, "14", 100},
		{"good cryptogram for another amount", "", profilePAN, true, "05", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *hostsim.Config) { c.Cards, c.ARQCDeclineRC = cards, tc.declineRC }, nil)
			e.signOn()
			resp, err := e.c.Sale(context.Background(), provisioning.SaleRequest{Terminal: terminal, STAN: e.nextSTAN(), Batch: e.batch, Amount: tc.amount,
				Card: chip(tc.pan, field55(t, mk, tc.good))})
			if err != nil || resp.RC != tc.rc {
				t.Fatalf("%+v %v", resp, err)
			}
			en := lastEntry(t, e)
			if tc.rc == "00" {
				if en.Event != ledger.EventApproved || en.Entry != "chip" {
					t.Fatalf("ledger %+v", en)
				}
				return
			}
			if en.Event != ledger.EventDeclined || en.RC != tc.rc || en.Card != pan.Mask(tc.pan) || en.RRN != "" {
				t.Fatalf("ledger %+v", en)
			}
			// A declined sale is nothing to reverse.
			resp, err = e.c.Reverse(context.Background(), provisioning.ReversalRequest{Terminal: terminal, Reason: "98",
				Orig: provisioning.InFlight{Kind: "sale", STAN: en.STAN, Batch: en.Batch, Amount: tc.amount}})
			if err != nil || resp.RC != "25" {
				t.Fatalf("reversal of a decline: %+v %v", resp, err)
			}
		})
	}
}

func TestLoadCards(t *testing.T) {
	cards, err := hostsim.LoadCards(filepath.Join("..", "..", "..", "testdata", "cards"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{profilePAN, "6250941234567898", "4111111111111111"} {
		if ck, ok := cards[p]; !ok || len(ck.MK) != 16 || len(ck.CDOL1s) == 0 {
			t.Errorf("%s: %+v", pan.Mask(p), ck)
		}
	}
	dir := t.TempDir()
	write := func(name, key string) {
		y := "name: " + name + "\npan: \"" + profilePAN + "\"\nexpiry: \"301231\"\nkey: " + key + "\napplications:\n  - aid: A000000333010101\n"
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a", cardsim.DefaultKey)
	write("b", "00112233445566778899AABBCCDDEEFF")
	_, err = hostsim.LoadCards(dir)
	if err == nil || strings.Contains(err.Error(), profilePAN) {
		t.Fatalf("two keys for one PAN: %v", err)
	}
	if _, err := hostsim.LoadCards(t.TempDir()); err == nil {
		t.Fatal("an empty directory loaded")
	}
}

// TestReversalPANChecked: field 2 of a 0400 must be the original's PAN.
func TestReversalPANChecked(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.signOn()
	s, err := e.sale(100)
	if err != nil {
		t.Fatal(err)
	}
	inf := provisioning.InFlight{Kind: "sale", STAN: s.STAN, Batch: s.Batch, Amount: s.Amount}
	reverse := func(p string) string {
		t.Helper()
		resp, err := e.c.Reverse(context.Background(), provisioning.ReversalRequest{Terminal: terminal, Orig: inf, Reason: "98", PAN: pan.MustParse(p)})
		if err != nil {
			t.Fatal(err)
		}
		return resp.RC
	}
	// Same first 6 and last 4 as the sale's card: only the full PAN tells.
	if rc := reverse("6222029999999990123"); rc != "14" {
		t.Fatalf("another PAN: %s", rc)
	}
	if rc := reverse(card.PAN.Reveal()); rc != "00" {
		t.Fatalf("the sale's PAN: %s", rc)
	}
	if v, r := checkLedger(t, e.path); v != 0 || r != 1 {
		t.Fatalf("voided %d reversed %d", v, r)
	}
}

// TestARQCFromTheCard: field 55 as the terminal really builds it (agent/card/emv
// reading a cardsim card: PSE, GPO, records, GENERATE AC) verifies at the
// host under the profile's key, for every shipped profile the terminal can
// read (t0-quirky's application list and CDOL1 included); the same data with
// one cryptogram bit flipped is declined.
func TestARQCFromTheCard(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "testdata", "cards")
	cards, err := hostsim.LoadCards(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *hostsim.Config) { c.Cards = cards }, nil)
	e.signOn()
	for _, name := range []string{"debit", "credit", "t0-quirky", "no-pse"} {
		t.Run(name, func(t *testing.T) {
			sim, err := cardsim.Open(filepath.Join(dir, name+".yaml"), nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := emv.Read(context.Background(), sim.AsCard("slot0"), emv.DefaultTerminal(), emv.Transaction{Amount: 100})
			if err != nil {
				t.Fatal(err)
			}
			c := res.Card()
			resp, err := e.c.Sale(context.Background(), provisioning.SaleRequest{Terminal: terminal, STAN: e.nextSTAN(), Batch: e.batch, Amount: 100, Card: c})
			if err != nil || resp.RC != "00" {
				t.Fatalf("the card's own ARQC: %+v %v", resp, err)
			}
			ic, _ := hex.DecodeString(c.ICData)
			objs, err := emv.DecodeTLV(ic)
			if err != nil {
				t.Fatal(err)
			}
			var tampered []byte
			for _, o := range objs {
				v := append([]byte(nil), o.Value...)
				if o.Tag == 0x9F26 {
					v[0] ^= 0x80
				}
				tampered = emv.EncodeTLV(tampered, o.Tag, v)
			}
			c.ICData = hex.EncodeToString(tampered)
			resp, err = e.c.Sale(context.Background(), provisioning.SaleRequest{Terminal: terminal, STAN: e.nextSTAN(), Batch: e.batch, Amount: 100, Card: c})
			if err != nil || resp.RC != "05" {
				t.Fatalf("a flipped cryptogram: %+v %v", resp, err)
			}
		})
	}
}
