package emv_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/cardsim"
	"github.com/posagent/posagent/drivers/cardreader"
	"github.com/posagent/posagent/drivers/cardreader/cardreadertest"
	"github.com/posagent/posagent/provisioning"
)

func TestSourceOneCard(t *testing.T) {
	r := cardreadertest.NewReader("slot0", "slot1")
	sim := loadCard(t, "debit", nil)
	r.Insert("slot1", sim.AsCard("slot1"))
	src := &emv.Source{Reader: r, Terminal: fixedTerminal()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := src.ReadCard(ctx, provisioning.CardRequest{Purpose: "bind settlement card"})
	if err != nil {
		t.Fatal(err)
	}
	if c.PAN.Reveal() != "6222021234567890128" || c.Name != "ZHANG/SAN" || c.Expiry != "3012" ||
		c.Seq != "01" || c.Type != provisioning.Debit || c.AID != emv.AIDDebit {
		t.Fatalf("%+v", c)
	}
	// A read without a cryptogram: no GENERATE AC, no ATC spent, no IC data.
	if n := sim.Steps("generate_ac"); n != 0 || sim.ATCValue() != 0x0010 || c.ICData != "" || c.IC != nil || c.ICReversal != "" {
		t.Fatalf("ReadCard sent %d GENERATE AC (ATC %04X), ICData %q", n, sim.ATCValue(), c.ICData)
	}
}

// With a card in each slot the source waits for the one the installer
// inserts after the prompt.
func TestSourceTwoCardsPicksInserted(t *testing.T) {
	r := cardreadertest.NewReader("slot0", "slot1")
	r.Insert("slot0", loadCard(t, "credit", nil).AsCard("slot0"))
	r.Insert("slot1", loadCard(t, "foreign", nil).AsCard("slot1"))
	src := &emv.Source{Reader: r, Terminal: fixedTerminal()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type out struct {
		c   provisioning.Card
		err error
	}
	done := make(chan out, 1)
	blocked := r.Blocked()
	go func() {
		c, err := src.ReadCard(ctx, provisioning.CardRequest{Purpose: "bind"})
		done <- out{c, err}
	}()
	<-blocked // the source saw two cards and waits for the installer
	r.Insert("slot1", loadCard(t, "debit", nil).AsCard("slot1"))
	o := <-done
	if o.err != nil || o.c.AID != emv.AIDDebit {
		t.Fatalf("%+v %v", o.c, o.err)
	}
}

func TestSourceNamedReaderAndErrors(t *testing.T) {
	r := cardreadertest.NewReader("slot0")
	src := &emv.Source{Reader: r, ReaderName: "slot0", Terminal: fixedTerminal()}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := src.ReadCard(ctx, provisioning.CardRequest{Purpose: "bind"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("empty reader: %v", err)
	}
	r.Insert("slot0", loadCard(t, "broken", nil).AsCard("slot0"))
	if _, err := src.ReadCard(context.Background(), provisioning.CardRequest{Purpose: "bind"}); !errors.Is(err, emv.ErrCardData) {
		t.Fatalf("broken: %v", err)
	}
	r.ConnectErr = cardreader.ErrServiceUnavailable
	if _, err := src.ReadCard(context.Background(), provisioning.CardRequest{Purpose: "bind"}); !errors.Is(err, cardreader.ErrServiceUnavailable) || !cardreader.Retryable(err) {
		t.Fatalf("service: %v", err)
	}
	if _, err := (&emv.Source{}).ReadCard(context.Background(), provisioning.CardRequest{Purpose: "bind"}); !errors.Is(err, cardreader.ErrNoReader) {
		t.Fatalf("no reader: %v", err)
	}
}

// TestSourceLogsMasked: the log of a read carries the masked PAN only.
func TestSourceLogsMasked(t *testing.T) {
	var buf bytes.Buffer
	r := cardreadertest.NewReader("slot0")
	r.Insert("slot0", loadCard(t, "debit", nil).AsCard("slot0"))
	src := &emv.Source{Reader: r, Terminal: fixedTerminal(), Log: slog.New(slog.NewTextHandler(&buf, nil))}
	if _, err := src.ReadCard(context.Background(), provisioning.CardRequest{Purpose: "bind"}); err != nil {
		t.Fatal(err)
	}
	r.Insert("slot0", loadCard(t, "debit", func(p *cardsim.Profile) {
		p.Faults = []cardsim.Fault{{At: "read_record", N: 3, Kind: "status", SW: "6985"}}
	}).AsCard("slot0"))
	if _, err := src.ReadCard(context.Background(), provisioning.CardRequest{Purpose: "bind"}); !errors.Is(err, emv.ErrCardStatus) {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, "6222021234567890128") || strings.Contains(out, "D3012") || !strings.Contains(out, "622202*********0128") {
		t.Fatalf("log:\n%s", out)
	}
}

// TestZeroTerminalAndJSON: a zero Terminal is the default one, and a result
// marshalled to JSON (posctl card read --json) shows no PAN or track data.
func TestZeroTerminalAndJSON(t *testing.T) {
	res, err := emv.Read(context.Background(), loadCard(t, "debit", nil).AsCard("sim"), emv.Terminal{}, emv.Transaction{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if strings.Contains(s, "6222021234567890128") || strings.Contains(s, "D3012") || !strings.Contains(s, `"PAN":"622202*********0128"`) {
		t.Fatalf("JSON: %s", s)
	}
}
