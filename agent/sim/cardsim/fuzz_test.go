package cardsim

import (
	"bytes"
	"encoding/hex"
	"testing"
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
