package acquirer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func saleMessage(t testing.TB) []byte {
	t.Helper()
	m := NewMessage("0200")
	for id, v := range map[int]string{2: "6222021234567890123", 3: "000000", 4: "000000000100", 11: "000002",
		22: "021", 35: "6222021234567890123=28122011234567", 41: "12345678", 42: "898100012340001", 60: "2200012300050"} {
		if err := Set(m, id, v); err != nil {
			t.Fatal(err)
		}
	}
	mustSetBytes(t, m, 52, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	mustSetBytes(t, m, 55, mustHex(t, "5A0862220212345678909F26081122334455667788570D6222021234567890D28122011F"))
	b, err := PackMAC(m, MACUnionPayECB, mustHex(t, "2222222222222222"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDescribeMasks(t *testing.T) {
	m, err := Unpack(saleMessage(t))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Describe(m, false)
	if err != nil {
		t.Fatal(err)
	}
	j, _ := json.Marshal(d)
	for _, secret := range []string{"6222021234567890123", "2812201", "0102030405060708", "6222021234567890", "D2812"} {
		if strings.Contains(string(j), secret) {
			t.Fatalf("%s leaks %s", j, secret)
		}
	}
	if d.Fields["2"] != "622202*********0123" || d.Fields["52"] != "[masked 8]" || d.Fields["35"] != "[masked 34]" {
		t.Fatalf("%s", j)
	}
	if d.Fields["22"] != "021" || d.Fields["60"] != "2200012300050" {
		t.Fatalf("%s", j)
	}
	r, _ := Describe(m, true)
	rj, _ := json.Marshal(r)
	if !strings.Contains(string(rj), "6222021234567890123=28122011234567") || !strings.Contains(string(rj), "0102030405060708") {
		t.Fatalf("reveal: %s", rj)
	}
}

func TestDescribeHostileTLV(t *testing.T) {
	m := NewMessage("0200")
	// A long-form BER length of 8 bytes overflows int inside bertlv.
	mustSetBytes(t, m, 55, mustHex(t, "9F2688FFFFFFFFFFFFFFFF00"))
	d, err := Describe(m, false)
	if err != nil || d.Fields["55"] != "[masked 12]" {
		t.Fatalf("%v %v", d, err)
	}
}

func TestErrorsNameFieldNotValue(t *testing.T) {
	m := NewMessage("0200")
	err := Set(m, 2, "62220212345678901234567") // 23 digits, LL max 19
	if err == nil {
		_, err = Pack(m)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != 2 || strings.Contains(err.Error(), "6222") {
		t.Fatalf("%v", err)
	}
	b := saleMessage(t)
	_, err = Unpack(b[:30])
	if !errors.As(err, &fe) || !errors.Is(err, ErrMalformed) || strings.Contains(err.Error(), "6222") {
		t.Fatalf("truncated: %v", err)
	}
	if got := fmt.Sprint(err); !strings.HasPrefix(got, "acquirer: unpack field ") {
		t.Fatalf("%s", got)
	}
}

func TestCheckMAC(t *testing.T) {
	k := Key(mustHex(t, "2222222222222222"))
	b := saleMessage(t)
	m, _ := Unpack(b)
	if err := CheckMAC(m, b, MACUnionPayECB, k); err != nil {
		t.Fatal(err)
	}
	b[20] ^= 1
	m2, err := Unpack(b)
	if err == nil {
		if err := CheckMAC(m2, b, MACUnionPayECB, k); !errors.Is(err, ErrBadMAC) {
			t.Fatalf("tampered: %v", err)
		}
	}
	if err := CheckMAC(NewMessage("0210"), nil, MACUnionPayECB, k); !errors.Is(err, ErrNoMAC) {
		t.Fatalf("no MAC: %v", err)
	}
}

// BenchmarkSale is the per-sale cost of the protocol layer: pack with MAC,
// then unpack and verify, as one exchange's terminal side does.
func BenchmarkSale(b *testing.B) {
	mak := Key(mustHex(b, "2222222222222222BBBBBBBBBBBBBBBB"))
	b.ReportAllocs()
	for b.Loop() {
		m := NewMessage("0200")
		for _, f := range []struct {
			id int
			v  string
		}{{2, "6222021234567890123"}, {3, "000000"}, {4, "000000000100"}, {11, "000002"}, {14, "2812"}, {22, "052"},
			{23, "001"}, {25, "00"}, {41, "12345678"}, {42, "898100012340001"}, {49, "156"}, {60, "2200012300050"}} {
			mustSet(b, m, f.id, f.v)
		}
		mustSetBytes(b, m, 55, []byte{0x9F, 0x26, 0x08, 1, 2, 3, 4, 5, 6, 7, 8})
		p, err := PackMAC(m, MACUnionPayECB, MACKey(mak, false))
		if err != nil {
			b.Fatal(err)
		}
		u, err := Unpack(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := CheckMAC(u, p, MACUnionPayECB, MACKey(mak, false)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBCDAgainstLibrary: our BCD encodings give moov-io's bytes.
func TestBCDAgainstLibrary(t *testing.T) {
	for _, s := range []string{"", "0", "7", "12", "123", "0200", "6222021234567890123", "999999999999"} {
		for _, tc := range []struct {
			ours encodingPair
			lib  encodingPair
		}{{bcdRight, moovBCD}, {bcdLeft, moovLBCD}} {
			a, err1 := tc.ours.Encode([]byte(s))
			b, err2 := tc.lib.Encode([]byte(s))
			if err1 != nil || err2 != nil || string(a) != string(b) {
				t.Fatalf("%q: %X %v / %X %v", s, a, err1, b, err2)
			}
			d, n, err := tc.ours.Decode(a, len(s))
			if err != nil || string(d) != s || n != len(a) {
				t.Fatalf("%q: decode %q %d %v", s, d, n, err)
			}
		}
	}
	if _, err := bcdRight.Encode([]byte("12a")); err == nil {
		t.Fatal("letter encoded")
	}
	if _, _, err := bcdLeft.Decode([]byte{0x1A}, 2); err == nil {
		t.Fatal("nibble A decoded")
	}
	if _, _, err := bcdLeft.Decode([]byte{0x12}, 3); err == nil {
		t.Fatal("short input decoded")
	}
}
