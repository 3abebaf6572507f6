package acquirer

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/posagent/posagent/agent/testkit/golden"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

var adminReq = provisioning.AdminRequest{Terminal: terminal, STAN: 7, Batch: "000123"}

// adminKeys are the keys of a double-length sign-on.
func adminKeys(t testing.TB) Keys {
	return Keys{TMK: mustHex(t, "0123456789ABCDEFFEDCBA9876543210"), Mode: DoubleDES, Working: WorkingKeys{
		PIK: mustHex(t, "1111111111111111AAAAAAAAAAAAAAAA"),
		MAK: mustHex(t, "2222222222222222BBBBBBBBBBBBBBBB"),
		TDK: mustHex(t, "3333333333333333CCCCCCCCCCCCCCCC")}}
}

// answer is what the tests' host sends back: the request's STAN, TID, MID
// and field 60 echoed (hosts echo them), then fields and bin set, under a
// header whose processing-requirement digit is demand.
type answer struct {
	fields map[int]string
	bin    map[int][]byte
	demand byte
	// edit changes the answer last (to break it).
	edit func(t testing.TB, m *messageEditor)
	// mac, when set, MACs the answer (UnionPay ECB) under it.
	mac Key
}

// messageEditor lets an answer's edit drop or change fields.
type messageEditor struct {
	fields map[int]string
	bin    map[int][]byte
	drop   []int
}

func (a answer) frame(t testing.TB, req Frame) []byte {
	m, err := Unpack(req.Message)
	if err != nil {
		t.Errorf("host: %v", err)
		return nil
	}
	mti, _ := m.GetMTI()
	e := messageEditor{fields: map[int]string{}, bin: map[int][]byte{}}
	for _, id := range []int{11, 41, 42, 60} {
		if v := Get(m, id); v != "" {
			e.fields[id] = v
		}
	}
	for id, v := range a.fields {
		e.fields[id] = v
	}
	for id, v := range a.bin {
		e.bin[id] = v
	}
	if a.edit != nil {
		a.edit(t, &e)
	}
	for _, id := range e.drop {
		delete(e.fields, id)
		delete(e.bin, id)
	}
	r := NewMessage(responseMTI(mti))
	for id, v := range e.fields {
		mustSet(t, r, id, v)
	}
	for id, v := range e.bin {
		mustSetBytes(t, r, id, v)
	}
	var b []byte
	if a.mac != nil {
		b, err = PackMAC(r, MACUnionPayECB, a.mac)
	} else {
		b, err = Pack(r)
	}
	if err != nil {
		t.Errorf("host: %v", err)
		return nil
	}
	h := req.Header
	h[2] = h[2]&0xF0 | a.demand
	out, _ := Frame{TPDU: req.TPDU.Swap(), Header: h, Message: b}.Encode()
	return out
}

// exchangeOnce runs call against a host that answers with a, and returns
// the request as it went on the wire.
func exchangeOnce(t *testing.T, keys Keys, a answer, call func(c *Client) error, edits ...func(*Config)) ([]byte, error) {
	t.Helper()
	dial, got := fakeHost(t, func(req Frame) []byte { return a.frame(t, req) })
	c := newTestClient(t, keys, dial, edits...)
	err := call(c)
	var req Frame
	select {
	case req = <-got:
	default:
		t.Fatalf("nothing was sent (%v)", err)
	}
	wire, _ := req.Encode()
	return wire, err
}

// request60 is the 60.3 code of a request frame.
func request60(t testing.TB, wire []byte) Field60 {
	t.Helper()
	f, err := DecodeFrame(wire)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Unpack(f.Message)
	if err != nil {
		t.Fatal(err)
	}
	f60, err := ParseField60(Get(m, 60))
	if err != nil {
		t.Fatal(err)
	}
	return f60
}

func requestMessage(t testing.TB, wire []byte) (Frame, *messageView) {
	t.Helper()
	f, err := DecodeFrame(wire)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Unpack(f.Message)
	if err != nil {
		t.Fatal(err)
	}
	return f, &messageView{get: func(id int) string { return Get(m, id) }, bytes: func(id int) []byte { return GetBytes(m, id) },
		has: func(id int) bool { _, ok := m.GetFields()[id]; return ok }}
}

type messageView struct {
	get   func(int) string
	bytes func(int) []byte
	has   func(int) bool
}

// opensslSHA1 is the CA key checksum's reference.
func opensslSHA1(t testing.TB, data []byte) []byte {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	cmd := exec.Command(path, "dgst", "-sha1", "-hex")
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	return mustHex(t, f[len(f)-1])
}

// testCAPK is a CA key of the UnionPay RID whose checksum openssl computed.
func testCAPK(t testing.TB) provisioning.CAPK {
	k := provisioning.CAPK{RID: mustHex(t, "A000000333"), Index: 0x08, Expiry: "20301231", HashAlgo: 1, KeyAlgo: 1,
		Modulus: bytes.Repeat(mustHex(t, "B61645EDFD5498FB"), 16), Exponent: []byte{0x03}}
	var in []byte
	in = append(append(append(append(in, k.RID...), k.Index), k.Modulus...), k.Exponent...)
	k.Checksum = opensslSHA1(t, in)
	return k
}

// capkField is field 62 of a 370 answer for k, written out tag by tag.
func capkField(t testing.TB, k provisioning.CAPK) []byte {
	h := "31" + // '1': the key follows
		"9F0605" + hex.EncodeToString(k.RID) +
		"9F2201" + hex.EncodeToString([]byte{k.Index}) +
		"DF0508" + hex.EncodeToString([]byte(k.Expiry)) + // ASCII YYYYMMDD, as CUP sends it
		"DF060101" + "DF070101" +
		"DF028180" + hex.EncodeToString(k.Modulus) + // long-form length: 128 bytes
		"DF0401" + hex.EncodeToString(k.Exponent) +
		"DF0314" + hex.EncodeToString(k.Checksum)
	return mustHex(t, h)
}

const (
	unionPayDebit  = "A000000333010101"
	unionPayCredit = "A000000333010102"
)

// aidField is field 62 of a 380 answer for the UnionPay debit AID.
func aidField(t testing.TB, version string) []byte {
	return mustHex(t, "31"+
		"9F0608"+unionPayDebit+
		"DF010100"+ // ASI 0: partial selection
		version+
		"DF1105D84000A800"+"DF1205D84004F800"+"DF13050010000000"+
		"9F1B040000C350"+ // floor limit 50000 fen
		"DF150400000000"+
		"DF160199"+"DF170120"+ // BCD 99 and 20
		"DF14039F3704"+
		"DF180101"+
		"9F7B06100000000000") // e-cash limit: not the contact kernel's, skipped
}

// procedureCall is one message of the procedure with the answer that
// completes it and what the result must say.
type procedureCall struct {
	name   string
	answer answer
	call   func(t *testing.T, c *Client) error
}

func procedureCalls(t *testing.T) []procedureCall {
	k := testCAPK(t)
	gbkName, err := simplifiedchinese.GBK.NewEncoder().String("上海示例便利店")
	if err != nil {
		t.Fatal(err)
	}
	params := "1260" + "133" + "14" + "02161234567   " + "22" + gbkName + strings.Repeat(" ", 40-len(gbkName)) + "232" + "26" + "\x01\x02\x00\xFF" + "181"
	return []procedureCall{
		{"capk-list", answer{fields: map[int]string{39: "00"}, demand: 5, bin: map[int][]byte{62: mustHex(t, "32"+
			"9F0605A000000333"+"9F220108"+"DF0508"+hex.EncodeToString([]byte("20301231"))+
			"9F0605A000000333"+"9F220109"+"DF0504"+"20291231")}},
			func(t *testing.T, c *Client) error {
				l, err := c.ListKeys(context.Background(), provisioning.ListRequest{AdminRequest: adminReq, From: 0})
				if err == nil && (l.RC != "00" || !l.More || l.Demand != provisioning.DemandICParameters || len(l.Keys) != 2 ||
					l.Keys[0].String() != "A000000333/08" || l.Keys[0].Expiry != "20301231" || l.Keys[1].Index != 9 || l.Keys[1].Expiry != "20291231") {
					t.Errorf("%+v", l)
				}
				return err
			}},
		{"capk", answer{fields: map[int]string{39: "00"}, bin: map[int][]byte{62: capkField(t, k)}},
			func(t *testing.T, c *Client) error {
				r, err := c.FetchKey(context.Background(), provisioning.KeyRequest{AdminRequest: adminReq, Key: k.ID()})
				if err == nil && (r.RC != "00" || !bytes.Equal(r.Key.Modulus, k.Modulus) || !bytes.Equal(r.Key.Checksum, k.Checksum) ||
					r.Key.Expiry != k.Expiry || r.Key.Index != k.Index || r.Key.Verify() != nil) {
					t.Errorf("%+v", r)
				}
				return err
			}},
		{"capk-end", answer{fields: map[int]string{39: "00"}},
			func(t *testing.T, c *Client) error {
				a, err := c.EndKeys(context.Background(), adminReq)
				if err == nil && a.RC != "00" {
					t.Errorf("%+v", a)
				}
				return err
			}},
		{"aid-list", answer{fields: map[int]string{39: "00"}, bin: map[int][]byte{62: mustHex(t, "31"+"9F0608"+unionPayDebit+"9F0608"+unionPayCredit)}},
			func(t *testing.T, c *Client) error {
				l, err := c.ListApps(context.Background(), provisioning.ListRequest{AdminRequest: adminReq, From: 2})
				if err == nil && (l.More || len(l.AIDs) != 2 || hex.EncodeToString(l.AIDs[1]) != strings.ToLower(unionPayCredit)) {
					t.Errorf("%+v", l)
				}
				return err
			}},
		{"aid", answer{fields: map[int]string{39: "00"}, bin: map[int][]byte{62: aidField(t, "9F09020030")}},
			func(t *testing.T, c *Client) error {
				r, err := c.FetchApp(context.Background(), provisioning.AppRequest{AdminRequest: adminReq, AID: mustHex(t, unionPayDebit)})
				a := r.App
				if err == nil && (!a.PartialMatch || hex.EncodeToString(a.Version) != "0030" || hex.EncodeToString(a.TACDenial) != "0010000000" ||
					a.FloorLimit != 50000 || a.Threshold != 0 || a.MaxTargetPercent != 99 || a.TargetPercent != 20 ||
					hex.EncodeToString(a.DefaultDDOL) != "9f3704" || !a.OnlinePIN) {
					t.Errorf("%+v", a)
				}
				return err
			}},
		{"aid-end", answer{fields: map[int]string{39: "00"}},
			func(t *testing.T, c *Client) error {
				_, err := c.EndApps(context.Background(), adminReq)
				return err
			}},
		{"parameters", answer{fields: map[int]string{39: "00"}, bin: map[int][]byte{62: []byte(params)}},
			func(t *testing.T, c *Client) error {
				r, err := c.TerminalParameters(context.Background(), adminReq)
				p := r.Params
				if err == nil && (p.HostTimeout != time.Minute || p.MaxReversals != 3 || p.MerchantName != "上海示例便利店" ||
					p.Other["13"] != "3" || p.Other["14"] != "02161234567" || p.Other["26"] != "010200FF" || p.Other["18"] != "1") {
					t.Errorf("%+v", p)
				}
				return err
			}},
		{"status-upload", answer{fields: map[int]string{39: "00"}},
			func(t *testing.T, c *Client) error {
				_, err := c.UploadStatus(context.Background(), provisioning.StatusUpload{AdminRequest: adminReq,
					Params: provisioning.TerminalParams{HostTimeout: 30 * time.Second, MaxReversals: 3, Other: map[string]string{"14": "02161234567", "18": "1"}}})
				return err
			}},
		{"settle", answer{fields: map[int]string{48: "000000000100001000000000000000" + "2" + strings.Repeat("0", 30) + "1"}, demand: 1},
			func(t *testing.T, c *Client) error {
				r, err := c.Settle(context.Background(), provisioning.SettleRequest{AdminRequest: adminReq,
					Domestic: provisioning.Totals{DebitCount: 1, DebitAmount: 100}})
				if err == nil && (r.RC != "00" || r.DomesticBalanced || !r.ForeignBalanced || r.Demand != provisioning.DemandParameters) {
					t.Errorf("%+v", r)
				}
				return err
			}},
		{"batch-upload", answer{fields: map[int]string{39: "00"}},
			func(t *testing.T, c *Client) error {
				_, err := c.UploadBatchCard(context.Background(), provisioning.BatchUpload{AdminRequest: adminReq, Kind: "void",
					Txn: provisioning.TxnRecord{STAN: 3, Batch: "000123", Amount: 100}}, pan.MustParse(swipePAN))
				return err
			}},
		{"batch-end-unbalanced", answer{fields: map[int]string{39: "00"}},
			func(t *testing.T, c *Client) error {
				_, err := c.EndBatchUpload(context.Background(), provisioning.BatchEnd{AdminRequest: adminReq, Count: 2})
				return err
			}},
		{"batch-end-balanced", answer{fields: map[int]string{39: "00"}},
			func(t *testing.T, c *Client) error {
				_, err := c.EndBatchUpload(context.Background(), provisioning.BatchEnd{AdminRequest: adminReq, Balanced: true})
				return err
			}},
		{"sign-off", answer{fields: map[int]string{39: "00"}},
			func(t *testing.T, c *Client) error {
				a, err := c.SignOff(context.Background(), adminReq)
				if k, _ := c.ks.LoadKeys(); err == nil && (a.RC != "00" || len(k.Working.MAK) != 0 || len(k.TMK) == 0) {
					t.Errorf("%+v, keys %v", a, k)
				}
				return err
			}},
	}
}

// TestGoldenProcedure pins every request of the procedure byte for byte
// (testdata/golden/*.txt, annotated per field; go test -update rewrites
// them, review the diff) and reads its answer.
func TestGoldenProcedure(t *testing.T) {
	for _, pc := range procedureCalls(t) {
		t.Run(pc.name, func(t *testing.T) {
			wire, err := exchangeOnce(t, adminKeys(t), pc.answer, func(c *Client) error { return pc.call(t, c) })
			if err != nil {
				t.Fatal(err)
			}
			text := annotateFrame(t, wire)
			golden.Check(t, filepath.Join("testdata", "golden", pc.name+".txt"), text)
			if !bytes.Equal(annotated(t, text), wire) {
				t.Fatal("annotation does not read back")
			}
		})
	}
}

// The requests' contents, stated independently of the golden files.
func TestProcedureRequests(t *testing.T) {
	codes := map[string]string{}
	fields := map[string]func(t *testing.T, v *messageView){}
	codes["capk-list"], fields["capk-list"] = "372", func(t *testing.T, v *messageView) {
		if string(v.bytes(62)) != "100" || v.has(11) {
			t.Errorf("62 %q, STAN %v", v.bytes(62), v.has(11))
		}
	}
	codes["capk"], fields["capk"] = "370", func(t *testing.T, v *messageView) {
		if got := hex.EncodeToString(v.bytes(62)); got != "9f0605a0000003339f220108" {
			t.Errorf("62 %s", got)
		}
	}
	codes["capk-end"], fields["capk-end"] = "371", func(t *testing.T, v *messageView) {
		if v.has(62) || v.has(11) {
			t.Error("end of CA keys carries 62 or 11")
		}
	}
	codes["aid-list"], fields["aid-list"] = "382", func(t *testing.T, v *messageView) {
		if string(v.bytes(62)) != "102" {
			t.Errorf("62 %q", v.bytes(62))
		}
	}
	codes["aid"], fields["aid"] = "380", func(t *testing.T, v *messageView) {
		if got := strings.ToUpper(hex.EncodeToString(v.bytes(62))); got != "9F0608"+unionPayDebit {
			t.Errorf("62 %s", got)
		}
	}
	codes["aid-end"], fields["aid-end"] = "381", nil
	codes["parameters"], fields["parameters"] = "360", nil
	codes["status-upload"], fields["status-upload"] = "362", func(t *testing.T, v *messageView) {
		want := "011" + "021" + "031" + "041" + "051" + "1160" + "1230" + "133" +
			"1402161234567   " + "15" + strings.Repeat(" ", 14) + "16" + strings.Repeat(" ", 14) + "17" + strings.Repeat(" ", 14) +
			"181" + "1900" + "200" + "210" + "232" + "251" + "2710" + "51000000000000"
		if got := string(v.bytes(62)); got != want {
			t.Errorf("62\n got %q\nwant %q", got, want)
		}
	}
	codes["settle"], fields["settle"] = "201", func(t *testing.T, v *messageView) {
		if want := shellPrintf(t, "%012d%03d%012d%03d0%012d%03d%012d%03d0", "100", "1", "0", "0", "0", "0", "0", "0"); v.get(48) != want {
			t.Errorf("48 %q, printf %q", v.get(48), want)
		}
		if v.get(11) != "000007" || v.get(49) != "156" || v.get(63) != "01 " {
			t.Errorf("11 %q 49 %q 63 %q", v.get(11), v.get(49), v.get(63))
		}
	}
	codes["batch-upload"], fields["batch-upload"] = "201", func(t *testing.T, v *messageView) {
		if want := shellPrintf(t, "01%s%06d%020d%012d", "00", "3", swipePAN, "100"); v.get(48) != want || v.get(11) != "000007" {
			t.Errorf("48 %q, printf %q", v.get(48), want)
		}
	}
	codes["batch-end-unbalanced"], fields["batch-end-unbalanced"] = "202", func(t *testing.T, v *messageView) {
		if v.get(48) != "0002" || v.get(11) != "000007" {
			t.Errorf("48 %q", v.get(48))
		}
	}
	codes["batch-end-balanced"], fields["batch-end-balanced"] = "207", func(t *testing.T, v *messageView) {
		if v.get(48) != "0000" {
			t.Errorf("48 %q", v.get(48))
		}
	}
	codes["sign-off"], fields["sign-off"] = "002", func(t *testing.T, v *messageView) {
		if v.get(11) != "000007" {
			t.Errorf("11 %q", v.get(11))
		}
	}
	for _, pc := range procedureCalls(t) {
		t.Run(pc.name, func(t *testing.T) {
			wire, err := exchangeOnce(t, adminKeys(t), pc.answer, func(c *Client) error { return pc.call(t, c) })
			if err != nil {
				t.Fatal(err)
			}
			f, v := requestMessage(t, wire)
			f60 := request60(t, wire)
			if f60.Type != "00" || f60.Batch != "000123" || f60.Code != codes[pc.name] || f60.Reader != "" {
				t.Errorf("60 = %+v, want 00 000123 %s", f60, codes[pc.name])
			}
			if v.get(41) != terminal.TID || v.get(42) != terminal.MID || v.has(64) || f.Header != DefaultHeader {
				t.Errorf("41 %q 42 %q, MACed %v, header %X", v.get(41), v.get(42), v.has(64), f.Header)
			}
			if chk := fields[pc.name]; chk != nil {
				chk(t, v)
			}
		})
	}
}

// shellPrintf is printf(1), an implementation of the field formats that is
// not this package's.
func shellPrintf(t testing.TB, format string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("printf")
	if err != nil {
		t.Skip("no printf(1)")
	}
	out, err := exec.Command(path, append([]string{format}, args...)...).Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// A profile whose every code differs from the common one: each message
// goes out with its code from the table, and the built-in centerm profile
// downloads terminal parameters with 364.
func TestProfileCodesOnWire(t *testing.T) {
	p := DefaultProfile()
	p.Name = "renumbered"
	p.Codes = Codes{SignOnSingle: "901", SignOnDouble: "903", SignOnDoubleTDK: "904", SignOff: "902", Echo: "931",
		Settle: "921", BatchDetail: "929", BatchEndUnbalanced: "922", BatchEndBalanced: "927", ICUpload: "923",
		ICUploadUnbalanced: "925", ScriptResult: "995", Params: "960", StatusUpload: "962", CAPKQuery: "972", CAPKFetch: "970",
		CAPKEnd: "971", AIDQuery: "982", AIDFetch: "980", AIDEnd: "351"}
	want := map[string]string{"capk-list": "972", "capk": "970", "capk-end": "971", "aid-list": "982", "aid": "980",
		"aid-end": "351", "parameters": "960", "status-upload": "962", "settle": "921", "batch-upload": "929",
		"batch-end-unbalanced": "922", "batch-end-balanced": "927", "sign-off": "902"}
	for _, pc := range procedureCalls(t) {
		wire, err := exchangeOnce(t, adminKeys(t), pc.answer, func(c *Client) error { return pc.call(t, c) }, func(c *Config) { c.Profile = p })
		if err != nil {
			t.Fatalf("%s: %v", pc.name, err)
		}
		if got := request60(t, wire).Code; got != want[pc.name] {
			t.Errorf("%s: 60.3 %s, want %s", pc.name, got, want[pc.name])
		}
	}
	for mode, code := range map[KeyMode]string{SingleDES: "901", DoubleNoTDK: "903", DoubleDES: "904"} {
		wire := signOnRequest(t, func(c *Config) { c.Profile, c.KeyMode = p, mode }, "")
		if got := request60(t, wire).Code; got != code {
			t.Errorf("sign-on %s: 60.3 %s, want %s", mode, got, code)
		}
	}
	echo := answer{fields: map[int]string{39: "00"}}
	dial, got := fakeHost(t, func(req Frame) []byte { return echo.frame(t, req) })
	c := newTestClient(t, adminKeys(t), dial, func(c *Config) { c.Profile = p })
	if err := c.Echo(context.Background(), terminal); err != nil {
		t.Fatal(err)
	}
	req := <-got
	wire, _ := req.Encode()
	if code := request60(t, wire).Code; code != "931" {
		t.Errorf("echo: 60.3 %s", code)
	}

	centerm, ok := LookupProfile("centerm")
	if !ok {
		t.Fatal("no centerm profile")
	}
	params := "1260" + "2599" + "27ABC" + "4112345678901234567890ABCD"
	// Centerm ends the download with 361: two requests, the parameters'
	// answer and the end's.
	pa := answer{fields: map[int]string{39: "00"}, bin: map[int][]byte{62: []byte(params)}}
	ea := answer{fields: map[int]string{39: "00"}}
	dial, got = fakeHost(t, func(req Frame) []byte {
		if request60(t, mustEncode(t, req)).Code == "361" {
			return ea.frame(t, req)
		}
		return pa.frame(t, req)
	})
	var wires [][]byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		for f := range got {
			wires = append(wires, mustEncode(t, f))
			if len(wires) == 2 {
				return
			}
		}
	}()
	c = newTestClient(t, adminKeys(t), dial, func(c *Config) { c.Profile = centerm })
	r, err := c.TerminalParameters(context.Background(), adminReq)
	if err != nil {
		t.Fatal(err)
	}
	if r.Params.HostTimeout != time.Minute || r.Params.Other["25"] != "99" || r.Params.Other["27"] != "ABC" ||
		r.Params.Other["41"] != "12345678901234567890ABCD" {
		t.Errorf("%+v", r.Params)
	}
	<-done
	wire = wires[0]
	if code := request60(t, wire).Code; code != "364" {
		t.Errorf("centerm parameters: 60.3 %s", code)
	}
	if code := request60(t, wires[1]).Code; code != "361" {
		t.Errorf("centerm parameters end: 60.3 %s", code)
	}
	golden.Check(t, filepath.Join("testdata", "golden", "parameters-centerm.txt"), annotateFrame(t, wire))
	// The common table knows no tag 27: the same answer is refused there.
	_, err = exchangeOnce(t, adminKeys(t), answer{fields: map[int]string{39: "00"}, bin: map[int][]byte{62: []byte(params)}},
		func(c *Client) error { _, err := c.TerminalParameters(context.Background(), adminReq); return err })
	if !errors.Is(err, ErrBadField62) {
		t.Errorf("common profile, tag 25 of width 2: %v", err)
	}
}

// signOnRequest is the wire of a sign-on with batch, its answer a decline.
func signOnRequest(t *testing.T, edit func(*Config), batch string) []byte {
	t.Helper()
	wire, err := exchangeOnce(t, Keys{TMK: adminKeys(t).TMK}, answer{fields: map[int]string{39: "96"}}, func(c *Client) error {
		_, err := c.SignOn(context.Background(), provisioning.SignOnRequest{Terminal: terminal, STAN: 1, Batch: batch})
		return err
	}, edit)
	if err != nil {
		t.Fatal(err)
	}
	return wire
}

func mustEncode(t testing.TB, f Frame) []byte {
	t.Helper()
	b, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// An answer that arrived but does not read names the flow's "data the
// terminal cannot use", not "no answer", and is still an ExchangeError
// whose request was sent.
func TestBadAnswerIsDownloadData(t *testing.T) {
	_, err := exchangeOnce(t, adminKeys(t), answer{fields: map[int]string{39: "00"}, bin: map[int][]byte{62: []byte("25")}},
		func(c *Client) error { _, err := c.TerminalParameters(context.Background(), adminReq); return err })
	var ce provisioning.CodedError
	var ee *ExchangeError
	if !errors.As(err, &ce) || ce.FailureCode() != "E_DOWNLOAD_DATA" || !errors.As(err, &ee) || !ee.Sent || !errors.Is(err, ErrBadField62) {
		t.Fatalf("%v", err)
	}
}
