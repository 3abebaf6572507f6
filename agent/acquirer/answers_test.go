package acquirer

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moov-io/iso8583"

	"github.com/posagent/posagent/agent/testkit/golden"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// The demand digit is the header's 6th BCD digit (the low nibble of byte
// 2) by default, and wherever a profile puts it; a digit the client does
// not know is kept.
func TestProfileDemand(t *testing.T) {
	p := DefaultProfile()
	for _, tc := range []struct {
		h     Header
		digit int
		want  provisioning.Demand
	}{
		{Header{0x60, 0x31, 0x00, 0x31, 0x07, 0x00}, 5, provisioning.DemandNone},
		{Header{0x60, 0x31, 0x04, 0x31, 0x07, 0x00}, 5, provisioning.DemandCAPK},
		{Header{0x60, 0x31, 0x13, 0x31, 0x07, 0x00}, 5, provisioning.DemandSignOn}, // test mode 1, demand 3
		{Header{0x60, 0x31, 0x08, 0x31, 0x07, 0x00}, 5, provisioning.Demand(8)},
		{Header{0x60, 0x31, 0x0C, 0x31, 0x07, 0x00}, 5, provisioning.Demand(12)},
		{Header{0x60, 0x31, 0x20, 0x31, 0x07, 0x00}, 4, provisioning.DemandStatusUpload},
		{Header{0x60, 0x31, 0x00, 0x31, 0x07, 0x07}, 11, provisioning.DemandBlacklist},
	} {
		p.DemandDigit = tc.digit
		if got := p.Demand(tc.h); got != tc.want {
			t.Errorf("%X digit %d: %v, want %v", tc.h, tc.digit, got, tc.want)
		}
	}
	if got := provisioning.Demand(8).String(); got != "demand(8)" {
		t.Errorf("unknown demand prints %q", got)
	}
	p.DemandDigit = 12
	if err := p.Validate(); err == nil {
		t.Error("a demand digit outside the header validated")
	}
}

// Every result carries the demand of its answer's header.
func TestDemandOnEveryResult(t *testing.T) {
	for _, pc := range procedureCalls(t) {
		var demand provisioning.Demand
		a := pc.answer
		a.demand = 7
		_, err := exchangeOnce(t, adminKeys(t), a, func(c *Client) error {
			var err error
			ctx := context.Background()
			switch pc.name {
			case "capk-list":
				var r provisioning.KeyList
				r, err = c.ListKeys(ctx, provisioning.ListRequest{AdminRequest: adminReq})
				demand = r.Demand
			case "capk":
				var r provisioning.KeyResult
				r, err = c.FetchKey(ctx, provisioning.KeyRequest{AdminRequest: adminReq, Key: testCAPK(t).ID()})
				demand = r.Demand
			case "aid-list":
				var r provisioning.AppList
				r, err = c.ListApps(ctx, provisioning.ListRequest{AdminRequest: adminReq})
				demand = r.Demand
			case "aid":
				var r provisioning.AppResult
				r, err = c.FetchApp(ctx, provisioning.AppRequest{AdminRequest: adminReq, AID: mustHex(t, unionPayDebit)})
				demand = r.Demand
			case "parameters":
				var r provisioning.ParamsResult
				r, err = c.TerminalParameters(ctx, adminReq)
				demand = r.Demand
			case "settle":
				var r provisioning.SettleResult
				r, err = c.Settle(ctx, provisioning.SettleRequest{AdminRequest: adminReq, Domestic: provisioning.Totals{DebitCount: 1, DebitAmount: 100}})
				demand = r.Demand
			default:
				var r provisioning.Ack
				switch pc.name {
				case "capk-end":
					r, err = c.EndKeys(ctx, adminReq)
				case "aid-end":
					r, err = c.EndApps(ctx, adminReq)
				case "status-upload":
					r, err = c.UploadStatus(ctx, provisioning.StatusUpload{AdminRequest: adminReq})
				case "batch-upload":
					r, err = c.UploadBatchCard(ctx, provisioning.BatchUpload{AdminRequest: adminReq, Kind: "void",
						Txn: provisioning.TxnRecord{STAN: 3, Amount: 100}}, pan.MustParse(swipePAN))
				case "batch-end-unbalanced", "batch-end-balanced":
					r, err = c.EndBatchUpload(ctx, provisioning.BatchEnd{AdminRequest: adminReq})
				case "sign-off":
					r, err = c.SignOff(ctx, adminReq)
				default:
					t.Fatalf("no case for %s", pc.name)
				}
				demand = r.Demand
			}
			return err
		})
		if err != nil || demand != provisioning.DemandBlacklist {
			t.Errorf("%s: demand %v, %v", pc.name, demand, err)
		}
	}
	// Sign-on and the financial answers carry it too.
	tmk := adminKeys(t).TMK
	f62 := field62(t, tmk, mustHex(t, "1111111111111111AAAAAAAAAAAAAAAA"), mustHex(t, "2222222222222222BBBBBBBBBBBBBBBB"),
		mustHex(t, "3333333333333333CCCCCCCCCCCCCCCC"))
	var res provisioning.SignOnResult
	_, err := exchangeOnce(t, Keys{TMK: tmk}, answer{fields: map[int]string{39: "00", 60: "00000123004"}, bin: map[int][]byte{62: f62}, demand: 4},
		func(c *Client) error {
			var err error
			res, err = c.SignOn(context.Background(), provisioning.SignOnRequest{Terminal: terminal, STAN: 1})
			return err
		})
	if err != nil || !res.KeysOK || res.Demand != provisioning.DemandCAPK {
		t.Errorf("sign-on: %+v, %v", res, err)
	}
	dial, _ := fakeHost(t, func(req Frame) []byte {
		out := answerer(t, "00", Key(testMAK[:8]), MACUnionPayECB, func(_, r *iso8583.Message) {
			mustSet(t, r, 44, "01020000   03050000   ")
		})(req)
		out[2+5+2] = 0x05 // the header's demand nibble: IC parameters
		return out
	})
	c := newTestClient(t, signedOn(DoubleDES), dial)
	resp, err := sale(c)
	if err != nil || resp.Demand != provisioning.DemandICParameters || resp.Issuer != "01020000" || resp.Acquirer != "03050000" {
		t.Errorf("sale: %+v, %v", resp, err)
	}
}

// Field 44: 11 characters of issuer, 11 of acquirer, each space padded.
func TestInstitutions(t *testing.T) {
	for _, tc := range []struct{ in, issuer, acquirer string }{
		{"01020000   03050000   ", "01020000", "03050000"},
		{"0102000000103050000001", "01020000001", "03050000001"},
		{"01020000", "01020000", ""},
		{"01020000   0305", "01020000", "0305"},
		{"", "", ""},
		{"0102000000103050000001XYZ", "01020000001", "03050000001"},
	} {
		if i, a := institutions(tc.in); i != tc.issuer || a != tc.acquirer {
			t.Errorf("%q: %q %q", tc.in, i, a)
		}
	}
}

// Sign-on sends the terminal's batch in 60.2 (000000 only before the first
// one) and the profile's code for the key mode: here 003.
func TestSignOnBatchAndMode(t *testing.T) {
	wire := signOnRequest(t, func(c *Config) { c.KeyMode = DoubleNoTDK }, "000123")
	golden.Check(t, filepath.Join("testdata", "golden", "sign-on-003.txt"), annotateFrame(t, wire))
	if f := request60(t, wire); f.Batch != "000123" || f.Code != "003" {
		t.Errorf("60 %+v", f)
	}
	if f := request60(t, signOnRequest(t, nil, "")); f.Batch != "000000" || f.Code != "004" {
		t.Errorf("first sign-on: 60 %+v", f)
	}
	dial := func(context.Context, string, string) (net.Conn, error) {
		t.Error("a bad batch was sent")
		return nil, errors.New("no")
	}
	c := newTestClient(t, Keys{TMK: adminKeys(t).TMK}, dial)
	var fe *FieldError
	if _, err := c.SignOn(context.Background(), provisioning.SignOnRequest{Terminal: terminal, STAN: 1, Batch: "12"}); !errors.As(err, &fe) || fe.Field != 60 {
		t.Errorf("batch 12: %v", err)
	}
}

// The first real sign-on with a single-length MAK in the 004 layout: the
// keys check, the 8-byte MAK is stored, and the sale after it is MACed with
// single DES under it (the reference MAC is openssl's).
func TestSignOnSingleLengthMAK(t *testing.T) {
	tmk := adminKeys(t).TMK
	pik, mak8, tdk := mustHex(t, "1111111111111111AAAAAAAAAAAAAAAA"), mustHex(t, "5E5E5E5E5E5E5E5E"), mustHex(t, "3333333333333333CCCCCCCCCCCCCCCC")
	f62 := field62(t, tmk, pik)
	f62 = append(append(f62, opensslECB2(t, "des-ede", tmk, mak8, false)...), make([]byte, 8)...)
	f62 = append(f62, opensslECB2(t, "des-ecb", mak8, make([]byte, 8), false)[:4]...)
	f62 = append(f62, field62(t, tmk, tdk)...)
	var sent [][]byte
	c := newTestClient(t, Keys{TMK: tmk}, multiDial(t, func(req Frame) []byte {
		m, err := Unpack(req.Message)
		if err != nil {
			t.Error(err)
			return nil
		}
		sent = append(sent, req.Message)
		if mti, _ := m.GetMTI(); mti == "0800" {
			return answer{fields: map[int]string{39: "00", 60: "00000123004"}, bin: map[int][]byte{62: f62}}.frame(t, req)
		}
		return answerer(t, "00", Key(mak8), MACUnionPayECB, nil)(req)
	}))
	res, err := c.SignOn(context.Background(), provisioning.SignOnRequest{Terminal: terminal, STAN: 1})
	if err != nil || !res.KeysOK || res.RC != "00" {
		t.Fatalf("sign-on: %+v, %v", res, err)
	}
	k, _ := c.ks.LoadKeys()
	if !bytes.Equal(k.Working.MAK, mak8) || !bytes.Equal(k.Working.PIK, pik) {
		t.Fatalf("stored MAK of %d bytes", len(k.Working.MAK))
	}
	resp, err := sale(c)
	if err != nil || resp.Integrity == provisioning.IntegrityNone {
		t.Fatalf("sale after the sign-on: %+v, %v", resp, err)
	}
	saleMsg := sent[len(sent)-1]
	want := referenceUnionPayMAC(t, mak8, saleMsg[:len(saleMsg)-8])
	if !bytes.Equal(saleMsg[len(saleMsg)-8:], want) {
		t.Fatalf("sale MAC %q, openssl %q", saleMsg[len(saleMsg)-8:], want)
	}
}

// multiDial is a host that answers every exchange with answer, one
// connection each; exchanges are serialised by the client.
func multiDial(t *testing.T, answer func(Frame) []byte) func(context.Context, string, string) (net.Conn, error) {
	return func(context.Context, string, string) (net.Conn, error) {
		c, s := net.Pipe()
		go func() {
			defer s.Close()
			f, err := ReadFrame(s, 0)
			if err != nil {
				t.Errorf("host read: %v", err)
				return
			}
			if b := answer(f); b != nil {
				_, _ = s.Write(b)
				return
			}
			_, _ = io.Copy(io.Discard, s)
		}()
		return c, nil
	}
}

// Answers that do not match their request, or fail their MAC, are errors.
func TestProcedureAnswerChecks(t *testing.T) {
	ctx := context.Background()
	settle := func(c *Client) error {
		_, err := c.Settle(ctx, provisioning.SettleRequest{AdminRequest: adminReq, Domestic: provisioning.Totals{DebitCount: 1, DebitAmount: 100}})
		return err
	}
	listKeys := func(c *Client) error {
		_, err := c.ListKeys(ctx, provisioning.ListRequest{AdminRequest: adminReq})
		return err
	}
	verdicts := "000000000100001000000000000000" + "1" + strings.Repeat("0", 30) + "1"
	good62 := mustHex(t, "31"+"9F0605A000000333"+"9F220108")
	for _, tc := range []struct {
		name string
		a    answer
		call func(*Client) error
		want error
	}{
		{"other TID", answer{fields: map[int]string{39: "00", 41: "87654321"}, bin: map[int][]byte{62: good62}}, listKeys, ErrMismatch},
		{"other MID", answer{fields: map[int]string{39: "00", 48: verdicts, 42: "898100012340002"}}, settle, ErrMismatch},
		{"other STAN", answer{fields: map[int]string{39: "00", 48: verdicts, 11: "000008"}}, settle, ErrMismatch},
		{"no STAN", answer{fields: map[int]string{48: verdicts}, edit: func(_ testing.TB, e *messageEditor) { e.drop = []int{11} }}, settle, ErrMismatch},
		{"bad MAC", answer{fields: map[int]string{39: "00"}, bin: map[int][]byte{62: good62}, mac: mustHex(t, "3131313131313131")}, listKeys, ErrBadMAC},
		{"settle verdict 0", answer{fields: map[int]string{48: verdicts[:30] + "0" + verdicts[31:]}}, settle, ErrBadField48},
		{"settle short", answer{fields: map[int]string{48: verdicts[:40]}}, settle, ErrBadField48},
		{"settle no 48", answer{}, settle, ErrBadField48},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := exchangeOnce(t, adminKeys(t), tc.a, tc.call)
			var xe *ExchangeError
			if !errors.Is(err, tc.want) || !errors.As(err, &xe) || !xe.Sent {
				t.Errorf("%v, want %v", err, tc.want)
			}
		})
	}
	// A MAC the answer carries and that verifies under the MAK is accepted.
	mak := MACKey(adminKeys(t).Working.MAK, false)
	_, err := exchangeOnce(t, adminKeys(t), answer{fields: map[int]string{39: "00"}, bin: map[int][]byte{62: good62}, mac: mak}, listKeys)
	if err != nil {
		t.Errorf("MACed answer: %v", err)
	}
}

// Settlement: the verdict digits per side, the answer without field 39
// that both public apps expect, and a decline's code.
func TestSettleAnswers(t *testing.T) {
	side := func(v string) string { return strings.Repeat("0", 30) + v }
	for _, tc := range []struct {
		name          string
		fields        map[int]string
		foreign       bool
		rc            string
		dom, frn, err bool
	}{
		{"balanced", map[int]string{48: side("1") + side("1")}, false, "00", true, true, false},
		{"domestic unbalanced", map[int]string{48: side("2") + side("1")}, false, "00", false, true, false},
		{"foreign error", map[int]string{48: side("1") + side("3")}, true, "00", true, false, false},
		{"with 39", map[int]string{39: "00", 48: side("1") + side("2")}, true, "00", true, false, false},
		{"domestic only", map[int]string{48: side("1")}, false, "00", true, true, false},
		{"domestic only, foreign totals sent", map[int]string{48: side("1")}, true, "", false, false, true},
		{"verdict 4", map[int]string{48: side("4") + side("1")}, false, "", false, false, true},
		{"declined", map[int]string{39: "77"}, false, "77", false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res provisioning.SettleResult
			r := provisioning.SettleRequest{AdminRequest: adminReq, Domestic: provisioning.Totals{DebitCount: 2, DebitAmount: 200, CreditCount: 1, CreditAmount: 100}}
			if tc.foreign {
				r.Foreign = provisioning.Totals{DebitCount: 1, DebitAmount: 5}
			}
			_, err := exchangeOnce(t, adminKeys(t), answer{fields: tc.fields}, func(c *Client) error {
				var err error
				res, err = c.Settle(context.Background(), r)
				return err
			})
			if (err != nil) != tc.err || (!tc.err && (res.RC != tc.rc || res.DomesticBalanced != tc.dom || res.ForeignBalanced != tc.frn)) {
				t.Errorf("%+v, %v", res, err)
			}
		})
	}
	c := newTestClient(t, adminKeys(t), nil)
	var fe *FieldError
	if _, err := c.Settle(context.Background(), provisioning.SettleRequest{AdminRequest: adminReq, Domestic: provisioning.Totals{DebitCount: 1000}}); !errors.As(err, &fe) || fe.Field != 48 {
		t.Errorf("1000 debits: %v", err)
	}
}

// Lists and entries the host sends broken are errors naming what is
// wrong; a CA key whose checksum does not match is never returned.
func TestBrokenField62(t *testing.T) {
	k := testCAPK(t)
	exp := hex.EncodeToString([]byte("20301231"))
	for _, tc := range []struct {
		name string
		f62  string
		want error
	}{
		{"empty", "", ErrBadField62},
		{"flag", "34" + "9F0605A000000333" + "9F220108", ErrBadField62},
		{"truncated", "31" + "9F0605A000000333" + "9F2201", ErrBadField62},
		{"no index", "31" + "9F0605A000000333" + "DF0508" + exp + "9F0605A000000333" + "9F220109", ErrBadField62},
		{"index first", "31" + "9F220108" + "9F0605A000000333", ErrBadField62},
		{"short RID", "31" + "9F0604A0000003" + "9F220108", ErrBadField62},
		{"bad expiry", "31" + "9F0605A000000333" + "9F220108" + "DF0508" + hex.EncodeToString([]byte("2030123X")), ErrBadField62},
		{"none but entries", "30" + "9F0605A000000333" + "9F220108", ErrBadField62},
		{"long-form overflow", "31" + "9F06" + "89FFFFFFFFFFFFFFFFFF", ErrBadField62},
	} {
		t.Run("list/"+tc.name, func(t *testing.T) {
			if _, _, err := parseCAPKList(mustHex(t, tc.f62)); !errors.Is(err, tc.want) || !errors.Is(err, ErrMalformed) {
				t.Errorf("%v", err)
			}
		})
	}
	if l, more, err := parseCAPKList([]byte("0")); err != nil || more || l != nil {
		t.Errorf("none: %v %v %v", l, more, err)
	}

	good := capkField(t, k)
	flip := func(at int) []byte { b := bytes.Clone(good); b[at] ^= 1; return b }
	modAt := bytes.Index(good, k.Modulus)
	for _, tc := range []struct {
		name string
		f62  []byte
		want error
	}{
		{"checksum", flip(len(good) - 1), provisioning.ErrCAPKChecksum},
		{"modulus", flip(modAt + 10), provisioning.ErrCAPKChecksum},
		{"not listed", append([]byte("0"), good[1:]...), ErrNotListed},
		{"other key", bytes.Replace(good, []byte{0x9F, 0x22, 0x01, 0x08}, []byte{0x9F, 0x22, 0x01, 0x09}, 1), ErrBadField62},
		{"cut", good[:len(good)-5], ErrBadField62},
		{"twice", append(bytes.Clone(good), 0xDF, 0x04, 0x01, 0x03), ErrBadField62},
		{"no checksum", bytes.Replace(good, append([]byte{0xDF, 0x03, 0x14}, k.Checksum...), nil, 1), ErrBadField62},
	} {
		t.Run("capk/"+tc.name, func(t *testing.T) {
			if key, err := parseCAPK(tc.f62, k.ID()); !errors.Is(err, tc.want) || key.Modulus != nil {
				t.Errorf("%v", err)
			}
		})
	}
	sm := bytes.Replace(good, []byte{0xDF, 0x07, 0x01, 0x01}, []byte{0xDF, 0x07, 0x01, 0x04}, 1)
	if _, err := parseCAPK(sm, k.ID()); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("SM2 key: %v", err)
	}
	// Through the client: the error is the exchange's, the key is not returned.
	var res provisioning.KeyResult
	_, err := exchangeOnce(t, adminKeys(t), answer{fields: map[int]string{39: "00"}, bin: map[int][]byte{62: flip(len(good) - 1)}}, func(c *Client) error {
		var err error
		res, err = c.FetchKey(context.Background(), provisioning.KeyRequest{AdminRequest: adminReq, Key: k.ID()})
		return err
	})
	if !errors.Is(err, provisioning.ErrCAPKChecksum) || res.Key.Modulus != nil {
		t.Errorf("wrong checksum through the client: %+v, %v", res, err)
	}

	app := aidField(t, "9F08020030") // the version as both public apps tag it
	a, err := parseAppParams(app, mustHex(t, unionPayDebit))
	if err != nil || hex.EncodeToString(a.Version) != "0030" {
		t.Errorf("9F08 version: %+v, %v", a, err)
	}
	// The contactless limits as the public POSPs append them: DF19 floor
	// 0.00, DF20 transaction limit 1000.00, DF21 CVM limit 300.00.
	cl := append(append([]byte(nil), app...), mustHex(t, "DF1906000000000000"+"DF2006000000100000"+"DF2106000000030000")...)
	a, err = parseAppParams(cl, mustHex(t, unionPayDebit))
	if err != nil || a.CLFloorLimit == nil || *a.CLFloorLimit != 0 || a.CLTransactionLimit == nil || *a.CLTransactionLimit != 100000 ||
		a.CVMLimit == nil || *a.CVMLimit != 30000 {
		t.Errorf("contactless limits: %+v, %v", a, err)
	}
	if a, err = parseAppParams(app, mustHex(t, unionPayDebit)); err != nil || a.CLFloorLimit != nil || a.CLTransactionLimit != nil || a.CVMLimit != nil {
		t.Errorf("no contactless limits sent: %+v, %v", a, err)
	}
	for _, tc := range []struct {
		name string
		f62  []byte
	}{
		{"CL limit not BCD", bytes.Replace(cl, mustHex(t, "DF2006000000100000"), mustHex(t, "DF20060000001000A0"), 1)},
		{"no TAC", bytes.Replace(app, mustHex(t, "DF13050010000000"), nil, 1)},
		{"other AID", app},
		{"percent not BCD", bytes.Replace(app, mustHex(t, "DF160199"), mustHex(t, "DF16019A"), 1)},
		{"floor limit 3 bytes", bytes.Replace(app, mustHex(t, "9F1B040000C350"), mustHex(t, "9F1B0300C350"), 1)},
		{"target above maximum", bytes.Replace(app, mustHex(t, "DF160199"), mustHex(t, "DF160110"), 1)},
	} {
		want := mustHex(t, unionPayDebit)
		if tc.name == "other AID" {
			want = mustHex(t, unionPayCredit)
		}
		if _, err := parseAppParams(tc.f62, want); !errors.Is(err, ErrBadField62) {
			t.Errorf("aid %s: %v", tc.name, err)
		}
	}
	for _, f62 := range []string{"31" + "9F0603A00000", "34", "31" + "9F0608A0000003"} {
		if _, _, err := parseAIDList(mustHex(t, f62)); !errors.Is(err, ErrBadField62) {
			t.Errorf("aid list %s: %v", f62, err)
		}
	}

	p := DefaultProfile()
	for _, in := range []string{"", "1", "1X60", "126", "9960", "1260126"} {
		if _, err := parseTerminalParams(p, []byte(in)); !errors.Is(err, ErrBadField62) {
			t.Errorf("parameters %q: %v", in, err)
		}
	}
	if _, err := parseTerminalParams(p, []byte("12ab")); !errors.Is(err, ErrBadField62) {
		t.Errorf("timeout not a number: %v", err)
	}
	for _, twice := range []string{"1260" + "1230", "133" + "134"} {
		if _, err := parseTerminalParams(p, []byte(twice)); !errors.Is(err, ErrBadField62) {
			t.Errorf("parameters %q: %v", twice, err)
		}
	}
}

// UploadBatch cannot send what the record does not hold: nothing goes out.
func TestBatchUploadRefusals(t *testing.T) {
	dial := func(context.Context, string, string) (net.Conn, error) {
		t.Error("a refused batch upload was sent")
		return nil, errors.New("no")
	}
	c := newTestClient(t, adminKeys(t), dial)
	ctx := context.Background()
	r := provisioning.BatchUpload{AdminRequest: adminReq, Kind: "sale", Txn: provisioning.TxnRecord{STAN: 3, Amount: 100, Entry: provisioning.EntrySwipe}}
	if _, err := c.UploadBatch(ctx, r); !errors.Is(err, ErrBatchPAN) || !errors.Is(err, ErrRequest) {
		t.Errorf("without the card number: %v", err)
	}
	chip := r
	chip.Txn.Entry = provisioning.EntryChip
	if _, err := c.UploadBatchCard(ctx, chip, pan.MustParse(swipePAN)); !errors.Is(err, ErrRequest) {
		t.Errorf("chip sale: %v", err)
	}
	var fe *FieldError
	big := r
	big.Txn.Amount = 0
	if _, err := c.UploadBatchCard(ctx, big, pan.MustParse(swipePAN)); !errors.As(err, &fe) || fe.Field != 48 {
		t.Errorf("amount 0: %v", err)
	}
	if _, err := c.EndBatchUpload(ctx, provisioning.BatchEnd{AdminRequest: adminReq, Count: 10000}); !errors.As(err, &fe) || fe.Field != 48 {
		t.Errorf("10000 uploaded: %v", err)
	}
	if _, err := c.ListKeys(ctx, provisioning.ListRequest{AdminRequest: adminReq, From: 100}); !errors.As(err, &fe) || fe.Field != 62 {
		t.Errorf("from 100: %v", err)
	}
	if _, err := c.FetchKey(ctx, provisioning.KeyRequest{AdminRequest: adminReq, Key: provisioning.CAPKID{RID: []byte{1}}}); !errors.As(err, &fe) || fe.Field != 62 {
		t.Errorf("short RID: %v", err)
	}
	if _, err := c.EndKeys(ctx, provisioning.AdminRequest{Terminal: terminal, Batch: "12"}); !errors.As(err, &fe) || fe.Field != 60 {
		t.Errorf("bad batch: %v", err)
	}
}

// A sign-off the host refuses comes back as its code, the keys kept.
func TestSignOffRefused(t *testing.T) {
	var ack provisioning.Ack
	var c2 *Client
	_, err := exchangeOnce(t, adminKeys(t), answer{fields: map[int]string{39: "12"}}, func(c *Client) error {
		var err error
		ack, err = c.SignOff(context.Background(), adminReq)
		c2 = c
		return err
	})
	k, _ := c2.ks.LoadKeys()
	if err != nil || ack.RC != "12" || len(k.Working.MAK) == 0 {
		t.Errorf("%+v, %v, MAK kept: %v", ack, err, len(k.Working.MAK) > 0)
	}
}

// The downloads carry field 11 only where the profile says so.
func TestSTANOnDownloads(t *testing.T) {
	p := DefaultProfile()
	p.STANOnDownloads = true
	wire, err := exchangeOnce(t, adminKeys(t), answer{fields: map[int]string{39: "00"}}, func(c *Client) error {
		_, err := c.EndApps(context.Background(), adminReq)
		return err
	}, func(c *Config) { c.Profile = p })
	if _, v := requestMessage(t, wire); err != nil || v.get(11) != "000007" {
		t.Errorf("STAN %q, %v", v.get(11), err)
	}
}
