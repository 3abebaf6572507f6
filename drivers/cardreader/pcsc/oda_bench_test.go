//go:build cgo

package pcsc_test

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/drivers/cardreader"
	"github.com/posagent/posagent/provisioning"
)

// byteCounter counts the bytes a read moves across the reader: commands
// and responses (status words included), as they cross the card's contacts.
type byteCounter struct {
	cardreader.Card
	apdus, bytes int
}

func (c *byteCounter) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	r, err := c.Card.Transmit(ctx, cmd)
	c.apdus++
	c.bytes += len(cmd) + len(r)
	return r, err
}

// etuPerByte is an ISO 7816-3 character at default timing: start bit, 8
// data bits, parity and a 2-etu guard time; at the default Fi/Di (372/1)
// and a 3.5712 MHz clock one etu is 1/9600 s.
const etuPerByte, etuPerSecond = 12, 9600

// BenchmarkDDAReadThroughPCSC times the read of a DDA card for a sale —
// selection, GPO, records, SDA/DDA certificate recovery, INTERNAL
// AUTHENTICATE, the first GENERATE AC — through pcscd and vpcd, and
// reports it against the physical floor of the same bytes on a real
// card's contacts at 9600 bps (floor-ms/read: bytes × 12 etu / 9600;
// T=1 block framing and the card's own compute time come on top on a
// device, so the floor is a lower bound).
func BenchmarkDDAReadThroughPCSC(b *testing.B) {
	svc := service(b)
	keys, err := hostsim.DefaultCAPKs()
	if err != nil {
		b.Fatal(err)
	}
	var capks []provisioning.CAPK
	for _, k := range keys {
		capks = append(capks, k.Terminal())
	}
	plug(b, svc, 0, newCard(b, "oda/dda", nil), true)
	term := fixedTerminal().WithCAPKs(capks)
	var last byteCounter
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c, err := svc.Connect(ctx, slotName[0])
		if err != nil {
			b.Fatal(err)
		}
		bc := &byteCounter{Card: c}
		res, err := emv.Read(ctx, bc, term, emv.Transaction{Amount: 1})
		c.Close()
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		if tvr := tlvValue(b, res.ICData, 0x95); len(tvr) != 5 || tvr[0] != 0 {
			b.Fatalf("DDA did not pass: TVR % X", tvr)
		}
		last = *bc
	}
	b.ReportMetric(float64(last.apdus), "apdus/read")
	b.ReportMetric(float64(last.bytes), "bytes/read")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/read")
	b.ReportMetric(float64(last.bytes*etuPerByte)*1000/etuPerSecond, "floor-ms/read")
}

// tlvValue is tag's value in a hex field-55 set.
func tlvValue(b *testing.B, hexSet string, tag emv.Tag) []byte {
	b.Helper()
	raw, err := hex.DecodeString(hexSet)
	if err != nil {
		b.Fatal(err)
	}
	objs, err := emv.DecodeTLV(raw)
	if err != nil {
		b.Fatal(err)
	}
	o, _ := emv.Find(objs, tag)
	return o.Value
}
