//go:build cgo

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/cardsim"
	"github.com/posagent/posagent/agent/testbench"
	"github.com/posagent/posagent/drivers/cardreader"
	"github.com/posagent/posagent/drivers/cardreader/pcsc"
)

var slotNames = [2]string{"Virtual PCD 00 00", "Virtual PCD 00 01"}

// plug puts a virtual card of profile into vpcd's slot until the test ends.
func plug(t *testing.T, slot int, profile string) {
	t.Helper()
	c, err := cardsim.Open(filepath.Join("..", "..", "testdata", "cards", profile+".yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- cardsim.Plug(ctx, cardsim.VPCDAddr(slot), c, func() { close(ready) }) }()
	t.Cleanup(func() {
		cancel()
		<-done
		// Wait until pcscd has seen the card go, so the next test does not
		// read this one.
		svc := pcsc.New()
		defer svc.Close()
		wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer wcancel()
		if err := cardreader.WaitPresent(wctx, svc, slotNames[slot], false); err != nil {
			t.Errorf("card never left slot %d: %v", slot, err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("plug: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("vpcd never took the card")
	}
}

func TestCardRead(t *testing.T) {
	testbench.NeedPCSC(t)
	for _, tc := range []struct {
		profile, pan, name, aid, typ string
		unionpay                     bool
	}{
		{"debit", "622202*********0128", "ZHANG/SAN", "A000000333010101", "debit", true},
		{"credit", "625094******7898", "ZHANG/SAN", "A000000333010102", "credit", true},
		{"foreign", "411111******1111", "ZHANG/SAN", "A0000000031010", "", false},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			plug(t, 0, tc.profile)
			var out, errs bytes.Buffer
			code := run([]string{"card", "read", "--json", "--reader", "Virtual PCD 00 00", "--timeout", "20s"}, &out, &errs)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs.String())
			}
			var got cardSummary
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if got.UnionPy != tc.unionpay || got.Reader != "Virtual PCD 00 00" || got.APDUs == 0 || !got.Track2 {
				t.Errorf("summary %+v", got)
			}
			if got.PAN != tc.pan || got.AID != tc.aid || got.Type != tc.typ {
				t.Errorf("summary %+v, want pan %s aid %s type %s", got, tc.pan, tc.aid, tc.typ)
			}
			if got.Name != tc.name {
				t.Errorf("name %q, want %q", got.Name, tc.name)
			}
			if strings.Count(got.PAN, "*") < 5 {
				t.Errorf("PAN not masked: %q", got.PAN)
			}
		})
	}
}

func TestCardReadNoCard(t *testing.T) {
	testbench.NeedPCSC(t)
	var out, errs bytes.Buffer
	code := run([]string{"card", "read", "--reader", "Virtual PCD 00 01", "--timeout", "500ms"}, &out, &errs)
	if code != 1 || !strings.Contains(errs.String(), "no card before the timeout") {
		t.Errorf("exit %d: %s", code, errs.String())
	}
}

func TestCardReadUsage(t *testing.T) {
	for _, args := range [][]string{{"card"}, {"card", "write"}, {"card", "read", "extra"}, {"card", "read", "--timeout", "0s"}} {
		var out, errs bytes.Buffer
		if code := run(args, &out, &errs); code != 2 || !strings.Contains(errs.String(), "usage") {
			t.Errorf("%v: exit %d: %s", args, code, errs.String())
		}
	}
}
