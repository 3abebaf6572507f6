package acquirer

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

var (
	quiet    = slog.New(slog.NewTextHandler(io.Discard, nil))
	terminal = provisioning.Terminal{TID: "12345678", MID: "898100012340001"}
	chipCard = provisioning.Card{PAN: pan.MustParse("6222021234567890123"), Seq: "01", Expiry: "2812",
		ICData: "9F26081122334455667788" + "9F270180"}
)

// annotated joins "hex  # comment" lines into bytes, so a golden frame can be
// read byte by byte against PROTOCOLS.md.
func annotated(t *testing.T, s string) []byte {
	t.Helper()
	var h strings.Builder
	for _, line := range strings.Split(s, "\n") {
		line, _, _ = strings.Cut(line, "#")
		h.WriteString(strings.ReplaceAll(strings.TrimSpace(line), " ", ""))
	}
	return mustHex(t, h.String())
}

// fakeHost answers one exchange over net.Pipe: it hands the request frame
// to answer and writes back whatever frame that returns.
func fakeHost(t *testing.T, answer func(req Frame) []byte) (func(context.Context, string, string) (net.Conn, error), <-chan Frame) {
	got := make(chan Frame, 1)
	return func(context.Context, string, string) (net.Conn, error) {
		c, s := net.Pipe()
		go func() {
			defer s.Close()
			f, err := ReadFrame(s, 0)
			if err != nil {
				t.Errorf("fake host read: %v", err)
				return
			}
			got <- f
			if b := answer(f); b != nil {
				_, _ = s.Write(b)
				return
			}
			// No answer: hold the line until the client hangs up.
			_, _ = io.Copy(io.Discard, s)
		}()
		return c, nil
	}, got
}

// newTestClient is a client of the default profile over dial; edits change
// its config first.
func newTestClient(t *testing.T, keys Keys, dial func(context.Context, string, string) (net.Conn, error), edits ...func(*Config)) *Client {
	t.Helper()
	ks := &MemKeyStore{}
	if err := ks.SaveKeys(keys); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	cfg := Config{Addr: "host", Dial: dial, Log: quiet, Now: func() time.Time { return now }}
	for _, e := range edits {
		if e != nil {
			e(&cfg)
		}
	}
	c, err := NewClient(cfg, ks)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Golden sign-on request: STAN 1, TID 12345678, MID 898100012340001, 004.
const goldenSignOn = `
003C                              # length: 60 bytes follow
60 0003 0000                      # TPDU: id 60, destination 0003, source 0000
60 31 00 31 07 00                 # header
0800                              # MTI, BCD
0020 0000 00C0 0012               # bitmap: 11 41 42 60 63
000001                            # 11 STAN, n6 BCD
3132333435363738                  # 41 TID, ans8
383938313030303132333430303031    # 42 MID, ans15
0011 000000000040                 # 60 LLL=011: 60.1 00, 60.2 000000, 60.3 004, pad nibble
0003 303120                       # 63 LLL=003: operator "01 "
`

func TestGoldenSignOn(t *testing.T) {
	tmk := Key(mustHex(t, "0123456789ABCDEFFEDCBA9876543210"))
	pik := mustHex(t, "1111111111111111AAAAAAAAAAAAAAAA")
	mak := mustHex(t, "2222222222222222BBBBBBBBBBBBBBBB")
	tdk := mustHex(t, "3333333333333333CCCCCCCCCCCCCCCC")
	f62 := field62(t, tmk, pik, mak, tdk) // built by openssl
	dial, got := fakeHost(t, func(req Frame) []byte {
		m := NewMessage("0810")
		for id, v := range map[int]string{11: "000001", 12: "153012", 13: "1126", 39: "00", 41: terminal.TID, 42: terminal.MID, 60: "00000123004"} {
			if err := Set(m, id, v); err != nil {
				t.Error(err)
			}
		}
		mustSetBytes(t, m, 62, f62)
		b, err := Pack(m)
		if err != nil {
			t.Error(err)
		}
		out, _ := Frame{TPDU: req.TPDU.Swap(), Header: req.Header, Message: b}.Encode()
		return out
	})
	c := newTestClient(t, Keys{TMK: tmk}, dial)
	res, err := c.SignOn(context.Background(), provisioning.SignOnRequest{Terminal: terminal, STAN: 1})
	if err != nil {
		t.Fatal(err)
	}
	req := <-got
	wire, _ := req.Encode()
	if want := annotated(t, goldenSignOn); !bytes.Equal(wire, want) {
		t.Fatalf("sign-on request\n got %X\nwant %X", wire, want)
	}
	if res.RC != "00" || !res.KeysOK || res.Batch != "000123" {
		t.Fatalf("%+v", res)
	}
	// 26 Nov 15:30:12 China time, in the year nearest the terminal clock.
	if want := time.Date(2026, 11, 26, 7, 30, 12, 0, time.UTC); !res.HostTime.Equal(want) {
		t.Fatalf("host time %v, want %v", res.HostTime, want)
	}
	k, _ := c.ks.LoadKeys()
	if !bytes.Equal(k.Working.MAK, mak) || !bytes.Equal(k.Working.TDK, tdk) || !bytes.Equal(k.TMK, tmk) {
		t.Fatal("working keys not stored")
	}
}

// Golden sale request: chip card, no PIN, 0.01 CNY, STAN 2, batch 000123.
const goldenSale = `
006F                              # length: 111 bytes follow
60 0003 0000                      # TPDU
60 31 00 31 07 00                 # header
0200                              # MTI
7024 0680 00C0 8211               # bitmap: 2 3 4 11 14 22 23 25 41 42 49 55 60 64
19 6222021234567890 1230          # 2 PAN, LL=19 BCD, left-justified, pad nibble 0
000000                            # 3 processing code: sale
000000000001                      # 4 amount, minor units
000002                            # 11 STAN
2812                              # 14 expiry YYMM
0520                              # 22 entry mode 052 (IC, no PIN), left-justified
0001                              # 23 PAN sequence 001
00                                # 25 condition code
3132333435363738                  # 41 TID
383938313030303132333430303031    # 42 MID
313536                            # 49 currency "156"
0015 9F26081122334455667788 9F270180 # 55 LLL=015 binary BER-TLV
0013 22000123000500               # 60 LLL=013: 22, 000123, 000, 5, 0, pad nibble
`

func TestGoldenSale(t *testing.T) {
	mak := Key(mustHex(t, "2222222222222222BBBBBBBBBBBBBBBB"))
	keys := Keys{TMK: mustHex(t, "0123456789ABCDEFFEDCBA9876543210"), Mode: DoubleDES, Working: WorkingKeys{MAK: mak}}
	macKey := mak[:8]
	var reqMsg *iso8583.Message
	dial, got := fakeHost(t, func(req Frame) []byte {
		m, err := Unpack(req.Message)
		if err != nil {
			t.Error(err)
			return nil
		}
		reqMsg = m
		r := NewMessage("0210")
		for _, id := range []int{3, 4, 11, 41, 42, 49, 60} {
			mustSet(t, r, id, Get(m, id))
		}
		for id, v := range map[int]string{12: "153012", 13: "1126", 37: "153012000001", 38: "654321", 39: "00"} {
			mustSet(t, r, id, v)
		}
		b, err := PackMAC(r, MACUnionPayECB, macKey)
		if err != nil {
			t.Error(err)
		}
		out, _ := Frame{TPDU: req.TPDU.Swap(), Header: req.Header, Message: b}.Encode()
		return out
	})
	c := newTestClient(t, keys, dial)
	resp, err := c.Sale(context.Background(), provisioning.SaleRequest{Terminal: terminal, STAN: 2, Batch: "000123", Amount: 1, Card: chipCard})
	if err != nil {
		t.Fatal(err)
	}
	if resp.RC != "00" || resp.RRN != "153012000001" || resp.AuthCode != "654321" {
		t.Fatalf("%+v", resp)
	}
	req := <-got
	wire, _ := req.Encode()
	want := annotated(t, goldenSale)
	// Field 64: the UnionPay MAC of MTI..field 60 computed by openssl.
	want = append(want, referenceUnionPayMAC(t, macKey, want[13:])...)
	if !bytes.Equal(wire, want) {
		t.Fatalf("sale request\n got %X\nwant %X", wire, want)
	}
	if Get(reqMsg, 2) != "6222021234567890123" {
		t.Fatal("PAN did not round-trip")
	}
	// decode → encode gives the same bytes.
	again, err := Pack(reqMsg)
	if err != nil || !bytes.Equal(again, req.Message) {
		t.Fatalf("round trip: %v\n got %X\nwant %X", err, again, req.Message)
	}
}

func TestSaleBadResponseMAC(t *testing.T) {
	mak := Key(mustHex(t, "2222222222222222"))
	keys := Keys{TMK: mustHex(t, "0123456789ABCDEF"), Mode: SingleDES, Working: WorkingKeys{MAK: mak}}
	dial, _ := fakeHost(t, func(req Frame) []byte {
		m, _ := Unpack(req.Message)
		r := NewMessage("0210")
		for _, id := range []int{3, 4, 11, 41, 42} {
			mustSet(t, r, id, Get(m, id))
		}
		mustSet(t, r, 39, "00")
		b, _ := PackMAC(r, MACUnionPayECB, Key(mustHex(t, "3333333333333333")))
		out, _ := Frame{TPDU: req.TPDU.Swap(), Header: req.Header, Message: b}.Encode()
		return out
	})
	c := newTestClient(t, keys, dial)
	_, err := c.Sale(context.Background(), provisioning.SaleRequest{Terminal: terminal, STAN: 2, Batch: "000123", Amount: 1, Card: chipCard})
	var xe *ExchangeError
	if !errors.Is(err, ErrBadMAC) || !errors.As(err, &xe) || !xe.Sent {
		t.Fatalf("%v", err)
	}
	if strings.Contains(err.Error(), "6222021234567890123") {
		t.Fatal("PAN in the error")
	}
}

func TestRequestValidation(t *testing.T) {
	keys := Keys{TMK: mustHex(t, "0123456789ABCDEF"), Working: WorkingKeys{MAK: mustHex(t, "2222222222222222")}}
	dial := func(context.Context, string, string) (net.Conn, error) {
		t.Error("nothing should be sent")
		return nil, errors.New("no")
	}
	c := newTestClient(t, keys, dial)
	ctx := context.Background()
	bad := chipCard
	bad.ICData = "not hex"
	cases := []struct {
		name  string
		field int
		err   error
	}{
		{"amount", 4, func() error {
			_, err := c.Sale(ctx, provisioning.SaleRequest{Terminal: terminal, STAN: 1, Batch: "000001", Amount: 0, Card: chipCard})
			return err
		}()},
		{"stan", 11, func() error {
			_, err := c.Sale(ctx, provisioning.SaleRequest{Terminal: terminal, STAN: 1000000, Batch: "000001", Amount: 1, Card: chipCard})
			return err
		}()},
		{"icdata", 55, func() error {
			_, err := c.Sale(ctx, provisioning.SaleRequest{Terminal: terminal, STAN: 1, Batch: "000001", Amount: 1, Card: bad})
			return err
		}()},
		{"tid", 41, func() error {
			_, err := c.Sale(ctx, provisioning.SaleRequest{Terminal: provisioning.Terminal{TID: "1", MID: terminal.MID}, STAN: 1, Batch: "000001", Amount: 1, Card: chipCard})
			return err
		}()},
		{"batch", 60, func() error {
			_, err := c.Sale(ctx, provisioning.SaleRequest{Terminal: terminal, STAN: 1, Batch: "1", Amount: 1, Card: chipCard})
			return err
		}()},
		{"reason", 39, func() error {
			_, err := c.Reverse(ctx, provisioning.ReversalRequest{Terminal: terminal, Orig: provisioning.InFlight{Kind: "sale", STAN: 1, Batch: "000001", Amount: 1}, Reason: "9"})
			return err
		}()},
	}
	for _, tc := range cases {
		var fe *FieldError
		if !errors.As(tc.err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: %v, want field %d", tc.name, tc.err, tc.field)
		}
	}
	if _, err := c.Reverse(ctx, provisioning.ReversalRequest{Terminal: terminal, Orig: provisioning.InFlight{Kind: "refund", STAN: 1, Batch: "000001", Amount: 1}, Reason: "98"}); !errors.Is(err, ErrRequest) {
		t.Errorf("refund reversal: %v", err)
	}
}

// TestReversalFields pins what a 0400 carries and what it must not.
func TestReversalFields(t *testing.T) {
	mak := Key(mustHex(t, "2222222222222222"))
	keys := Keys{TMK: mustHex(t, "0123456789ABCDEF"), Mode: SingleDES, Working: WorkingKeys{MAK: mak}}
	dial, got := fakeHost(t, func(req Frame) []byte { return nil })
	c := newTestClient(t, keys, dial)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Reverse(ctx, provisioning.ReversalRequest{Terminal: terminal, Reason: "98", PAN: chipCard.PAN,
			Orig: provisioning.InFlight{Kind: "void", STAN: 7, Batch: "000123", Amount: 100, OrigSTAN: 5}})
		done <- err
	}()
	req := <-got
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled reversal: %v", err)
	}
	m, err := Unpack(req.Message)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{2: chipCard.PAN.Reveal(), 3: "200000", 4: "000000000100", 11: "000007", 22: "052", 25: "00", 39: "98",
		41: terminal.TID, 42: terminal.MID, 49: "156", 60: "2300012300050", 61: "000123000005"}
	for id, v := range want {
		if got := Get(m, id); got != v {
			t.Errorf("field %d = %q, want %q", id, got, v)
		}
	}
	for _, id := range []int{35, 36, 52, 53, 55} {
		if _, ok := m.GetFields()[id]; ok {
			t.Errorf("reversal carries field %d", id)
		}
	}
	if err := CheckMAC(m, req.Message, MACUnionPayECB, mak); err != nil {
		t.Errorf("reversal MAC: %v", err)
	}
}

func TestHostTimeYear(t *testing.T) {
	c := &Client{cfg: Config{HostLocation: time.UTC}}
	for _, tc := range []struct {
		now  time.Time
		mmdd string
		year int
	}{
		{time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), "0101", 2027},
		{time.Date(2027, 1, 1, 0, 30, 0, 0, time.UTC), "1231", 2026},
		{time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), "0601", 2026},
	} {
		c.cfg.Now = func() time.Time { return tc.now }
		m := NewMessage("0810")
		mustSet(t, m, 13, tc.mmdd)
		mustSet(t, m, 12, "000000")
		if got := c.hostTime(m); got.Year() != tc.year {
			t.Errorf("now %v, %s: %v", tc.now, tc.mmdd, got)
		}
	}
	if !c.hostTime(NewMessage("0810")).IsZero() {
		t.Error("no time fields gave a time")
	}
}

func TestFrame(t *testing.T) {
	tp := TPDU{0x60, 0x00, 0x03, 0x01, 0x02}
	if got := tp.Swap(); got != (TPDU{0x60, 0x01, 0x02, 0x00, 0x03}) {
		t.Fatalf("swap %X", got)
	}
	if h := DefaultHeader.WithTestMode(true); h[2] != 0x10 || h.WithTestMode(false) != DefaultHeader {
		t.Fatalf("test mode %X", h)
	}
	f := Frame{TPDU: tp, Header: DefaultHeader, Message: []byte{1, 2, 3}}
	b, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(b[:2]) != "000e" {
		t.Fatalf("length %X", b[:2])
	}
	g, err := DecodeFrame(b)
	if err != nil || g.TPDU != f.TPDU || !bytes.Equal(g.Message, f.Message) {
		t.Fatalf("%+v %v", g, err)
	}
	r, err := ReadFrame(bytes.NewReader(b), 0)
	if err != nil || !bytes.Equal(r.Message, f.Message) {
		t.Fatalf("%+v %v", r, err)
	}
	for name, in := range map[string][]byte{"short": {0}, "len": append(b, 0), "tiny": {0, 3, 1, 2, 3}} {
		if _, err := DecodeFrame(in); err == nil {
			t.Errorf("%s decoded", name)
		}
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0xFF, 0xFF}), 1024); !errors.Is(err, ErrFrameLarge) {
		t.Errorf("large: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader(b[:10]), 0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut: %v", err)
	}
	if _, err := (Frame{Message: make([]byte, MaxFrame)}).Encode(); !errors.Is(err, ErrFrameLarge) {
		t.Errorf("encode large: %v", err)
	}
}

func TestField60(t *testing.T) {
	f := Field60{Type: "22", Batch: "000123", Code: "000", Reader: "5", Fallback: "0"}
	if f.String() != "2200012300050" {
		t.Fatal(f.String())
	}
	g, err := ParseField60(f.String())
	if err != nil || g != f {
		t.Fatalf("%+v %v", g, err)
	}
	if g, _ := ParseField60("00000123004"); g.Code != "004" || g.Reader != "" {
		t.Fatalf("%+v", g)
	}
	if _, err := ParseField60("0000"); err == nil {
		t.Fatal("short 60 parsed")
	}
}

// mustSet is Set for test data: a value the spec refuses is a broken test,
// which must not pass on a message that lacks the field. Errorf, not Fatal:
// fake hosts call it from their own goroutine.
func mustSet(t testing.TB, m *iso8583.Message, id int, v string) {
	t.Helper()
	if err := Set(m, id, v); err != nil {
		t.Errorf("test data: field %d: %v", id, err)
	}
}

// mustSetBytes is mustSet for binary fields.
func mustSetBytes(t testing.TB, m *iso8583.Message, id int, v []byte) {
	t.Helper()
	if err := SetBytes(m, id, v); err != nil {
		t.Errorf("test data: field %d: %v", id, err)
	}
}
