package emv

import (
	"strings"
	"testing"
)

// TestBitNamesMatchTheKernel: each TVR and TSI bit the kernel sets is named
// by Explain as what the kernel means by it, so a trace read with
// `posctl decode tlv` says what the code did.
func TestBitNamesMatchTheKernel(t *testing.T) {
	for _, tc := range []struct {
		tag   Tag
		byte  int
		mask  byte
		words string // a part of the name
	}{
		{0x95, 0, tvrODANotPerformed, "offline data authentication was not performed"},
		{0x95, 0, tvrSDAFailed, "SDA failed"},
		{0x95, 0, tvrICCDataMissing, "ICC data missing"},
		{0x95, 0, tvrExceptionFile, "exception file"},
		{0x95, 0, tvrDDAFailed, "DDA failed"},
		{0x95, 0, tvrCDAFailed, "CDA failed"},
		{0x95, 0, tvrSDASelected, "SDA selected"},
		{0x95, 1, tvrVersionsDiffer, "different application versions"},
		{0x95, 1, tvrExpired, "expired application"},
		{0x95, 1, tvrNotEffective, "not yet effective"},
		{0x95, 1, tvrServiceNotAllow, "service not allowed"},
		{0x95, 1, tvrNewCard, "new card"},
		{0x95, 2, tvrCVFailed, "cardholder verification was not successful"},
		{0x95, 2, tvrUnrecognisedCV, "unrecognised CVM"},
		{0x95, 2, tvrNoPINPad, "PIN pad not present"},
		{0x95, 2, tvrPINNotEntered, "PIN was not entered"},
		{0x95, 2, tvrOnlinePIN, "online PIN entered"},
		{0x95, 3, tvrFloorLimit, "floor limit"},
		{0x95, 3, tvrLowerOffline, "lower consecutive offline limit"},
		{0x95, 3, tvrUpperOffline, "upper consecutive offline limit"},
		{0x95, 3, tvrRandomlySelected, "selected randomly"},
		{0x95, 4, tvrIssuerAuthFailed, "issuer authentication failed"},
		{0x95, 4, tvrScriptFailedBefore, "failed before final GENERATE AC"},
		{0x95, 4, tvrScriptFailedAfter, "failed after final GENERATE AC"},
		{0x9B, 0, tsiODAPerformed, "offline data authentication was performed"},
		{0x9B, 0, tsiCVPerformed, "cardholder verification was performed"},
		{0x9B, 0, tsiCardRisk, "card risk management was performed"},
		{0x9B, 0, tsiIssuerAuth, "issuer authentication was performed"},
		{0x9B, 0, tsiTerminalRisk, "terminal risk management was performed"},
		{0x9B, 0, tsiScripts, "script processing was performed"},
	} {
		v := make([]byte, map[Tag]int{0x95: 5, 0x9B: 2}[tc.tag])
		v[tc.byte] = tc.mask
		if got := Explain(tc.tag, v); !strings.Contains(got, tc.words) || strings.Contains(got, ";") {
			t.Errorf("%v %X: %q, want one name with %q", tc.tag, v, got, tc.words)
		}
	}
}

// TestExplainEveryBit: every bit of the TVR and TSI has a name (RFU ones
// by position), and each set bit is named once.
func TestExplainEveryBit(t *testing.T) {
	for tag, n := range map[Tag]int{0x95: 5, 0x9B: 2} {
		all := make([]byte, n)
		for i := range all {
			all[i] = 0xFF
		}
		if got := strings.Count(Explain(tag, all), ";") + 1; got != 8*n {
			t.Errorf("%v all ones: %d names, want %d", tag, got, 8*n)
		}
	}
	for _, tc := range []struct {
		tag  Tag
		v    string
		want string
	}{
		{0x9B, "0001", "byte 2 bit 1 (RFU)"},
		{0x9B, "0000", "no bit set"},
		{0x95, "00000000", ""}, // wrong length
		{0x9F34, "420300", "enciphered PIN verified online (apply succeeding rule if unsuccessful), if terminal supports the CVM; result unknown"},
		{0x9F34, "1E0300", "signature, if terminal supports the CVM; result unknown"},
		{0x9F34, "020001", "enciphered PIN verified online, always; result failed"},
		{0x9F34, "3F0000", "no CVM performed; result unknown"},
		{0x9F34, "1F0002", "no CVM required, always; result successful"},
		{0x9F34, "2A0B07", "CVM 2A (not an EMV method), condition 0B; result 07 (RFU)"},
		{0x9F35, "21", "merchant terminal, attended, online only"},
		{0x9F35, "99", "terminal type 99 (not an EMV type)"},
		{0x9F33, "606800", "magnetic stripe; IC with contacts; enciphered PIN for online verification; signature (paper); no CVM required"},
		{0x9F33, "0000C9", "SDA; DDA; CDA; byte 3 bit 1 (RFU)"},
		{0x82, "7C00", ""},
	} {
		if got := Explain(tc.tag, unhexT(t, tc.v)); got != tc.want {
			t.Errorf("%v %s: %q, want %q", tc.tag, tc.v, got, tc.want)
		}
	}
}

// FuzzExplain: whatever the value, Explain returns without panicking, and
// for a TVR or TSI of the right length names each set bit exactly once.
func FuzzExplain(f *testing.F) {
	f.Add(uint32(0x95), []byte{0x80, 0x00, 0x04, 0x80, 0x00})
	f.Add(uint32(0x9B), []byte{0xE8, 0x00})
	f.Add(uint32(0x9F34), []byte{0x42, 0x03, 0x00})
	f.Add(uint32(0x9F35), []byte{0x21})
	f.Add(uint32(0x9F33), []byte{0x60, 0x68, 0x00})
	f.Fuzz(func(t *testing.T, tag uint32, v []byte) {
		got := Explain(Tag(tag), v)
		n := map[Tag]int{0x95: 5, 0x9B: 2}[Tag(tag)]
		if n == 0 || len(v) != n {
			return
		}
		bits := 0
		for _, b := range v {
			for ; b != 0; b &= b - 1 {
				bits++
			}
		}
		names := strings.Count(got, ";") + 1
		if bits == 0 && got != "no bit set" || bits > 0 && names != bits {
			t.Errorf("%v %X: %d bits, %q", Tag(tag), v, bits, got)
		}
	})
}
