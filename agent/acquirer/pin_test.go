package acquirer

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// TestPINBlockFormat0 uses the published ISO 9564 format 0 example
// (PIN 1234, PAN 4111111111111111 → 041225EEEEEEEEEE) and openssl for the
// encryption.
func TestPINBlockFormat0(t *testing.T) {
	clear, err := pinBlockClear("1234", "4111111111111111")
	if err != nil {
		t.Fatal(err)
	}
	if want := mustHex(t, "041225EEEEEEEEEE"); !bytes.Equal(clear, want) {
		t.Fatalf("clear block %X, want %X", clear, want)
	}
	long, _ := pinBlockClear("123456789012", "4111111111111111")
	if long[0] != 0x0C {
		t.Fatalf("12-digit PIN length nibble %X", long[0])
	}
	pik := mustHex(t, "0123456789ABCDEFFEDCBA9876543210")
	got, err := PINBlock(pik, "1234", "4111111111111111")
	if err != nil {
		t.Fatal(err)
	}
	if want := opensslECB(t, pik, mustHex(t, "041225EEEEEEEEEE"), false); !bytes.Equal(got, want) {
		t.Fatalf("PIN block %X, openssl %X", got, want)
	}
	for _, bad := range []string{"123", "1234567890123", "12a4"} {
		if _, err := PINBlock(pik, bad, "4111111111111111"); !errors.Is(err, ErrPIN) || strings.Contains(err.Error(), bad) {
			t.Errorf("PIN %q: %v", bad, err)
		}
	}
}

func TestSecurityControl(t *testing.T) {
	if got := SecurityControl(DoubleDES, true); got != "2610000000000000" {
		t.Fatal(got)
	}
	if got := SecurityControl(SingleDES, false); got != "2000000000000000" {
		t.Fatal(got)
	}
}

func TestEncryptTrack(t *testing.T) {
	tdk := mustHex(t, "3333333333333333CCCCCCCCCCCCCCCC")
	track := "6222021234567890123=28122011234567"
	got, err := EncryptTrack(tdk, track)
	if err != nil {
		t.Fatal(err)
	}
	// The 16 characters before the last: "D2812201123456" preceded by "23"…
	seg := track[len(track)-17 : len(track)-1]
	want := track[:len(track)-17] +
		strings.ToUpper(hex.EncodeToString(opensslECB(t, tdk, mustHex(t, strings.ReplaceAll(seg, "=", "D")), false))) +
		track[len(track)-1:]
	if got != want {
		t.Fatalf("encrypted %s, openssl %s", got, want)
	}
	back, err := DecryptTrack(tdk, got)
	if err != nil || back != track {
		t.Fatalf("decrypt %s %v", back, err)
	}
	short := "1234567890=1"
	enc, err := EncryptTrack(tdk, short)
	if err != nil || len(enc) != 17 {
		t.Fatalf("short: %s %v", enc, err)
	}
	if back, err := DecryptTrack(tdk, enc); err != nil || back != short {
		t.Fatalf("short decrypt: %s %v", back, err)
	}
	if _, err := EncryptTrack(tdk, "12345678901234567890X"); !errors.Is(err, ErrTrack) {
		t.Fatalf("bad char: %v", err)
	}
	// The spec packs encrypted tracks too (A–F appear).
	m := NewMessage("0200")
	if err := Set(m, 35, got); err != nil {
		t.Fatal(err)
	}
	b, err := Pack(m)
	if err != nil {
		t.Fatal(err)
	}
	u, err := Unpack(b)
	if err != nil {
		t.Fatal(err)
	}
	// Nibble D reads back as '=' wherever it is, ciphertext included; the
	// host decrypts what it received all the same.
	if back, err := DecryptTrack(tdk, Get(u, 35)); err != nil || back != track {
		t.Fatalf("field 35 round trip: %v", err)
	}
}
