package cardsim

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/posagent/posagent/agent/card/emv"
)

// TestRetailMACPyEMV pins retailMAC to pyemv's published example of the
// script MAC (sm.generate_command_mac: key 0123456789ABCDEFFEDCBA9876543210,
// command 8424000008 || ATC FFFF || ARQC 1234567890123456).
func TestRetailMACPyEMV(t *testing.T) {
	k, _ := hex.DecodeString(DefaultKey)
	in, _ := hex.DecodeString("8424000008" + "FFFF" + "1234567890123456")
	m, err := retailMAC(k, in)
	if err != nil || hex.EncodeToString(m) != "e07b8df1b4184282" {
		t.Fatalf("%x %v", m, err)
	}
}

// FuzzCDOLData: the card splits whatever a terminal sends against its DOL
// without panicking, and what it accepts covers the data exactly.
func FuzzCDOLData(f *testing.F) {
	f.Add([]byte{0x8A, 0x02, 0x91, 0x0A, 0x95, 0x05, 0x9F, 0x37, 0x04}, make([]byte, 21))
	f.Add([]byte{0x8A, 0x02, 0x95, 0x05, 0x9F, 0x37, 0x04}, make([]byte, 11))
	f.Add([]byte{0x9F}, []byte{1})
	f.Add([]byte{0x9F, 0x81, 0x82, 0x01}, []byte{1})
	f.Fuzz(func(t *testing.T, dol, data []byte) {
		vals, err := dolValues(dol, data)
		if err != nil {
			return
		}
		n := 0
		for _, v := range vals {
			n += len(v)
			if len(v) > 0 && !bytes.Contains(data, v) {
				t.Fatal("a value that is not in the data")
			}
		}
		if n > len(data) {
			t.Fatalf("%d bytes of values from %d of data", n, len(data))
		}
	})
}

// FuzzIssuerScripts: any field 55 parses or fails with ErrScript, and what
// parses re-encodes to scripts that parse the same.
func FuzzIssuerScripts(f *testing.F) {
	f.Add([]byte{0x72, 0x0F, 0x9F, 0x18, 0x04, 0, 0, 0, 1, 0x86, 0x06, 0x84, 0x1E, 0, 0, 0x01, 0xAA})
	f.Add([]byte{0x91, 0x02, 0x30, 0x30, 0x71, 0x00})
	f.Add([]byte{0x71, 0x81})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseIssuerScripts(b)
		if err != nil {
			return
		}
		var again []byte
		for _, x := range s {
			again = append(again, EncodeScript(x)...)
		}
		s2, err := ParseIssuerScripts(again)
		if err != nil || len(s2) != len(s) {
			t.Fatalf("re-encoded scripts: %v", err)
		}
		for i := range s {
			if s[i].Template != s2[i].Template || len(s[i].Commands) != len(s2[i].Commands) {
				t.Fatal("re-encoded scripts differ")
			}
		}
	})
}

// FuzzODACommands: an ODA card (DDA, CDA or qPBOC) takes whatever a
// terminal sends after SELECT — GPO data of any length, INTERNAL
// AUTHENTICATE, GENERATE AC with or without the CDA bit — without
// panicking, and every answer with data is one well-formed TLV template.
func FuzzODACommands(f *testing.F) {
	cards := map[byte]*Profile{}
	for i, name := range []string{"dda", "cda", "qpboc"} {
		p, err := LoadProfile("../../../testdata/cards/oda/" + name + ".yaml")
		if err != nil {
			f.Fatal(err)
		}
		cards[byte(i)] = p
	}
	pdol, _ := hex.DecodeString("26000000" + "000000000100" + "000000000000" + "0156" + "0000000000" + "0156" + "261203" + "00" + "11223344")
	f.Add(byte(0), pdol, []byte{0x00, 0x88, 0x00, 0x00, 0x04, 1, 2, 3, 4, 0x00})
	f.Add(byte(1), pdol, append([]byte{0x80, 0xAE, 0x90, 0x00, 0x1F}, make([]byte, 31)...))
	f.Add(byte(2), pdol, []byte{0x80, 0xAE, 0x40, 0x00, 0x00})
	f.Add(byte(2), []byte{0x80, 0x00}, []byte{0x00, 0x88, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, which byte, gpoData, cmd []byte) {
		p := cards[which%3]
		c, err := New(p)
		if err != nil {
			t.Fatal(err)
		}
		aid, _ := hex.DecodeString(p.Applications[0].AID)
		c.Process(append(append([]byte{0x00, 0xA4, 0x04, 0x00, byte(len(aid))}, aid...), 0x00))
		if len(gpoData) < 250 {
			c.Process(append(append([]byte{0x80, 0xA8, 0x00, 0x00, byte(len(gpoData) + 2), 0x83, byte(len(gpoData))}, gpoData...), 0x00))
		}
		resp, act := c.Process(cmd)
		if act != Answer {
			return
		}
		if len(resp) < 2 {
			t.Fatalf("answer % X", resp)
		}
		if data := resp[:len(resp)-2]; len(data) > 0 && resp[len(resp)-2] == 0x90 {
			objs, err := emv.DecodeTLV(data)
			if err != nil || len(objs) != 1 {
				t.Fatalf("answer data is not one TLV: %v", err)
			}
		}
	})
}
