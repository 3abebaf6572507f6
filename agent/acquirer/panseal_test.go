package acquirer

import (
	"bytes"
	"errors"
	"testing"

	"github.com/posagent/posagent/provisioning/pan"
)

func TestSealPAN(t *testing.T) {
	c := newTestClient(t, Keys{TMK: mustHex(t, "0123456789ABCDEFFEDCBA9876543210")}, nil)
	p := pan.MustParse(swipePAN)
	ad := []byte("posagent pan seal v1|12345678|898100012340001|000001|000002|sale")
	sealed, err := c.SealPAN(p, ad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte(swipePAN)) || bytes.Contains(sealed, []byte("1234567890")) {
		t.Fatal("the sealed PAN shows its digits")
	}
	again, _ := c.SealPAN(p, ad)
	if bytes.Equal(again, sealed) {
		t.Fatal("sealing twice gives the same bytes: the nonce is not fresh")
	}
	got, err := c.OpenPAN(sealed, ad)
	if err != nil || got.Reveal() != swipePAN {
		t.Fatalf("open: %v %v", got, err)
	}
	// The seal is bound to its message: copied into another record (another
	// STAN, kind, batch or terminal) it does not open.
	for _, other := range [][]byte{
		[]byte("posagent pan seal v1|12345678|898100012340001|000001|000003|sale"),
		[]byte("posagent pan seal v1|12345678|898100012340001|000001|000002|void"),
		[]byte("posagent pan seal v1|87654321|898100012340001|000001|000002|sale"),
		nil,
	} {
		if _, err := c.OpenPAN(sealed, other); !errors.Is(err, ErrSealed) {
			t.Fatalf("opened under %q: %v", other, err)
		}
	}
	// A restarted client on the same TMK opens it; one on another TMK does not.
	same := newTestClient(t, Keys{TMK: mustHex(t, "0123456789ABCDEFFEDCBA9876543210")}, nil)
	if got, err := same.OpenPAN(sealed, ad); err != nil || got.Reveal() != swipePAN {
		t.Fatalf("after restart: %v %v", got, err)
	}
	other := newTestClient(t, Keys{TMK: mustHex(t, "00112233445566778899AABBCCDDEEFF")}, nil)
	if _, err := other.OpenPAN(sealed, ad); !errors.Is(err, ErrSealed) {
		t.Fatalf("other TMK: %v", err)
	}
	for i := range sealed {
		bad := append([]byte(nil), sealed...)
		bad[i] ^= 0x01
		if _, err := c.OpenPAN(bad, ad); !errors.Is(err, ErrSealed) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	for _, bad := range [][]byte{nil, {sealVersion}, sealed[:len(sealed)-1]} {
		if _, err := c.OpenPAN(bad, ad); !errors.Is(err, ErrSealed) {
			t.Fatalf("%X: %v", bad, err)
		}
	}
	if _, err := c.SealPAN(pan.PAN{}, ad); !errors.Is(err, ErrRequest) {
		t.Fatalf("zero PAN: %v", err)
	}
}

// TestParsePINBlock: the host's side reads back what a PIN pad built, and
// refuses a block for another account or of another format.
func TestParsePINBlock(t *testing.T) {
	for _, pin := range []string{"1234", "123456", "123456789012"} {
		got, err := ParsePINBlock(referencePINBlock(t, pin, swipePAN), swipePAN)
		if err != nil || got != pin {
			t.Errorf("PIN %s: %q %v", pin, got, err)
		}
	}
	if _, err := ParsePINBlock(referencePINBlock(t, "1234", swipePAN), "6250941234567898"); !errors.Is(err, ErrPINBlock) {
		t.Errorf("another PAN: %v", err)
	}
	format1 := referencePINBlock(t, "1234", swipePAN)
	format1[0] |= 0x10
	if _, err := ParsePINBlock(format1, swipePAN); !errors.Is(err, ErrPINBlock) {
		t.Errorf("format 1: %v", err)
	}
	if _, err := ParsePINBlock(make([]byte, 7), swipePAN); !errors.Is(err, ErrPINBlock) {
		t.Errorf("7 bytes: %v", err)
	}
	var fe *FieldError
	if _, err := ParsePINBlock(make([]byte, 8), "123"); !errors.As(err, &fe) || fe.Field != 2 {
		t.Errorf("short PAN: %v", err)
	}
	// The published example again, from the parsing side.
	if got, err := ParsePINBlock(mustHex(t, "041225EEEEEEEEEE"), "4111111111111111"); err != nil || got != "1234" {
		t.Errorf("ISO example: %q %v", got, err)
	}
}
