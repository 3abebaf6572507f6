package acquirer

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/testkit/golden"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// The chip card of these tests: its track-2 equivalent (57) as track
// characters, and the objects of its transaction, written out tag by tag.
const (
	chipPAN    = "6222021234567890123"
	chipTrack2 = chipPAN + "=28122011234567890"
	// chipTC is the TC set the kernel records for the TC upload: 9F26 the
	// TC, 9F27 40, and the data the second GENERATE AC covered.
	chipTC = "9F2608A1B2C3D4E5F60718" + "9F270140" + "9F100807010103A0A00000" + "9F3704CAFEBABE" +
		"9F36020011" + "95050080000000" + "9A03261126" + "9C0100" + "9F0206000000000001" + "5F2A020156" +
		"82027C00" + "9F1A020156" + "9F0306000000000000" + "9F3303E0F1C8" + "9F1E083132333435363738"
	// chipReversal is an IC reversal's field 55: 95 9F1E 9F10 9F36.
	chipReversal = "95050080000000" + "9F1E083132333435363738" + "9F100807010103A0A00000" + "9F36020011"
	// chipIssuerData is an answer's field 55: 91 (ARPC and ARC "00").
	chipIssuerData = "910A0102030405060708" + "3030"
)

func chipSaleCard() provisioning.Card {
	c := chipCard
	c.AID = "A000000333010101"
	c.Track2 = pan.NewTrack(chipTrack2)
	return c
}

// chipSaleRecord is the chip sale as the flow records it once the card
// gave its TC.
func chipSaleRecord(t testing.TB) provisioning.TxnRecord {
	return provisioning.TxnRecord{STAN: 2, Batch: "000123", Entry: provisioning.EntryChip, Amount: 1, RC: "00",
		RRN: "153012000001", AuthCode: "654321", Time: time.Date(2026, 11, 26, 7, 30, 12, 0, time.UTC),
		AID: "A000000333010101", IC: &provisioning.ICData{Cryptogram: "A1B2C3D4E5F60718", CID: "40", ATC: "0011",
			TVR: "0080000000", UN: "CAFEBABE", AIP: "7C00", CSN: "01", TC: chipTC}}
}

// chipAnswer answers a financial request as a host does: 3, 4 echoed,
// approved, field 55 the issuer's data.
func chipAnswer(t testing.TB) answer {
	return answer{fields: map[int]string{3: "000000", 4: "000000000001", 37: "153012000001", 38: "654321", 39: "00"},
		bin: map[int][]byte{55: mustHex(t, chipIssuerData)}}
}

// TestGoldenChipSale pins a chip sale byte for byte (22 052, 14, 23, 35
// the track-2 equivalent under the TDK, 53, 55) and reads the issuer's
// field 55 off the answer.
func TestGoldenChipSale(t *testing.T) {
	keys := swipeKeys(t, DoubleDES)
	var resp provisioning.HostResponse
	wire, err := exchangeOnce(t, keys, chipAnswer(t), func(c *Client) error {
		var err error
		resp, err = c.Sale(context.Background(), provisioning.SaleRequest{Terminal: terminal, STAN: 2, Batch: "000123", Amount: 1, Card: chipSaleCard()})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	text := annotateFrame(t, wire)
	golden.Check(t, filepath.Join("testdata", "golden", "chip-sale.txt"), text)
	if !bytes.Equal(annotated(t, text), wire) {
		t.Fatal("annotation does not read back")
	}
	if !bytes.Equal(resp.ICData, mustHex(t, chipIssuerData)) || resp.RC != "00" {
		t.Errorf("answer %+v, issuer data % X", resp, resp.ICData)
	}
	_, v := requestMessage(t, wire)
	for id, want := range map[int]string{2: chipPAN, 14: "2812", 22: "052", 23: "001", 53: "2610000000000000", 60: "2200012300050"} {
		if got := v.get(id); got != want {
			t.Errorf("field %d = %q, want %q", id, got, want)
		}
	}
	if !bytes.Equal(v.bytes(55), mustHex(t, chipCard.ICData)) {
		t.Errorf("field 55 % X", v.bytes(55))
	}
	f35 := v.get(35)
	if f35 == chipTrack2 || len(f35) != len(chipTrack2) {
		t.Fatalf("field 35 is not the encrypted track (%d characters)", len(f35))
	}
	// openssl decrypts the 16 characters before the last one, as for a swipe.
	seg := f35[len(f35)-17 : len(f35)-1]
	plain := opensslECB(t, keys.Working.TDK, mustHex(t, strings.ReplaceAll(seg, "=", "D")), true)
	if back := f35[:len(f35)-17] + strings.ReplaceAll(strings.ToUpper(hex.EncodeToString(plain)), "D", "=") + f35[len(f35)-1:]; back != chipTrack2 {
		t.Error("field 35 does not decrypt to the track-2 equivalent")
	}
	if v.has(36) {
		t.Error("a chip sale carries track 3")
	}
}

// TestChipSaleTrack: without a TDK the chip's track goes in clear (53
// digit 3 = 0), where one is expected the sale is refused, and a track of
// another card is refused naming field 2; nothing refused is sent.
func TestChipSaleTrack(t *testing.T) {
	m := sendOnce(t, swipeKeys(t, SingleDES), func(c *Client, ctx context.Context) error {
		_, err := c.Sale(ctx, provisioning.SaleRequest{Terminal: terminal, STAN: 9, Batch: "000123", Amount: 1, Card: chipSaleCard()})
		return err
	})
	if Get(m, 35) != chipTrack2 || Get(m, 53) != "2000000000000000" || Get(m, 22) != "052" {
		t.Errorf("single DES: 35 in clear %v, 53 %q, 22 %q", Get(m, 35) == chipTrack2, Get(m, 53), Get(m, 22))
	}
	dial := func(context.Context, string, string) (net.Conn, error) {
		t.Error("nothing should be sent")
		return nil, errors.New("no")
	}
	noTDK := swipeKeys(t, DoubleDES)
	noTDK.Working.TDK = nil
	c := newTestClient(t, noTDK, dial)
	if _, err := c.Sale(context.Background(), provisioning.SaleRequest{Terminal: terminal, STAN: 9, Batch: "000123", Amount: 1, Card: chipSaleCard()}); !errors.Is(err, ErrNoTDK) {
		t.Errorf("no TDK where one is expected: %v", err)
	}
	other := chipSaleCard()
	other.Track2 = pan.NewTrack(swipeTrack2)
	c = newTestClient(t, swipeKeys(t, DoubleDES), dial)
	_, err := c.Sale(context.Background(), provisioning.SaleRequest{Terminal: terminal, STAN: 9, Batch: "000123", Amount: 1, Card: other})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != 2 || strings.Contains(err.Error(), "62220212") {
		t.Errorf("track of another card: %v", err)
	}
}

// TestChipReadWithoutCryptogram: a void's chip read (AID, no ICData) is a
// chip read, 05x with field 23 and no field 55; the void's answer's field
// 55 reaches the caller. A chip entry with neither AID nor IC data stays
// keyed (01x).
func TestChipReadWithoutCryptogram(t *testing.T) {
	read := chipSaleCard()
	read.ICData = ""
	orig := chipSaleRecord(t)
	a := chipAnswer(t)
	a.fields[3] = "200000"
	var resp provisioning.HostResponse
	wire, err := exchangeOnce(t, swipeKeys(t, DoubleDES), a, func(c *Client) error {
		var err error
		resp, err = c.Void(context.Background(), provisioning.VoidRequest{Terminal: terminal, STAN: 3, Batch: "000123", Card: read, Orig: orig})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	_, v := requestMessage(t, wire)
	for id, want := range map[int]string{22: "052", 23: "001", 14: "2812", 60: "2300012300050", 61: "000123000002"} {
		if got := v.get(id); got != want {
			t.Errorf("void field %d = %q, want %q", id, got, want)
		}
	}
	if v.has(55) {
		t.Error("a read without a cryptogram sent field 55")
	}
	if !bytes.Equal(resp.ICData, mustHex(t, chipIssuerData)) {
		t.Errorf("void answer's issuer data % X", resp.ICData)
	}
	keyed := provisioning.Card{PAN: pan.MustParse(chipPAN), Expiry: "2812"}
	m := sendOnce(t, swipeKeys(t, DoubleDES), func(c *Client, ctx context.Context) error {
		_, err := c.Sale(ctx, provisioning.SaleRequest{Terminal: terminal, STAN: 9, Batch: "000123", Amount: 1, Card: keyed})
		return err
	})
	if Get(m, 22) != "012" || Get(m, 60) != "2200012300000" {
		t.Errorf("keyed: 22 %q, 60 %q", Get(m, 22), Get(m, 60))
	}
}

// TestGoldenICReversal pins the reversal of a chip sale the card declined
// after the host approved it (39 = 06): 14, 23, 38 and 55 with the
// reversal objects; no track, PIN or 53.
func TestGoldenICReversal(t *testing.T) {
	orig := provisioning.InFlight{Kind: "sale", STAN: 2, Batch: "000123", Amount: 1, Reason: "06", Expiry: "2812", Seq: "01",
		AuthCode: "654321", IC: chipReversal, Entry: provisioning.EntryChip, PIN: true}
	a := answer{fields: map[int]string{3: "000000", 4: "000000000001", 39: "00"}}
	wire, err := exchangeOnce(t, swipeKeys(t, DoubleDES), a, func(c *Client) error {
		_, err := c.Reverse(context.Background(), provisioning.ReversalRequest{Terminal: terminal, Orig: orig, Reason: "06", PAN: pan.MustParse(chipPAN)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	text := annotateFrame(t, wire)
	golden.Check(t, filepath.Join("testdata", "golden", "ic-reversal.txt"), text)
	if !bytes.Equal(annotated(t, text), wire) {
		t.Fatal("annotation does not read back")
	}
	f, v := requestMessage(t, wire)
	want := map[int]string{2: chipPAN, 3: "000000", 4: "000000000001", 11: "000002", 14: "2812", 22: "051", 23: "001", 25: "00",
		38: "654321", 39: "06", 41: terminal.TID, 42: terminal.MID, 49: "156", 60: "2200012300050"}
	for id, w := range want {
		if got := v.get(id); got != w {
			t.Errorf("field %d = %q, want %q", id, got, w)
		}
	}
	if !bytes.Equal(v.bytes(55), mustHex(t, chipReversal)) {
		t.Errorf("field 55 % X", v.bytes(55))
	}
	for _, id := range []int{26, 35, 36, 52, 53, 61} {
		if v.has(id) {
			t.Errorf("IC reversal carries field %d", id)
		}
	}
	m, _ := Unpack(f.Message)
	if err := CheckMAC(m, f.Message, MACUnionPayECB, MACKey(swipeKeys(t, DoubleDES).Working.MAK, false)); err != nil {
		t.Errorf("reversal MAC: %v", err)
	}
}

// TestReversalReasons: the four reasons go out; any other code is refused
// before anything is sent.
func TestReversalReasons(t *testing.T) {
	orig := provisioning.InFlight{Kind: "sale", STAN: 2, Batch: "000123", Amount: 1}
	for _, r := range []string{"98", "96", "A0", "06"} {
		m := sendOnce(t, swipeKeys(t, DoubleDES), func(c *Client, ctx context.Context) error {
			_, err := c.Reverse(ctx, provisioning.ReversalRequest{Terminal: terminal, Orig: orig, Reason: r})
			return err
		})
		if Get(m, 39) != r {
			t.Errorf("reason %s went as %q", r, Get(m, 39))
		}
	}
	dial := func(context.Context, string, string) (net.Conn, error) {
		t.Error("a refused reversal was sent")
		return nil, errors.New("no")
	}
	c := newTestClient(t, swipeKeys(t, DoubleDES), dial)
	for _, r := range []string{"00", "05", "a0", "", "968"} {
		_, err := c.Reverse(context.Background(), provisioning.ReversalRequest{Terminal: terminal, Orig: orig, Reason: r})
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != 39 {
			t.Errorf("reason %q: %v", r, err)
		}
	}
	bad := orig
	bad.IC = "9F3"
	bad.Expiry = "2812"
	if _, err := c.Reverse(context.Background(), provisioning.ReversalRequest{Terminal: terminal, Orig: bad, Reason: "06"}); err == nil {
		t.Error("an IC reversal whose field 55 is not hex bytes was sent")
	}
}

// TestGoldenTCUpload pins a TC upload byte for byte and states its fields
// apart from the golden file: the sale's STAN in 11, the TC set in 55, 60.3
// 203 with 60.4/60.5, 62 "61" + organisation + "00" + amount + currency,
// no field 3, 49 or 64. The host's answer need not repeat the amount.
func TestGoldenTCUpload(t *testing.T) {
	a := answer{fields: map[int]string{39: "00"}}
	var ack provisioning.Ack
	wire, err := exchangeOnce(t, adminKeys(t), a, func(c *Client) error {
		var err error
		ack, err = c.UploadTC(context.Background(), provisioning.TCUpload{AdminRequest: adminReq, Txn: chipSaleRecord(t), Card: pan.MustParse(chipPAN)})
		return err
	})
	if err != nil || ack.RC != "00" {
		t.Fatalf("%+v %v", ack, err)
	}
	text := annotateFrame(t, wire)
	golden.Check(t, filepath.Join("testdata", "golden", "tc-upload.txt"), text)
	if !bytes.Equal(annotated(t, text), wire) {
		t.Fatal("annotation does not read back")
	}
	checkICUpload(t, wire, "203")
}

func checkICUpload(t *testing.T, wire []byte, code string) {
	t.Helper()
	_, v := requestMessage(t, wire)
	f, _ := DecodeFrame(wire)
	if mti := hex.EncodeToString(f.Message[:2]); mti != "0320" {
		t.Errorf("MTI %s", mti)
	}
	want := map[int]string{2: chipPAN, 4: "000000000001", 11: "000002", 22: "052", 23: "001", 41: terminal.TID, 42: terminal.MID,
		60: "00000123" + code + "50"}
	for id, w := range want {
		if got := v.get(id); got != w {
			t.Errorf("field %d = %q, want %q", id, got, w)
		}
	}
	if !bytes.Equal(v.bytes(55), mustHex(t, chipTC)) {
		t.Errorf("field 55 % X", v.bytes(55))
	}
	if got := string(v.bytes(62)); got != shellPrintf(t, "61%s00%012d%s", "00", "1", "156") {
		t.Errorf("field 62 %q", got)
	}
	for _, id := range []int{3, 14, 35, 49, 64} {
		if v.has(id) {
			t.Errorf("IC upload carries field %d", id)
		}
	}
}

// TestChipBatchUpload: after an unbalanced settlement a chip sale goes up
// in the IC format with 205; one whose record has no TC is refused with
// nothing sent, as before.
func TestChipBatchUpload(t *testing.T) {
	wire, err := exchangeOnce(t, adminKeys(t), answer{fields: map[int]string{39: "00"}}, func(c *Client) error {
		_, err := c.UploadBatch(context.Background(), provisioning.BatchUpload{AdminRequest: adminReq, Kind: "sale",
			Txn: chipSaleRecord(t), Card: pan.MustParse(chipPAN)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	checkICUpload(t, wire, "205")
	dial := func(context.Context, string, string) (net.Conn, error) {
		t.Error("nothing should be sent")
		return nil, errors.New("no")
	}
	c := newTestClient(t, adminKeys(t), dial)
	noTC := chipSaleRecord(t)
	noTC.IC.TC = ""
	if _, err := c.UploadBatch(context.Background(), provisioning.BatchUpload{AdminRequest: adminReq, Kind: "sale", Txn: noTC,
		Card: pan.MustParse(chipPAN)}); !errors.Is(err, ErrBatchChip) {
		t.Errorf("chip sale without a TC: %v", err)
	}
	if _, err := c.UploadTC(context.Background(), provisioning.TCUpload{AdminRequest: adminReq, Txn: noTC, Card: pan.MustParse(chipPAN)}); !errors.Is(err, ErrBatchChip) {
		t.Errorf("TC upload without a TC: %v", err)
	}
	if _, err := c.UploadTC(context.Background(), provisioning.TCUpload{AdminRequest: adminReq, Txn: chipSaleRecord(t)}); !errors.Is(err, ErrBatchPAN) {
		t.Errorf("TC upload without the card number: %v", err)
	}
}

// chipScripts is DF31 of one script the card ran: result 2 (done), script
// sequence 0, identifier 00000001.
const chipScripts = "2000000001"

// TestGoldenScriptNotice pins a script-result notice byte for byte and
// states its fields: 0620, a STAN of its own, the sale's 37 and 38, 55 in
// the public apps' order with DF31, 60.3 951 with the sale's 60.4/60.5, 61
// the sale's batch, STAN and date, MACed. The answer need not repeat the
// amount, and its MAC must verify.
func TestGoldenScriptNotice(t *testing.T) {
	keys := adminKeys(t)
	txn := chipSaleRecord(t)
	txn.IC.Scripts = chipScripts
	notice := provisioning.ScriptNotice{AdminRequest: adminReq, Txn: txn, Card: pan.MustParse(chipPAN)}
	mak := MACKey(keys.Working.MAK, false)
	a := answer{fields: map[int]string{3: "000000", 39: "00"}, mac: mak}
	wire, err := exchangeOnce(t, keys, a, func(c *Client) error {
		ack, err := c.NotifyScripts(context.Background(), notice)
		if err == nil && ack.RC != "00" {
			t.Errorf("%+v", ack)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	text := annotateFrame(t, wire)
	golden.Check(t, filepath.Join("testdata", "golden", "script-notice.txt"), text)
	if !bytes.Equal(annotated(t, text), wire) {
		t.Fatal("annotation does not read back")
	}
	f, v := requestMessage(t, wire)
	if mti := hex.EncodeToString(f.Message[:2]); mti != "0620" {
		t.Errorf("MTI %s", mti)
	}
	want := map[int]string{2: chipPAN, 3: "000000", 4: "000000000001", 11: "000007", 22: "052", 23: "001", 25: "00",
		37: "153012000001", 38: "654321", 49: "156", 60: "0000012395150", 61: "0001230000021126"}
	for id, w := range want {
		if got := v.get(id); got != w {
			t.Errorf("field %d = %q, want %q", id, got, w)
		}
	}
	f55 := "9F3303E0F1C8" + "95050080000000" + "9F3704CAFEBABE" + "9F1E083132333435363738" + "9F100807010103A0A00000" +
		"9F2608A1B2C3D4E5F60718" + "9F36020011" + "82027C00" + "DF3105" + chipScripts + "9F1A020156" + "9A03261126"
	if !bytes.Equal(v.bytes(55), mustHex(t, f55)) {
		t.Errorf("field 55\n got %X\nwant %s", v.bytes(55), f55)
	}
	m, _ := Unpack(f.Message)
	if err := CheckMAC(m, f.Message, MACUnionPayECB, mak); err != nil {
		t.Errorf("notice MAC: %v", err)
	}
	// An answer MACed under another key is refused.
	a.mac = MACKey(mustHex(t, "0123456789ABCDEF"), false)
	if _, err := exchangeOnce(t, keys, a, func(c *Client) error { _, err := c.NotifyScripts(context.Background(), notice); return err }); !errors.Is(err, ErrBadMAC) {
		t.Errorf("answer under another MAK: %v", err)
	}
}

// TestScriptNoticeRefusals: no results, results that are not whole 5-byte
// entries, or no ATC anywhere: nothing is sent.
func TestScriptNoticeRefusals(t *testing.T) {
	dial := func(context.Context, string, string) (net.Conn, error) {
		t.Error("nothing should be sent")
		return nil, errors.New("no")
	}
	c := newTestClient(t, adminKeys(t), dial)
	for name, edit := range map[string]func(*provisioning.ICData){
		"no scripts":      func(ic *provisioning.ICData) { ic.Scripts = "" },
		"4-byte result":   func(ic *provisioning.ICData) { ic.Scripts = "20000000" },
		"not hex":         func(ic *provisioning.ICData) { ic.Scripts = "2X00000001" },
		"no ATC":          func(ic *provisioning.ICData) { ic.TC, ic.ATC = "", "" },
		"TC set not TLV":  func(ic *provisioning.ICData) { ic.TC = "9F3602" },
		"truncated DF31":  func(ic *provisioning.ICData) { ic.Scripts = "DF310A2000000001" },
		"ATC of one byte": func(ic *provisioning.ICData) { ic.TC, ic.ATC = "", "11" },
	} {
		txn := chipSaleRecord(t)
		txn.IC.Scripts = chipScripts
		edit(txn.IC)
		if _, err := c.NotifyScripts(context.Background(), provisioning.ScriptNotice{AdminRequest: adminReq, Txn: txn}); !errors.Is(err, ErrRequest) && !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestScriptField: DF31 is taken as the results or as the whole object;
// without a TC set the record's own values stand in, in the same order.
func TestScriptField(t *testing.T) {
	ic := &provisioning.ICData{Cryptogram: "A1B2C3D4E5F60718", ATC: "0011", TVR: "0080000000", UN: "CAFEBABE", AIP: "7C00",
		Scripts: "DF310A" + chipScripts + "1000000002"}
	got, err := scriptField(ic)
	if err != nil {
		t.Fatal(err)
	}
	want := "95050080000000" + "9F3704CAFEBABE" + "9F2608A1B2C3D4E5F60718" + "9F36020011" + "82027C00" + "DF310A" + chipScripts + "1000000002"
	if !bytes.Equal(got, mustHex(t, want)) {
		t.Errorf("\n got %X\nwant %s", got, want)
	}
	// The ARQC stands in for a cryptogram the card never gave.
	ic.Cryptogram, ic.ARQC = "", "0102030405060708"
	if got, _ := scriptField(ic); !bytes.Contains(got, mustHex(t, "9F26080102030405060708")) {
		t.Errorf("without the second cryptogram: %X", got)
	}
}

// TestContactlessSale: a card tapped on the contactless reader (qPBOC) goes
// with entry mode 07x and 60.4 = 6, its GPO's cryptogram in field 55, as a
// chip sale otherwise.
func TestContactlessSale(t *testing.T) {
	keys := swipeKeys(t, DoubleDES)
	card := chipSaleCard()
	card.Entry = provisioning.EntryContactless
	wire, err := exchangeOnce(t, keys, chipAnswer(t), func(c *Client) error {
		_, err := c.Sale(context.Background(), provisioning.SaleRequest{Terminal: terminal, STAN: 2, Batch: "000123", Amount: 1, Card: card})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	_, v := requestMessage(t, wire)
	for id, want := range map[int]string{22: "072", 23: "001", 60: "2200012300060"} {
		if got := v.get(id); got != want {
			t.Errorf("field %d = %q, want %q", id, got, want)
		}
	}
	if !bytes.Equal(v.bytes(55), mustHex(t, chipCard.ICData)) {
		t.Errorf("field 55 % X", v.bytes(55))
	}
}
