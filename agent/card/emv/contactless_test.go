package emv_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/cardsim"
	"github.com/posagent/posagent/drivers/cardreader"
	"github.com/posagent/posagent/drivers/cardreader/cardreadertest"
	"github.com/posagent/posagent/provisioning"
)

// The qPBOC tests run testdata/cards/oda/qpboc.yaml in process: cardsim
// decides in GET PROCESSING OPTIONS from the TTQ it is sent and refuses
// GENERATE AC (agent/sim/cardsim/oda.go, qpbocGPO).

// recorder keeps the commands the kernel sent and can rewrite answers.
type recorder struct {
	cardreader.Card
	mu   sync.Mutex
	cmds [][]byte
	edit func(cmd, resp []byte) []byte // nil: answers as the card gave them
}

func (r *recorder) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	r.mu.Lock()
	r.cmds = append(r.cmds, append([]byte(nil), cmd...))
	r.mu.Unlock()
	resp, err := r.Card.Transmit(ctx, cmd)
	if err == nil && r.edit != nil {
		resp = r.edit(cmd, resp)
	}
	return resp, err
}

// gpoData is the PDOL data of the GET PROCESSING OPTIONS the kernel sent.
func (r *recorder) gpoData(t *testing.T) []byte {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.cmds {
		if len(c) > 7 && c[0] == 0x80 && c[1] == 0xA8 && c[5] == 0x83 {
			return c[7 : 7+int(c[6])]
		}
	}
	t.Fatal("no GET PROCESSING OPTIONS sent")
	return nil
}

// twoReaders is an agent's pair: a contact reader and a contactless one,
// with card in the reader named in.
func twoReaders(in string, card cardreader.Card) *cardreadertest.Reader {
	r := cardreadertest.NewReader("contact", "contactless")
	r.Insert(in, card)
	return r
}

func contactlessSource(r cardreader.Reader, term emv.Terminal, pad provisioning.PINPad) *emv.Source {
	return &emv.Source{Reader: r, ContactlessReader: "contactless", Terminal: term, PINPad: pad}
}

func TestQPBOCSale(t *testing.T) {
	sim := loadCard(t, "oda/qpboc", nil)
	rec := &recorder{Card: sim.AsCard("contactless")}
	src := contactlessSource(twoReaders("contactless", rec), fixedTerminal(), nil)
	pp, err := src.Pay(context.Background(), provisioning.CardRequest{Purpose: "sale", Amount: saleAmount})
	if err != nil {
		t.Fatal(err)
	}
	p := pp.(*emv.Payment)
	defer p.Close()

	// The PDOL (cardsim's default) starts with 9F66 04: the TTQ sent is
	// what Capabilities says — qPBOC, online cryptogram required.
	if got, want := rec.gpoData(t)[:4], emv.Capabilities.TTQ(); !bytes.Equal(got, want) {
		t.Errorf("TTQ in the GPO data %X, want %X", got, want)
	}
	if n, m := sim.Steps("generate_ac"), sim.Steps("generate_ac2"); n != 0 || m != 0 {
		t.Errorf("%d first and %d second GENERATE AC sent to a qPBOC card, want none", n, m)
	}
	c := p.Card()
	ic := tlvMap(t, c.ICData)
	if ic[0x9F27][0] != 0x80 || len(ic[0x9F26]) != 8 || c.IC.ARQC != emv.Hex(ic[0x9F26]) {
		t.Fatalf("field 55 CID %X AC %X, record ARQC %s: want the GPO's ARQC", ic[0x9F27], ic[0x9F26], c.IC.ARQC)
	}
	// The issuer's check is cardsim's own: the cryptogram over the PDOL
	// values as CDOL1 data, so field 55 must carry them as sent.
	if err := cardsim.VerifyField55(mustHex(sim.Profile().Key), sim.Profile().Applications[0].CDOL1, c.ICData); err != nil {
		t.Errorf("field 55 ARQC: %v", err)
	}
	if c.ICReversal == "" || c.Track2.IsZero() || c.PAN.Masked() == "" {
		t.Errorf("card lacks reversal data, track 2 or PAN: %+v", c)
	}
	if !bytes.Equal(ic[0x9F34], []byte{0x1F, 0x00, 0x02}) {
		t.Errorf("9F34 %X: the card's CTQ asked for no CVM", ic[0x9F34])
	}

	before := sim.Commands()
	v, err := p.Complete(context.Background(), provisioning.HostVerdict{Online: true, Approved: true, RC: "00",
		IssuerData: emv.EncodeTLV(nil, 0x91, make([]byte, 10))})
	if err != nil {
		t.Fatal(err)
	}
	if sim.Commands() != before {
		t.Errorf("Complete sent %d commands to a card that has left the field", sim.Commands()-before)
	}
	if !v.Approved || v.IC.CID != "80" || v.IC.Cryptogram != c.IC.ARQC || v.IC.TC != "" || v.IC.Reversal == "" {
		t.Errorf("verdict %+v %+v: want approved with the GPO's ARQC as cryptogram, no TC", v, v.IC)
	}
}

func TestQPBOCHostDeclines(t *testing.T) {
	p := tapToPay(t)
	for _, verdict := range []provisioning.HostVerdict{{Online: true, Approved: false, RC: "51"}} {
		v, err := p.Complete(context.Background(), verdict)
		if err != nil || v.Approved {
			t.Errorf("%+v: approved=%v err %v", verdict, v.Approved, err)
		}
	}
	if _, err := p.Complete(context.Background(), provisioning.HostVerdict{Online: true, Approved: true}); !errors.Is(err, emv.ErrCompleted) {
		t.Errorf("second Complete: %v", err)
	}
}

// TestQPBOCUnableOnline: no host answer is no approval, whatever the
// card said.
func TestQPBOCUnableOnline(t *testing.T) {
	p := tapToPay(t)
	v, err := p.Complete(context.Background(), provisioning.HostVerdict{Approved: true})
	if err != nil || v.Approved {
		t.Errorf("offline verdict: approved=%v err %v", v.Approved, err)
	}
}

// TestQPBOCCardDecisions: what the card answers for other TTQs. An
// offline-only reader the card will not approve gets an AAC (declined);
// a reader not requiring an online cryptogram gets the offline card's TC,
// which this online-only terminal does not accept.
func TestQPBOCCardDecisions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ttq     []byte
		offline bool
		want    error
	}{
		{"offline-only reader", []byte{0x28, 0x00, 0x00, 0x00}, false, emv.ErrDeclined},
		// The card's TC, its fDDA verified: still no payment, which goes online.
		{"no online cryptogram required", []byte{0x36, 0x00, 0x00, 0x80}, true, emv.ErrCardData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := loadCard(t, "oda/qpboc", func(p *cardsim.Profile) { p.ODA.Offline = tc.offline })
			term := fixedTerminal()
			term.TTQ = tc.ttq
			term.CAPKs = testCAPKs(t)
			src := contactlessSource(twoReaders("contactless", sim.AsCard("contactless")), term, nil)
			_, err := src.Pay(context.Background(), provisioning.CardRequest{Purpose: "sale", Amount: saleAmount})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if sim.Steps("generate_ac") != 0 {
				t.Error("GENERATE AC sent")
			}
		})
	}
}

// TestQPBOCOnlinePIN: a card whose CTQ asks for online PIN (the answer's
// 9F6C rewritten on the way; the ARQC does not cover it) gets it from the
// pad, and 9F34 says online PIN.
func TestQPBOCOnlinePIN(t *testing.T) {
	sim := loadCard(t, "oda/qpboc", nil)
	rec := &recorder{Card: sim.AsCard("contactless"), edit: func(cmd, resp []byte) []byte {
		if cmd[0] == 0x80 && cmd[1] == 0xA8 {
			if i := bytes.Index(resp, []byte{0x9F, 0x6C, 0x02}); i >= 0 {
				resp = append([]byte(nil), resp...)
				resp[i+3] = 0x80
			}
		}
		return resp
	}}
	pad := &fakePad{block: testBlock}
	src := contactlessSource(twoReaders("contactless", rec), fixedTerminal(), pad)
	p, err := src.Pay(context.Background(), provisioning.CardRequest{Purpose: "sale", Amount: saleAmount})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if len(pad.asked) != 1 || !bytes.Equal(p.PINBlock(), testBlock) {
		t.Fatalf("PIN pad asked %d times, block %v", len(pad.asked), p.PINBlock())
	}
	if cvm := p.Card().IC.CVM; cvm != "020000" {
		t.Errorf("9F34 %s, want 020000 (online PIN, result unknown)", cvm)
	}
	if err := cardsim.VerifyField55(mustHex(sim.Profile().Key), "", p.Card().ICData); err != nil {
		t.Errorf("field 55 ARQC: %v", err)
	}
	// Without a PIN pad the card's requirement cannot be met.
	sim = loadCard(t, "oda/qpboc", nil)
	rec.Card = sim.AsCard("contactless")
	if _, err := contactlessSource(twoReaders("contactless", rec), fixedTerminal(), nil).Pay(context.Background(),
		provisioning.CardRequest{Purpose: "sale", Amount: saleAmount}); err == nil {
		t.Error("online PIN required without a PIN pad: the sale went on")
	}
}

// TestContactReaderBesideContactless: the same Source reads a card in the
// contact reader as a contact card (PSE, GENERATE AC), and a qPBOC card
// left in the contact reader does not get the contactless path.
func TestContactReaderBesideContactless(t *testing.T) {
	sim := loadCard(t, "debit", nil)
	src := contactlessSource(twoReaders("contact", sim.AsCard("contact")), fixedTerminal(), nil)
	p, err := src.Pay(context.Background(), provisioning.CardRequest{Purpose: "sale", Amount: saleAmount})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if sim.Steps("generate_ac") != 1 {
		t.Errorf("contact card: %d GENERATE AC, want 1", sim.Steps("generate_ac"))
	}
	// The qPBOC profile has no PSE: read as contact it is tried by AID,
	// and its GENERATE AC is refused (6985), so the payment fails.
	q := loadCard(t, "oda/qpboc", nil)
	src = contactlessSource(twoReaders("contact", q.AsCard("contact")), fixedTerminal(), nil)
	if _, err := src.Pay(context.Background(), provisioning.CardRequest{Purpose: "sale", Amount: saleAmount}); err == nil {
		t.Error("qPBOC card in the contact reader: payment started")
	}
	if q.Steps("generate_ac") != 1 {
		t.Errorf("qPBOC card in the contact reader: %d GENERATE AC, want the contact path's 1", q.Steps("generate_ac"))
	}
}

// TestQPBOCRead: the tool's read (emv.Read) of a contactless card stops at
// the GPO's cryptogram, with field 55.
func TestQPBOCRead(t *testing.T) {
	sim := loadCard(t, "oda/qpboc", nil)
	term := fixedTerminal()
	term.Contactless = true
	res, err := emv.Read(context.Background(), sim.AsCard("sim"), term, emv.Transaction{Amount: saleAmount})
	if err != nil {
		t.Fatal(err)
	}
	if sim.Steps("generate_ac") != 0 {
		t.Error("GENERATE AC sent")
	}
	if err := cardsim.VerifyField55(mustHex(sim.Profile().Key), "", res.ICData); err != nil {
		t.Errorf("field 55 ARQC: %v", err)
	}
}

// TestTwoReadersPickedByName: with a card in each reader, the Source's
// pinned reader decides which is read, and the contactless one's is read
// contactless, the contact one's as a contact card.
func TestTwoReadersPickedByName(t *testing.T) {
	for _, pin := range []string{"contactless", "contact"} {
		t.Run(pin, func(t *testing.T) {
			debit, q := loadCard(t, "debit", nil), loadCard(t, "oda/qpboc", nil)
			r := cardreadertest.NewReader("contact", "contactless")
			r.Insert("contact", debit.AsCard("contact"))
			r.Insert("contactless", q.AsCard("contactless"))
			src := contactlessSource(r, fixedTerminal(), nil)
			src.ReaderName = pin
			p, err := src.Pay(context.Background(), provisioning.CardRequest{Purpose: "sale", Amount: saleAmount})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			wantQ, wantDebit := 1, 0 // GPOs the qPBOC card saw, GENERATE ACs the debit card saw
			if pin == "contact" {
				wantQ, wantDebit = 0, 1
			}
			if q.Steps("gpo") != wantQ || debit.Steps("generate_ac") != wantDebit || q.Steps("generate_ac") != 0 {
				t.Errorf("qPBOC GPOs %d, debit GENERATE ACs %d: want %d, %d", q.Steps("gpo"), debit.Steps("generate_ac"), wantQ, wantDebit)
			}
		})
	}
}

// tapToPay starts a sale on the qPBOC card tapped on the contactless
// reader; the payment is closed when the test ends.
func tapToPay(t *testing.T) provisioning.Payment {
	t.Helper()
	sim := loadCard(t, "oda/qpboc", nil)
	src := contactlessSource(twoReaders("contactless", sim.AsCard("contactless")), fixedTerminal(), nil)
	p, err := src.Pay(context.Background(), provisioning.CardRequest{Purpose: "sale", Amount: saleAmount})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestQPBOCOfflineApprovalFDDA: a reader that does not require an online
// cryptogram (the TTQ's byte 2 bit 8 cleared, as `posctl card read
// --offline` sends it) gets an offline-capable card's TC with its 9F4B,
// and the TC stands only on fDDA: for both versions the TTQ can ask for
// (byte 4 bit 8: 01, signed over UN, amount, currency and 9F69; 00, the UN
// alone), verified with the test CA's key; signed with a key its
// certificate does not hold, or without the CA key, "DDA failed" and the
// card declined offline.
func TestQPBOCOfflineApprovalFDDA(t *testing.T) {
	for _, tc := range []struct {
		name, card string
		ttq4       byte
		capks      bool
		want       error
		oda        string
		tvr1, tsi1 byte
	}{
		{"fDDA 01", "oda/qpboc", 0x80, true, nil, "fDDA passed", 0x00, 0x80},
		{"fDDA 00", "oda/qpboc", 0x00, true, nil, "fDDA passed", 0x00, 0x80},
		{"bad signature", "oda/qpboc-bad-signature", 0x80, true, emv.ErrDeclined, "", 0x08, 0x80},
		{"no CA key", "oda/qpboc", 0x80, false, emv.ErrDeclined, "", 0x08, 0x80},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := loadCard(t, tc.card, nil)
			term := fixedTerminal()
			term.Contactless = true
			term.TTQ = []byte{0x36, 0x00, 0x00, tc.ttq4}
			if tc.capks {
				term.CAPKs = testCAPKs(t)
			}
			res, err := emv.Read(context.Background(), sim.AsCard("sim"), term, emv.Transaction{Amount: saleAmount})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if sim.Steps("generate_ac") != 0 {
				t.Error("GENERATE AC sent")
			}
			if err != nil {
				return
			}
			if res.ODA != tc.oda {
				t.Errorf("ODA %q, want %q", res.ODA, tc.oda)
			}
			tvr, tsi := mustHex(res.TVR), mustHex(res.TSI)
			if tvr[0] != tc.tvr1 || tsi[0]&0x80 != tc.tsi1 {
				t.Errorf("TVR %s TSI %s, want TVR byte 1 %02X, TSI ODA bit %02X", res.TVR, res.TSI, tc.tvr1, tc.tsi1)
			}
			objs, err := emv.DecodeTLV(mustHex(res.ICData))
			if err != nil {
				t.Fatal(err)
			}
			if cid, ok := emv.Find(objs, 0x9F27); !ok || cid.Value[0]&0xC0 != 0x40 {
				t.Errorf("field 55 9F27 %X, want a TC", cid.Value)
			}
		})
	}
}

// TestQPBOCPreprocessing: the downloaded contactless limits decide before
// GET PROCESSING OPTIONS: at or above the transaction limit nothing is
// sent to the card beyond selection and the sale is for the contact
// interface (E_CARD_USE_CONTACT); at or above the CVM limit the TTQ sent
// asks for a CVM; the online-cryptogram bit stays set whatever the floor
// limit (this terminal is online only), and a sale below every limit
// leaves the CVM bit clear.
func TestQPBOCPreprocessing(t *testing.T) {
	limit := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		name        string
		amount      int64
		want        error
		cvmBit, gpo bool
	}{
		{"below every limit", 100, nil, false, true},
		{"at the CVM limit", 30000, nil, true, true},
		{"at the contactless limit", 100000, emv.ErrUseContact, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := loadCard(t, "oda/qpboc", nil)
			rec := &recorder{Card: sim.AsCard("sim")}
			term := fixedTerminal()
			term.Contactless = true
			term.Risk = map[string]emv.RiskParams{"A000000333010101": {
				CLFloorLimit: limit(50000), CLTransactionLimit: limit(100000), CVMLimit: limit(30000)}}
			term.AIDs = []string{"A000000333010101"}
			_, err := emv.Read(context.Background(), rec, term, emv.Transaction{Amount: tc.amount})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if !tc.gpo {
				if sim.Steps("gpo") != 0 {
					t.Error("GET PROCESSING OPTIONS sent above the contactless limit")
				}
				var ce interface{ FailureCode() string }
				if !errors.As(err, &ce) || ce.FailureCode() != "E_CARD_USE_CONTACT" {
					t.Errorf("failure code of %v", err)
				}
				return
			}
			ttq := rec.gpoData(t)[:4] // the PDOL starts with 9F66
			if got := ttq[1]&0x40 != 0; got != tc.cvmBit {
				t.Errorf("TTQ %X: CVM required %v, want %v", ttq, got, tc.cvmBit)
			}
			if ttq[1]&0x80 == 0 {
				t.Errorf("TTQ %X: online cryptogram not required", ttq)
			}
			if !bytes.Equal(term.TTQ, emv.DefaultTerminal().TTQ) {
				t.Errorf("the terminal's TTQ changed to %X", term.TTQ)
			}
		})
	}
}
