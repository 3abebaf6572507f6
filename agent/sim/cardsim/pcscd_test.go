//go:build cgo

package cardsim_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/testkit/bench"
	"github.com/posagent/posagent/agent/testkit/rig"
	"github.com/posagent/posagent/drivers/cardreader/pcsc"
)

// TestODACardsThroughPCSCD plugs the sound ODA cards into vpcd and reads
// them through the real pcscd (the PC/SC bench; skipped without it): the
// long records (a 144-byte issuer certificate) and the signatures arrive
// whole, and the DDA, CDA and fDDA signatures verify with openssl against
// the chain recovered in-process. The PC/SC lock (bench.NeedPCSC) keeps it
// from racing drivers/cardreader/pcsc's tests for the slots.
func TestODACardsThroughPCSCD(t *testing.T) {
	bench.NeedPCSC(t)
	ctx := context.Background()
	for _, name := range []string{"sda", "dda", "cda", "qpboc"} {
		ref := readCard(t, name, "26000080")
		ch := fullChainOrIssuer(t, ref)
		remove := rig.InsertCard(t, "oda/"+name)
		svc := pcsc.New()
		if ok, err := svc.Init(); !ok {
			t.Fatal(err)
		}
		card, err := svc.Connect(ctx, rig.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tx := func(h string, data []byte) []byte {
			c, _ := hex.DecodeString(h)
			if data != nil {
				c = append(append(c, byte(len(data))), data...)
			}
			r, err := card.Transmit(ctx, append(c, 0))
			if err != nil || len(r) < 2 || !bytes.HasSuffix(r, []byte{0x90, 0}) {
				t.Fatalf("%s %s: % X %v", name, h, r, err)
			}
			return r[:len(r)-2]
		}
		aid, _ := hex.DecodeString("A000000333010101")
		tx("00A40400", aid)
		gpo := tx("80A80000", append([]byte{0x83, byte(len(ref.pdolDat))}, ref.pdolDat...))
		n := 0
		var d69 []byte
		for i := 0; i < len(ref.afl); i += 4 {
			for r := int(ref.afl[i+1]); r <= int(ref.afl[i+2]); r++ {
				rec := tx(fmt.Sprintf("00B2%02X%02X", r, ref.afl[i]|4), nil)
				n += len(rec)
				o, err := emv.DecodeTLV(rec)
				if err != nil || len(o) != 1 {
					t.Fatalf("%s record %d: %v", name, r, err)
				}
				for _, k := range o[0].Children {
					if k.Tag == 0x9F69 {
						d69 = k.Value // made anew by this transaction
						continue
					}
					if !bytes.Equal(k.Value, ref.objs[k.Tag]) {
						t.Errorf("%s: %v differs through pcscd", name, k.Tag)
					}
				}
			}
		}
		switch name {
		case "dda":
			un := []byte{1, 2, 3, 4}
			o, _ := emv.DecodeTLV(tx("00880000", un))
			if _, err := checkSDAD(t, ch.icc, o[0].Value, un); err != nil {
				t.Fatal(err)
			}
		case "cda":
			d := append([]byte(nil), cdol1Data...)
			o, _ := emv.DecodeTLV(tx("80AE9000", d))
			s, _ := emv.Find(o[0].Children, 0x9F4B)
			if _, err := checkSDAD(t, ch.icc, s.Value, d[len(d)-6:len(d)-2]); err != nil {
				t.Fatal(err)
			}
		case "qpboc":
			o, _ := emv.DecodeTLV(gpo)
			s, _ := emv.Find(o[0].Children, 0x9F4B)
			p := ref.pdolDat
			if _, err := checkSDAD(t, ch.icc, s.Value, p[len(p)-4:], p[4:10], p[23:25], d69); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%s: GPO %d bytes, records %d bytes through pcscd", name, len(gpo), n)
		card.Close()
		svc.Close()
		remove()
	}
}

// fullChainOrIssuer is the chain as far as the card has one (an SDA card
// has no ICC key).
func fullChainOrIssuer(t *testing.T, r *read) *chain {
	t.Helper()
	if _, ok := r.objs[0x9F46]; ok {
		return fullChain(t, r)
	}
	ch, err := recoverIssuer(t, r, 0x81)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}
