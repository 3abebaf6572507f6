package acquirer

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecodeHex(t *testing.T) {
	msg := saleMessage(t)
	frame, _ := Frame{TPDU: DefaultTPDU, Header: DefaultHeader, Message: msg}.Encode()
	for name, in := range map[string]string{"frame": hex.EncodeToString(frame), "message": hex.EncodeToString(msg),
		"spaced": strings.ToUpper(hex.EncodeToString(frame[:20])) + " \n " + hex.EncodeToString(frame[20:])} {
		d, err := DecodeHex(in, false)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d.MTI != "0200" || d.Fields["2"] != "622202*********0123" {
			t.Fatalf("%s: %+v", name, d)
		}
		if (name != "message") != (d.TPDU == "6000030000") {
			t.Fatalf("%s: TPDU %q", name, d.TPDU)
		}
		j, _ := json.Marshal(d)
		if strings.Contains(string(j), "6222021234567890123") {
			t.Fatalf("%s leaks the PAN: %s", name, j)
		}
	}
	if _, err := DecodeHex("zz6222021234567890123", false); !errors.Is(err, ErrHex) || strings.Contains(err.Error(), "6222") {
		t.Fatalf("not hex: %v", err)
	}
	var fe *FieldError
	if _, err := DecodeHex(hex.EncodeToString(msg[:25]), false); !errors.As(err, &fe) {
		t.Fatalf("truncated: %v", err)
	}
}
