package emv_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/drivers/cardreader/cardreadertest"
)

func TestParseIssuerResponse(t *testing.T) {
	x := cardreadertest.X
	auth := "910A" + "0102030405060708" + "3030"
	block := "8609 841E0000 04 AABBCCDD" // APPLICATION BLOCK with its MAC
	for _, tc := range []struct {
		name, in string
		auth     string
		scripts  string // template:id:commands per script
		err      bool
	}{
		{name: "empty", in: ""},
		{name: "91 only", in: auth, auth: "01020304050607083030"},
		{name: "91 of 8 and 16 bytes", in: "9108 0102030405060708", auth: "0102030405060708"},
		{name: "scripts in order", in: auth + "7212 9F1804 11223344" + block + "710B" + block,
			auth: "01020304050607083030", scripts: "72:11223344:1 71::1"},
		{name: "unknown objects ignored", in: "8A023030" + "710F DF7F0101" + block + "9F1801AA" + auth,
			auth: "01020304050607083030", scripts: "71::1"},
		{name: "padding between objects", in: "00" + auth + "FF", auth: "01020304050607083030"},
		{name: "script without commands", in: "7107 9F1804 01020304", scripts: "71:01020304:0"},
		{name: "91 too short", in: "9107 01020304050607", err: true},
		{name: "91 too long", in: "9111 0102030405060708090A0B0C0D0E0F1011", err: true},
		{name: "91 twice", in: auth + auth, err: true},
		{name: "9F18 of 3 bytes", in: "7106 9F1803 112233", err: true},
		{name: "9F18 twice", in: "710E 9F1804 11223344 9F1804 11223344", err: true},
		{name: "command of 4 bytes", in: "7106 8604 841E0000", err: true},
		{name: "command with a wrong Lc", in: "7109 8607 841E0000 04 AABB", err: true},
		{name: "command with Lc 0 and data", in: "7108 8606 841E0000 00 AA", err: true},
		{name: "truncated TLV", in: "7109 8607 841E", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := x(tc.in)
			r, err := emv.ParseIssuerResponse(in)
			if tc.err {
				if !errors.Is(err, emv.ErrIssuerData) || r.Auth != nil || r.Scripts != nil {
					t.Fatalf("%+v %v, want ErrIssuerData and nothing", r, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if emv.Hex(r.Auth) != tc.auth {
				t.Errorf("91 %X, want %s", r.Auth, tc.auth)
			}
			var got []string
			for _, s := range r.Scripts {
				got = append(got, strings.Join([]string{s.Template.String(), emv.Hex(s.ID), string(rune('0' + len(s.Commands)))}, ":"))
			}
			if strings.Join(got, " ") != tc.scripts {
				t.Errorf("scripts %v, want %s", got, tc.scripts)
			}
			// The result is a copy: the caller's buffer may be reused.
			for i := range in {
				in[i] = 0xEE
			}
			if tc.auth != "" && emv.Hex(r.Auth) != tc.auth {
				t.Error("91 aliases the input")
			}
		})
	}
}

func TestParseScriptCommand(t *testing.T) {
	for _, tc := range []struct {
		in        string
		data      string
		ne        int
		errWanted bool
	}{
		{in: "841E0000 04 AABBCCDD", data: "AABBCCDD"},
		{in: "04DA9F4F 03 0102 03 00", data: "010203", ne: 256},
		{in: "04DA9F4F 02 0102 10", data: "0102", ne: 16},
		{in: "80CA9F36 00", ne: 256},
		{in: "80CA9F36 05", ne: 5},
		{in: "841E0000", errWanted: true},
		{in: "841E0000 04 AABBCC", errWanted: true},
		{in: "841E0000 02 AABBCCDD", errWanted: true},
		{in: "841E0000 00 AA", errWanted: true},
	} {
		b := cardreadertest.X(tc.in)
		c, err := emv.ParseScriptCommand(b)
		if tc.errWanted {
			if !errors.Is(err, emv.ErrIssuerData) {
				t.Errorf("%s: %v, want ErrIssuerData", tc.in, err)
			}
			continue
		}
		if err != nil || emv.Hex(c.Data) != tc.data || c.Ne != tc.ne || c.CLA != b[0] || c.INS != b[1] || c.P1 != b[2] || c.P2 != b[3] {
			t.Errorf("%s: %+v %v", tc.in, c, err)
			continue
		}
		if enc, err := c.Bytes(); err != nil || !bytes.Equal(enc, b) {
			t.Errorf("%s: encodes to %X %v", tc.in, enc, err)
		}
	}
}

// FuzzParseIssuerResponse: host bytes never panic the parser, and whatever
// it accepts has the shape the kernel relies on.
func FuzzParseIssuerResponse(f *testing.F) {
	for _, s := range []string{
		"",
		"910A01020304050607083030",
		"910A0102030405060708303072129F1804112233448609841E000004AABBCCDD",
		"710B8609841E000004AABBCCDD",
		"7106860484 1E0000",
		"8A023030710FDF7F01018609841E000004AABBCCDD",
		"71819F18041122334486",
		"9111" + strings.Repeat("00", 17),
	} {
		f.Add(cardreadertest.X(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := emv.ParseIssuerResponse(b)
		if err != nil {
			if !errors.Is(err, emv.ErrIssuerData) || r.Auth != nil || r.Scripts != nil {
				t.Fatalf("error %v with a result", err)
			}
			return
		}
		if r.Auth != nil && (len(r.Auth) < 8 || len(r.Auth) > 16) {
			t.Fatalf("91 of %d bytes accepted", len(r.Auth))
		}
		for _, s := range r.Scripts {
			if s.Template != 0x71 && s.Template != 0x72 || s.ID != nil && len(s.ID) != 4 {
				t.Fatalf("script %v id %d bytes", s.Template, len(s.ID))
			}
			for _, c := range s.Commands {
				cmd, err := emv.ParseScriptCommand(c)
				if err != nil {
					t.Fatal(err)
				}
				if enc, err := cmd.Bytes(); err != nil || !bytes.Equal(enc, c) {
					t.Fatalf("command %X re-encodes to %X", c, enc)
				}
			}
		}
	})
}

// FuzzParseScriptCommand: an accepted command is sent exactly as the
// issuer wrote it.
func FuzzParseScriptCommand(f *testing.F) {
	for _, s := range []string{"841E000004AABBCCDD", "04DA9F4F030102030 0", "80CA9F3600", "841E0000", "841E000002AA", ""} {
		f.Add(cardreadertest.X(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := emv.ParseScriptCommand(b)
		if err != nil {
			if !errors.Is(err, emv.ErrIssuerData) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		enc, err := c.Bytes()
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("%X re-encodes to %X %v", b, enc, err)
		}
	})
}
