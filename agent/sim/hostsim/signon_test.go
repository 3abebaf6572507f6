package hostsim_test

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/sim/hostsim"
)

// TestSignOnModesAndLayouts: every key mode in every layout delivers keys
// whose check values match, of the lengths the layout says, and a sale MACed
// with the MAK so read is approved with an answer MACed by the same key.
func TestSignOnModesAndLayouts(t *testing.T) {
	for _, tc := range []struct {
		mode          string
		layout        hostsim.KeyLayout
		desTDK        bool
		f62, mak, tdk int
	}{
		{"001", hostsim.LayoutStandard, false, 24, 8, 0},
		{"001", hostsim.LayoutStandard, true, 36, 8, 8},
		{"003", hostsim.LayoutStandard, false, 40, 16, 0},
		{"004", hostsim.LayoutStandard, false, 60, 16, 16},
		{"003", hostsim.LayoutSingleMAK, false, 40, 8, 0},
		{"004", hostsim.LayoutSingleMAK, false, 60, 8, 16},
		{"001", hostsim.LayoutSingleMAK, false, 24, 8, 0},
		{"003", hostsim.LayoutTagged, false, 75, 16, 16},
		{"004", hostsim.LayoutTagged, false, 75, 16, 16},
	} {
		t.Run(tc.mode+"/"+string(tc.layout), func(t *testing.T) {
			in := newInstall(t, func(c *hostsim.Config) { c.KeyLayout, c.DESWithTDK = tc.layout, tc.desTDK })
			c := in.terminal()
			r, k := c.signOn(tc.mode, tc.layout)
			if len(r.f62()) != tc.f62 || len(k.mak) != tc.mak || len(k.tdk) != tc.tdk {
				t.Fatalf("field 62 %d bytes, MAK %d, TDK %d; want %d, %d, %d", len(r.f62()), len(k.mak), len(k.tdk), tc.f62, tc.mak, tc.tdk)
			}
			if got := r.f60(); got != "00000001"+tc.mode {
				t.Fatalf("60 = %s", got)
			}
			s := c.sale(100)
			if s.rc() != "00" {
				t.Fatalf("sale: %s", s.rc())
			}
			if err := acquirer.CheckMAC(s.m, s.raw, acquirer.MACUnionPayECB, acquirer.MACKey(k.mak, false)); err != nil {
				t.Fatalf("sale answer MAC: %v", err)
			}
		})
	}
}

// TestSingleMAKLayoutOpenSSL checks the single-length MAK layout with openssl
// as the independent DES: the first 8 bytes of the MAK slot decrypt under the
// TMK to a key whose check value is the slot's, the next 8 are zero, and a
// terminal that decrypts all 16 bytes gets a key whose check value is not.
func TestSingleMAKLayoutOpenSSL(t *testing.T) {
	in := newInstall(t, func(c *hostsim.Config) { c.KeyLayout = hostsim.LayoutSingleMAK })
	c := in.terminal()
	r, k := c.signOn("004", hostsim.LayoutSingleMAK)
	slot := r.f62()[20:40]
	if !bytes.Equal(slot[8:16], make([]byte, 8)) {
		t.Fatalf("MAK slot %X: second half not zero", slot[:16])
	}
	// 2-key 3DES ECB is des-ede; single DES under K is des-ede under K|K
	// (openssl 3 keeps plain DES in its legacy provider).
	mak := openssl(t, slot[:8], "enc", "-d", "-des-ede", "-nopad", "-K", tmkHex)
	if !bytes.Equal(mak, k.mak) {
		t.Fatal("openssl decrypts the MAK slot to another key")
	}
	kk := strings.ToUpper(hex.EncodeToString(append(append([]byte{}, mak...), mak...)))
	cv := openssl(t, make([]byte, 8), "enc", "-e", "-des-ede", "-nopad", "-K", kk)
	if !bytes.Equal(cv[:4], slot[16:20]) {
		t.Fatalf("check value %X, openssl says %X", slot[16:20], cv[:4])
	}
	whole := openssl(t, slot[:16], "enc", "-d", "-des-ede", "-nopad", "-K", tmkHex)
	cv16 := openssl(t, make([]byte, 8), "enc", "-e", "-des-ede", "-nopad", "-K", strings.ToUpper(hex.EncodeToString(whole)))
	if bytes.Equal(cv16[:4], slot[16:20]) {
		t.Fatal("the whole 16-byte slot passes the check value too")
	}
	// The host MACs with the single-length key.
	s := c.sale(1)
	if err := acquirer.CheckMAC(s.m, s.raw, acquirer.MACUnionPayECB, mak); s.rc() != "00" || err != nil {
		t.Fatalf("sale %s, MAC %v", s.rc(), err)
	}
}

// TestSignOnUnknownMode: a key mode the code table does not know is 12.
func TestSignOnUnknownMode(t *testing.T) {
	in := newInstall(t, nil)
	c := in.terminal()
	if r := c.adminReply("0800", "009", nil, nil); r.rc() != "12" || r.f62() != nil {
		t.Fatalf("%s, 62 %X", r.rc(), r.f62())
	}
}
