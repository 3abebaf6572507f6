package acquirer

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/posagent/posagent/provisioning"
)

// FuzzLoadKeys: the key file's parser never panics, refuses what it cannot
// use with ErrKeyFile alone (never quoting the file), and what it accepts
// it writes back so that it reads the same keys again.
func FuzzLoadKeys(f *testing.F) {
	tmk := Key{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10}
	good, err := encodeKeyFile(Keys{TMK: tmk, Mode: DoubleDES, Working: WorkingKeys{
		PIK: bytes.Repeat([]byte{0x11}, 16), MAK: bytes.Repeat([]byte{0x22}, 16), TDK: bytes.Repeat([]byte{0x33}, 16)}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"schema":2,"tmk":"0123456789abcdeffedcba9876543210"}`))
	f.Add([]byte(`{"schema":3,"tmk":"0123456789abcdef","tmk_kcv":"d5d44f"}`))
	f.Add([]byte(`{"schema":1,"tmk":"0123456789abcdef","mak":"2222222222222222"}`))
	f.Add([]byte(`{"schema":3,"tmk":"0123`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		in := append([]byte(nil), b...)
		k, err := decodeKeyFile(b)
		if err != nil {
			if !errors.Is(err, ErrKeyFile) || err.Error() != ErrKeyFile.Error() {
				t.Fatalf("error %v, want exactly ErrKeyFile", err)
			}
			return
		}
		if !bytes.Equal(b, in) {
			t.Fatal("the parser changed its input")
		}
		if !validKeyLen(len(k.TMK)) {
			t.Fatalf("accepted a TMK of %d bytes", len(k.TMK))
		}
		again, err := encodeKeyFile(k)
		if err != nil {
			t.Fatalf("accepted keys do not encode: %v", err)
		}
		k2, err := decodeKeyFile(again)
		if err != nil {
			t.Fatalf("re-read: %v\n%s", err, again)
		}
		if !bytes.Equal(k.TMK, k2.TMK) || k.Mode != k2.Mode || !bytes.Equal(k.Working.PIK, k2.Working.PIK) ||
			!bytes.Equal(k.Working.MAK, k2.Working.MAK) || !bytes.Equal(k.Working.TDK, k2.Working.TDK) {
			t.Fatalf("round trip changed the keys: %v / %v", k, k2)
		}
	})
}

// FuzzSignOnAnswer: whatever the host answers a sign-on in fields 39, 60
// and 62 (and the clock fields), the client neither panics nor stores
// working keys that did not all pass their check values; the field-62 and
// field-60 parsers alone never panic on any bytes.
func FuzzSignOnAnswer(f *testing.F) {
	tmk := Key{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10}
	wk := WorkingKeys{PIK: bytes.Repeat([]byte{0x11}, 16), MAK: bytes.Repeat([]byte{0x22}, 16), TDK: bytes.Repeat([]byte{0x33}, 16)}
	good, err := EncryptWorkingKeys(tmk, DoubleDES, wk)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("00", "00000123004", good, "153012", "1126")
	bad := append([]byte(nil), good...)
	bad[len(bad)-1] ^= 1 // the TDK's check value off by one bit
	f.Add("00", "00000123004", bad, "153012", "1126")
	f.Add("00", "00000123004", good[:40], "153012", "1126")
	f.Add("00", "0000", good, "", "")
	f.Add("A0", "", []byte{}, "999999", "1399")
	f.Fuzz(func(t *testing.T, rc, f60 string, f62 []byte, f12, f13 string) {
		for _, mode := range []KeyMode{SingleDES, DoubleDES} {
			if keys, err := DecryptWorkingKeys(tmk, mode, f62); err == nil && len(keys.MAK) == 0 {
				t.Fatalf("%s: accepted field 62 of %d bytes without a MAK", mode, len(f62))
			}
		}
		_, _ = ParseField60(f60)

		answer := NewMessage("0810")
		for id, v := range map[int]string{11: "000001", 12: f12, 13: f13, 39: rc, 41: terminal.TID, 42: terminal.MID, 60: f60} {
			if v == "" {
				continue
			}
			if Set(answer, id, v) != nil {
				return // not something the spec can carry
			}
		}
		if len(f62) > 0 && SetBytes(answer, 62, f62) != nil {
			return
		}
		msg, err := Pack(answer)
		if err != nil {
			return
		}
		dial, _ := fakeHost(t, func(req Frame) []byte {
			out, _ := Frame{TPDU: req.TPDU.Swap(), Header: req.Header, Message: msg}.Encode()
			return out
		})
		c := newTestClient(t, Keys{TMK: tmk}, dial)
		res, err := c.SignOn(context.Background(), provisioning.SignOnRequest{Terminal: terminal, STAN: 1})
		if err != nil && strings.Contains(strings.ToUpper(err.Error()), "0123456789ABCDEF") {
			t.Fatalf("error quotes the TMK: %v", err)
		}
		stored, lerr := c.ks.LoadKeys()
		if lerr != nil {
			t.Fatal(lerr)
		}
		if !res.KeysOK {
			if len(stored.Working.MAK) != 0 {
				t.Fatal("working keys stored from an answer that was not accepted")
			}
			return
		}
		if err != nil || res.RC != "00" {
			t.Fatalf("keys accepted with RC %q, err %v", res.RC, err)
		}
		want, derr := DecryptWorkingKeys(tmk, DoubleDES, f62)
		if derr != nil || !bytes.Equal(stored.Working.MAK, want.MAK) || !bytes.Equal(stored.Working.PIK, want.PIK) {
			t.Fatalf("stored keys are not field 62's checked keys (%v)", derr)
		}
	})
}
