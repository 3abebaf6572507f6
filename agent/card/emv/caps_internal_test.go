package emv

import (
	"bytes"
	"context"
	"reflect"
	"testing"
)

// capsBit is one bit a TerminalCaps field sets: object, byte (1-based) and
// bit (8 = most significant).
type capsBit struct {
	obj       string
	byte, bit int
}

// capsLayout is where each field's bit lives, written from EMV 4.3 Book 4
// Annex A2 (9F33), A3 (9F40) and the qVSDC TTQ layout (9F66), not from
// caps.go.
var capsLayout = map[string][]capsBit{
	"ManualKeyEntry": {{"9F33", 1, 8}}, "Magstripe": {{"9F33", 1, 7}}, "ICContact": {{"9F33", 1, 6}},
	"PlaintextPINOffline":  {{"9F33", 2, 8}, {"9F66", 2, 6}},
	"EncipheredPINOnline":  {{"9F33", 2, 7}, {"9F66", 1, 3}},
	"Signature":            {{"9F33", 2, 6}, {"9F66", 1, 2}},
	"EncipheredPINOffline": {{"9F33", 2, 5}, {"9F66", 2, 6}},
	"NoCVM":                {{"9F33", 2, 4}},
	"SDA":                  {{"9F33", 3, 8}}, "DDA": {{"9F33", 3, 7}}, "CardCapture": {{"9F33", 3, 6}}, "CDA": {{"9F33", 3, 4}},
	"Attended":       {}, // the 9F35 digit, checked in TestTerminalType
	"OnlineCapable":  {},
	"Offline":        {{"9F66", 1, 4}}, // without OnlineCapable: an offline-only reader
	"ContactlessEMV": {{"9F66", 1, 6}}, "ContactlessContactChip": {{"9F66", 1, 5}},
	"ContactlessOnlineCrypto": {{"9F66", 2, 8}}, "FDDA": {{"9F66", 4, 8}},
	"Cash": {{"9F40", 1, 8}}, "Goods": {{"9F40", 1, 7}}, "Services": {{"9F40", 1, 6}}, "Cashback": {{"9F40", 1, 5}},
	"Inquiry": {{"9F40", 1, 4}}, "Transfer": {{"9F40", 1, 3}}, "Payment": {{"9F40", 1, 2}}, "Administrative": {{"9F40", 1, 1}},
	"CashDeposit": {{"9F40", 2, 8}},
	"NumericKeys": {{"9F40", 3, 8}}, "AlphabeticKeys": {{"9F40", 3, 7}}, "CommandKeys": {{"9F40", 3, 6}}, "FunctionKeys": {{"9F40", 3, 5}},
	"PrintAttendant": {{"9F40", 4, 8}}, "PrintCardholder": {{"9F40", 4, 7}},
	"DisplayAttendant": {{"9F40", 4, 6}}, "DisplayCardholder": {{"9F40", 4, 5}},
}

func derived(c TerminalCaps) map[string][]byte {
	return map[string][]byte{"9F33": c.TerminalCapabilities(), "9F40": c.AdditionalCapabilities(), "9F66": c.TTQ()}
}

// TestCapsBits switches each field on alone and checks that exactly its
// bits come on in 9F33, 9F40 and 9F66, and no others.
func TestCapsBits(t *testing.T) {
	typ := reflect.TypeOf(TerminalCaps{})
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Type.Kind() != reflect.Bool {
			continue
		}
		layout, ok := capsLayout[f.Name]
		if !ok {
			t.Errorf("field %s has no layout: a new capability needs its bit here", f.Name)
			continue
		}
		var c TerminalCaps
		reflect.ValueOf(&c).Elem().Field(i).SetBool(true)
		want := map[string][]byte{"9F33": make([]byte, 3), "9F40": make([]byte, 5), "9F66": make([]byte, 4)}
		for _, b := range layout {
			want[b.obj][b.byte-1] |= 1 << (b.bit - 1)
		}
		for obj, got := range derived(c) {
			if !bytes.Equal(got, want[obj]) {
				t.Errorf("%s alone: %s %X, want %X", f.Name, obj, got, want[obj])
			}
		}
	}
}

// TestTerminalType: 9F35 is the operator digit and the environment digit
// (Book 4 Annex A1).
func TestTerminalType(t *testing.T) {
	for _, tc := range []struct {
		c    TerminalCaps
		want byte
	}{
		{TerminalCaps{Operator: 2, Attended: true, OnlineCapable: true}, 0x21},
		{TerminalCaps{Operator: 2, Attended: true, OnlineCapable: true, Offline: true}, 0x22},
		{TerminalCaps{Operator: 2, Attended: true, Offline: true}, 0x23},
		{TerminalCaps{Operator: 1, OnlineCapable: true}, 0x14},
		{TerminalCaps{Operator: 1, OnlineCapable: true, Offline: true}, 0x15},
		{TerminalCaps{Operator: 3, Offline: true}, 0x36},
	} {
		if got := tc.c.TerminalType(); got != tc.want {
			t.Errorf("%+v: %02X, want %02X", tc.c, got, tc.want)
		}
	}
}

// TestCapabilitiesAsBuilt: the values this terminal sends, and that they
// are what DefaultTerminal uses.
func TestCapabilitiesAsBuilt(t *testing.T) {
	d := DefaultTerminal()
	for _, tc := range []struct {
		obj       string
		got, want string
	}{
		// IC and stripe; online PIN, signature, no CVM; SDA, DDA, CDA.
		{"9F33", Hex(d.Capabilities), "6068C8"},
		{"9F35", Hex([]byte{d.Type}), "21"},
		// Goods, inquiry; numeric and command keys; print (both copies),
		// attendant display; no code table.
		{"9F40", Hex(d.AddCapabilities), "4800A0E000"},
		// qPBOC, contact chip, online PIN, signature; online cryptogram
		// required; fDDA version 01 (byte 4 bit 8, emv.cool's qPBOC TTQ
		// table: 0 would mean "fDDA version 00 only").
		{"9F66", Hex(d.TTQ), "36800080"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s %s, want %s", tc.obj, tc.got, tc.want)
		}
	}
	for obj, v := range derived(Capabilities) {
		if got := map[string][]byte{"9F33": d.Capabilities, "9F40": d.AddCapabilities, "9F66": d.TTQ}[obj]; !bytes.Equal(got, v) {
			t.Errorf("DefaultTerminal %s %X, Capabilities say %X", obj, got, v)
		}
	}
}

// TestCapabilitiesClaimWhatTheKernelDoes: every ODA method 9F33 claims is
// performed by performODA (SDA and DDA; a card with no data fails the
// method it was given, it is not left unperformed), and the CVMs claimed are exactly
// those cvm.go performs; a method the kernel lacks stays unsupported even
// when a hand-set 9F33 claims it.
func TestCapabilitiesClaimWhatTheKernelDoes(t *testing.T) {
	caps := Capabilities.TerminalCapabilities()
	for _, aip := range []byte{aipSDA, aipDDA, aipCDA} {
		m := selectODA([]byte{aip, 0}, caps)
		s := &session{}
		if m != odaNone {
			if r, _ := s.performODA(context.Background(), m); r.method != m {
				t.Errorf("9F33 claims %v, the kernel performs %v", m, r.method)
			}
		}
	}
	s, err := newSession(nil, Terminal{}, Transaction{})
	if err != nil {
		t.Fatal(err)
	}
	performed := map[byte]bool{cvmFail: true, cvmOnlinePIN: true, cvmSignature: true, cvmNoCVM: true}
	for code := range byte(0x40) {
		if got := s.supportsCVM(code); got != performed[code] {
			t.Errorf("CVM %02X supported %v, the kernel performs it: %v", code, got, performed[code])
		}
	}
	s.term.Capabilities = []byte{0x60, 0xF8, 0x00} // claims offline PIN too
	for _, code := range []byte{0x01, 0x03, 0x04, 0x05} {
		if s.supportsCVM(code) {
			t.Errorf("offline PIN method %02X supported", code)
		}
	}
}
