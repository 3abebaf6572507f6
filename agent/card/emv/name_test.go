package emv

import "testing"

func TestDecodeName(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want string
		ok   bool
	}{
		{[]byte("ZHANG/SAN   "), "ZHANG/SAN", true},
		{[]byte{0xC0, 0xEE, 0xCB, 0xC4}, "李四", true}, // GB18030 (GBK subset)
		{[]byte{0x01, 0x02}, "", false},
		{[]byte{0x81}, "", false}, // lone lead byte
	} {
		got, ok := decodeName(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("% X: %q %v, want %q %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestFillDOL(t *testing.T) {
	dol := []DOLEntry{{0x9F02, 6}, {0x9F1A, 1}, {0x50, 4}, {0x9F4E, 3}}
	data := map[Tag][]byte{0x9F02: {0x01, 0x00}, 0x9F1A: {0x01, 0x56}, 0x50: []byte("PBOC DEBIT")}
	got := Hex(fillDOL(dol, data))
	// amount left-padded, country truncated on the left, label truncated on
	// the right, unknown 9F4E zeros.
	if want := "000000000100" + "56" + "50424F43" + "000000"; got != want {
		t.Fatalf("%s, want %s", got, want)
	}
	if Hex(bcdNumber(123456789, 6)) != "000123456789" {
		t.Fatal(Hex(bcdNumber(123456789, 6)))
	}
}
