package cardreader_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/posagent/posagent/drivers/cardreader"
	"github.com/posagent/posagent/drivers/cardreader/cardreadertest"
)

var x = cardreadertest.X

func TestCommandBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  cardreader.Command
		want string
	}{
		{"case1", cardreader.Command{INS: 0x20}, "00200000"},
		{"case2 256", cardreader.Command{INS: 0xB2, P1: 1, P2: 0x0C, Ne: 256}, "00B2010C00"},
		{"case3", cardreader.Command{CLA: 0x80, INS: 0xE2, Data: []byte{1, 2}}, "80E20000020102"},
		{"case4", cardreader.Command{INS: 0xA4, P1: 4, Data: []byte("1PAY"), Ne: 256}, "00A40400043150415900"},
	} {
		got, err := tc.cmd.Bytes()
		if err != nil || !bytes.Equal(got, x(tc.want)) {
			t.Errorf("%s: got %X, %v; want %s", tc.name, got, err, tc.want)
		}
	}
	if _, err := (cardreader.Command{Data: make([]byte, 256)}).Bytes(); !errors.Is(err, cardreader.ErrCommand) {
		t.Errorf("256-byte data: %v, want ErrCommand", err)
	}
	if _, err := (cardreader.Command{Ne: 257}).Bytes(); !errors.Is(err, cardreader.ErrCommand) {
		t.Errorf("Ne 257: %v, want ErrCommand", err)
	}
}

func TestParseResponse(t *testing.T) {
	r, err := cardreader.ParseResponse(x("0102 9000"))
	if err != nil || !bytes.Equal(r.Data, x("0102")) || !r.SW.OK() {
		t.Fatalf("got %+v, %v", r, err)
	}
	for _, b := range [][]byte{nil, {0x90}} {
		if _, err := cardreader.ParseResponse(b); !errors.Is(err, cardreader.ErrBadResponse) {
			t.Errorf("%X: %v, want ErrBadResponse", b, err)
		}
	}
	if s := cardreader.SW(0x6A82); s.String() != "6A82" || s.SW1() != 0x6A || s.SW2() != 0x82 || s.OK() {
		t.Errorf("SW 6A82 accessors wrong: %v", s)
	}
	var err2 error = cardreader.SWFileNotFound
	var sw cardreader.SW
	if !errors.As(err2, &sw) || sw != 0x6A82 {
		t.Errorf("SW as error: %v", err2)
	}
}

func TestT0(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		cmd    string
		script []cardreadertest.Exchange
		want   string
		err    error
	}{
		{"plain", "00A4040002AABB00", []cardreadertest.Exchange{
			cardreadertest.Ex("00A4040002AABB00", "6F009000")}, "6F009000", nil},
		{"61 chain", "00A4040002AABB00", []cardreadertest.Exchange{
			cardreadertest.Ex("00A4040002AABB00", "6104"),
			cardreadertest.Ex("00C0000004", "01020304 6102"),
			cardreadertest.Ex("00C0000002", "0506 9000")}, "010203040506 9000", nil},
		{"6C case2", "00B2010C00", []cardreadertest.Exchange{
			cardreadertest.Ex("00B2010C00", "6C10"),
			cardreadertest.Ex("00B2010C10", "70020101 9000")}, "70020101 9000", nil},
		{"6C case3 appends", "80CA9F1700", []cardreadertest.Exchange{
			cardreadertest.Ex("80CA9F1700", "6C04"),
			cardreadertest.Ex("80CA9F1704", "9F170103 9000")}, "9F170103 9000", nil},
		{"6C case4 then 61", "80A8000002830000", []cardreadertest.Exchange{
			cardreadertest.Ex("80A8000002830000", "6C08"),
			cardreadertest.Ex("80A8000002830008", "6108"),
			cardreadertest.Ex("00C0000008", "8006 7C00 08010100 9000")}, "80067C0008010100 9000", nil},
		{"6C twice", "00B2010C00", []cardreadertest.Exchange{
			cardreadertest.Ex("00B2010C00", "6C10"),
			cardreadertest.Ex("00B2010C10", "6C11")}, "", cardreader.ErrBadResponse},
		{"removed mid chain", "00A4040002AABB00", []cardreadertest.Exchange{
			cardreadertest.Ex("00A4040002AABB00", "6104"),
			{Cmd: x("00C0000004"), Err: cardreader.ErrCardRemoved}}, "", cardreader.ErrCardRemoved},
		{"truncated", "00A4040002AABB00", []cardreadertest.Exchange{
			cardreadertest.Ex("00A4040002AABB00", "61")}, "", cardreader.ErrBadResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cardreadertest.NewPlayback(t, tc.script...)
			got, err := cardreader.T0{Card: c}.Transmit(ctx, x(tc.cmd))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, x(tc.want)) {
				t.Fatalf("got %X, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestT0Endless61(t *testing.T) {
	f := &cardreadertest.Func{Respond: func([]byte) ([]byte, error) { return x("01 6101"), nil }}
	_, err := cardreader.Exchange(context.Background(), f, cardreader.Command{INS: 0xA4, Ne: 256})
	if !errors.Is(err, cardreader.ErrBadResponse) {
		t.Fatalf("endless 61XX: %v, want ErrBadResponse", err)
	}
	if f.Count() > 20 {
		t.Fatalf("%d transmissions for an endless chain", f.Count())
	}
}

func TestWaitInserted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := cardreadertest.NewReader("slot0", "slot1")
	old := &cardreadertest.Func{Name: "slot0"}
	r.Insert("slot0", old) // a card already there is not the one being inserted
	got := make(chan string, 1)
	known, err := cardreader.Snapshot(ctx, r)
	if err != nil || len(known) != 2 || !known[0].Present || known[1].Present {
		t.Fatalf("snapshot %+v, %v", known, err)
	}
	blocked := r.Blocked()
	go func() {
		name, err := cardreader.WaitInserted(ctx, r)
		if err != nil {
			t.Error(err)
		}
		got <- name
	}()
	<-blocked // insert only once the waiter took its snapshot and waits
	r.Insert("slot1", &cardreadertest.Func{Name: "slot1"})
	if name := <-got; name != "slot1" {
		t.Fatalf("WaitInserted = %q, want slot1", name)
	}
	if err := cardreader.WaitPresent(ctx, r, "slot0", true); err != nil {
		t.Fatal(err)
	}
	r.Remove("slot1")
	if err := cardreader.WaitPresent(ctx, r, "slot1", false); err != nil {
		t.Fatal(err)
	}
}

func TestWaitTimeoutAndClose(t *testing.T) {
	r := cardreadertest.NewReader("slot0")
	ctx, cancel := cardreader.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := cardreader.WaitInserted(ctx, r); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cardreader.WaitPresent(context.Background(), r, "slot0", true) }()
	r.Close()
	if err := <-done; !errors.Is(err, cardreader.ErrServiceUnavailable) {
		t.Fatalf("close: %v", err)
	}
	if !cardreader.Retryable(err1()) || cardreader.Retryable(cardreader.ErrBadResponse) {
		t.Fatal("Retryable classification")
	}
}

func err1() error { return errors.Join(errors.New("x"), cardreader.ErrCardRemoved) }

func FuzzT0(f *testing.F) {
	f.Add([]byte{0x90, 0x00}, []byte{0x61, 0x02}, []byte{0x01, 0x02, 0x90, 0x00})
	f.Add([]byte{0x6C, 0x05}, []byte{0x6C, 0x05}, []byte{})
	f.Add([]byte{0x61}, []byte{}, []byte{0x00})
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		if _, err := cardreader.ParseResponse(a); err == nil && len(a) < 2 {
			t.Fatal("short response accepted")
		}
		answers := [][]byte{a, b, c}
		i := 0
		card := &cardreadertest.Func{Respond: func([]byte) ([]byte, error) {
			r := answers[i%3]
			i++
			return r, nil
		}}
		r, err := cardreader.Exchange(context.Background(), card, cardreader.Command{INS: 0xB2, Ne: 256})
		if err == nil && (r.SW.SW1() == 0x61 || r.SW.SW1() == 0x6C) {
			t.Fatalf("procedure SW %v leaked", r.SW)
		}
		if card.Count() > 20 {
			t.Fatalf("%d transmissions", card.Count())
		}
	})
}
