package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/acquirer"
)

func TestDecodeTrack(t *testing.T) {
	const track2 = ";6222021234567890128=30122011234567890?"
	var out, errs bytes.Buffer
	if code := run([]string{"decode", "track", track2}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	var got struct {
		PAN, Expiry, ServiceCode string
		Valid, Chip              bool
	}
	if err := json.Unmarshal(out.Bytes(), &struct {
		PAN         *string `json:"pan"`
		Expiry      *string `json:"expiry"`
		ServiceCode *string `json:"service_code"`
		Valid       *bool   `json:"valid"`
		Chip        *bool   `json:"chip"`
	}{&got.PAN, &got.Expiry, &got.ServiceCode, &got.Valid, &got.Chip}); err != nil {
		t.Fatal(err)
	}
	if got.PAN != "622202*********0128" || got.Expiry != "3012" || got.ServiceCode != "201" || !got.Valid || !got.Chip {
		t.Errorf("decoded %+v\n%s", got, out.String())
	}
	if strings.Contains(out.String(), "6222021234567890128") {
		t.Error("full PAN printed without --reveal")
	}

	out.Reset()
	if code := run([]string{"decode", "track", "--reveal", track2}, &out, &errs); code != 0 || !strings.Contains(out.String(), "6222021234567890128") {
		t.Errorf("--reveal: exit %d\n%s", code, out.String())
	}

	out.Reset()
	errs.Reset()
	if code := run([]string{"decode", "track", ";6222021234567890127=30122011234567890?"}, &out, &errs); code != 1 || !strings.Contains(out.String(), "luhn") {
		t.Errorf("bad Luhn: exit %d\n%s%s", code, out.String(), errs.String())
	}
	for _, args := range [][]string{{"decode"}, {"decode", "iso"}, {"decode", "track"}} {
		if code := run(args, &out, &errs); code != 2 {
			t.Errorf("posctl %v = %d, want 2", args, code)
		}
	}
}

func TestDecodeTLV(t *testing.T) {
	// 70 { 5A PAN, 5F20 name, 5F24 expiry }
	const rec = "701E" + "5A0A6222021234567890128F" + "5F2009" + "5A48414E472F53414E" + "5F2403301231"
	var out, errs bytes.Buffer
	if code := run([]string{"decode", "tlv", rec}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	if !json.Valid(out.Bytes()) || !strings.Contains(out.String(), "5F24") || strings.Contains(out.String(), "6222021234567890128") {
		t.Errorf("output:\n%s", out.String())
	}
	for _, bad := range []string{"zz", "5A0A62"} {
		out.Reset()
		errs.Reset()
		code := run([]string{"decode", "tlv", bad}, &out, &errs)
		if code != 1 || strings.Count(strings.TrimSpace(errs.String()), "\n") != 0 || errs.Len() == 0 {
			t.Errorf("decode tlv %q = %d, stderr %q; want exit 1 and one line", bad, code, errs.String())
		}
	}
}

// TestDecodeTLVNamesBits: field 55 of a sale decoded names every TVR and
// TSI bit set and the CVM results.
func TestDecodeTLVNamesBits(t *testing.T) {
	// 95 TVR 8000048000, 9B TSI 6800, 9F34 020000, 9F33 606800.
	const ic = "95058000048000" + "9B026800" + "9F3403020000" + "9F3303606800"
	var out, errs bytes.Buffer
	if code := run([]string{"decode", "tlv", ic}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	var nodes []struct{ Tag, Meaning string }
	if err := json.Unmarshal(out.Bytes(), &nodes); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"95":   "offline data authentication was not performed; online PIN entered (online CVM captured); transaction exceeds floor limit",
		"9B":   "cardholder verification was performed; card risk management was performed; terminal risk management was performed",
		"9F34": "enciphered PIN verified online, always; result unknown",
		"9F33": "magnetic stripe; IC with contacts; enciphered PIN for online verification; signature (paper); no CVM required",
	}
	if len(nodes) != len(want) {
		t.Fatalf("%d objects:\n%s", len(nodes), out.String())
	}
	for _, n := range nodes {
		if n.Meaning != want[n.Tag] {
			t.Errorf("%s: %q, want %q", n.Tag, n.Meaning, want[n.Tag])
		}
	}
}

// saleFrame is the golden UnionPay sale of agent/acquirer's tests (see its
// annotated layout there), with a made-up MAC: decoding does not check it.
const saleFrame = "006F 6000030000 603100310700 0200 7024068000C08211" +
	"19 62220212345678901230 000000 000000000001 000002 2812 0520 0001 00" +
	"3132333435363738 383938313030303132333430303031 313536" +
	"0015 9F26081122334455667788 9F270180 0013 22000123000500 0102030405060708"

func TestDecodeISO8583(t *testing.T) {
	message := strings.Join(strings.Fields(saleFrame), "")[4+10+12:] // from the MTI on
	for name, in := range map[string][]string{
		"frame":      {saleFrame},
		"message":    {message},
		"frame args": strings.Fields(saleFrame),
	} {
		var out, errs bytes.Buffer
		if code := run(append([]string{"decode", "iso8583", "--spec", "unionpay"}, in...), &out, &errs); code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, errs.String())
		}
		var got struct {
			MTI    string         `json:"mti"`
			TPDU   string         `json:"tpdu"`
			Fields map[string]any `json:"fields"`
		}
		if err := json.Unmarshal(out.Bytes(), &got); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out.String())
		}
		if got.MTI != "0200" || got.Fields["2"] != "622202*********0123" || got.Fields["41"] != "12345678" ||
			got.Fields["4"] != "000000000001" || got.Fields["42"] != "898100012340001" {
			t.Errorf("%s: decoded %+v", name, got)
		}
		if (name == "message") != (got.TPDU == "") {
			t.Errorf("%s: tpdu %q", name, got.TPDU)
		}
		tlvs, ok := got.Fields["55"].([]any)
		if !ok || len(tlvs) != 2 {
			t.Errorf("%s: field 55 is not a 2-element TLV list: %v", name, got.Fields["55"])
		}
		if strings.Contains(out.String(), "6222021234567890123") {
			t.Errorf("%s: full PAN printed without --reveal", name)
		}
	}

	var out, errs bytes.Buffer
	if code := run([]string{"decode", "iso8583", "--reveal", saleFrame}, &out, &errs); code != 0 || !strings.Contains(out.String(), "6222021234567890123") {
		t.Errorf("--reveal: exit %d\n%s%s", code, out.String(), errs.String())
	}
}

func TestDecodeISO8583Bad(t *testing.T) {
	message := strings.Join(strings.Fields(saleFrame), "")[4+10+12:]
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"not hex", []string{"zz6222021234567890123"}, 1, "not hex"},
		{"truncated in field 55", []string{message[:len(message)-40]}, 1, "55"},
		{"truncated in field 2", []string{message[:30]}, 1, "field 2"},
		{"other spec", []string{"--spec", "visa", message}, 2, "unknown spec"},
		{"no input", nil, 2, "usage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			code := run(append([]string{"decode", "iso8583"}, tc.args...), &out, &errs)
			if code != tc.code || !strings.Contains(errs.String(), tc.want) {
				t.Errorf("exit %d, want %d; stderr %q, want it to mention %q", code, tc.code, errs.String(), tc.want)
			}
			if strings.Contains(errs.String(), "6222021234567890123") {
				t.Errorf("error echoes the PAN: %s", errs.String())
			}
			if lines := strings.Count(strings.TrimSpace(errs.String()), "\n"); tc.code == 1 && lines != 0 {
				t.Errorf("want a one-line error, got %d lines", lines+1)
			}
		})
	}
}

// cardholderTLV holds every EMV object that carries cardholder data, each
// with a value that must not appear in masked output.
var cardholderTLV = map[string]string{
	"5A":   "6222021234567890128F",           // PAN
	"57":   "6222021234567890128D30122011",   // track 2 equivalent
	"56":   "42363232323032313233343536",     // track 1
	"5F20": "5A48414E472F53414E",             // cardholder name
	"9F0B": "5A48414E472F53414E2F4C4F4E47",   // cardholder name extended
	"9F1F": "3132333435363738",               // track 1 discretionary data
	"9F20": "998877665544",                   // track 2 discretionary data
	"9F6B": "6222021234567890128D3012201199", // track 2 data
}

func cardholderTLVHex() string {
	var b strings.Builder
	for _, tag := range []string{"5A", "57", "56", "5F20", "9F0B", "9F1F", "9F20", "9F6B"} {
		v := cardholderTLV[tag]
		fmt.Fprintf(&b, "%s%02X%s", tag, len(v)/2, v)
	}
	return b.String()
}

// TestDecodeMasksCardholderData: decode tlv and field 55 of decode iso8583
// mask the PAN, the tracks and their discretionary data and the names,
// every one of them, and --reveal shows them.
func TestDecodeMasksCardholderData(t *testing.T) {
	tlv := cardholderTLVHex()
	m := acquirer.NewMessage("0200")
	for id, v := range map[int]string{3: "000000", 4: "000000000001", 11: "000002", 41: "12345678", 42: "898100012340001"} {
		if err := acquirer.Set(m, id, v); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := hex.DecodeString(tlv)
	if err := acquirer.SetBytes(m, 55, raw); err != nil {
		t.Fatal(err)
	}
	msg, err := acquirer.Pack(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"decode", "tlv"}, {"decode", "iso8583"}} {
		in := tlv
		if cmd[1] == "iso8583" {
			in = hex.EncodeToString(msg)
		}
		var out, errs bytes.Buffer
		if code := run(append(cmd, in), &out, &errs); code != 0 {
			t.Fatalf("%v: exit %d: %s", cmd, code, errs.String())
		}
		for tag, v := range cardholderTLV {
			if strings.Contains(strings.ToUpper(out.String()), v) {
				t.Errorf("%v shows %s in clear:\n%s", cmd, tag, out.String())
			}
		}
		out.Reset()
		if code := run(append(append(cmd, "--reveal"), in), &out, &errs); code != 0 {
			t.Fatalf("%v --reveal: exit %d: %s", cmd, code, errs.String())
		}
		for tag, v := range cardholderTLV {
			if !strings.Contains(strings.ToUpper(out.String()), v) {
				t.Errorf("%v --reveal hides %s:\n%s", cmd, tag, out.String())
			}
		}
	}
}
