package acquirer

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/moov-io/iso8583"

	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

const (
	swipePAN    = "6222021234567890128"
	swipeTrack2 = swipePAN + "=30122011234567890"
	swipeTrack3 = "996222021234567890128=1561560000000000000003000000214000030122=000000000=000000000=00000000"
)

// referencePINBlock builds an ISO 9564 format-0 block the long way round
// (strings of nibbles), independently of pinBlockClear.
func referencePINBlock(t testing.TB, pin, p string) provisioning.PINBlock {
	t.Helper()
	pf := "0" + strings.ToUpper(hex.EncodeToString([]byte{byte(len(pin))}))[1:] + pin + strings.Repeat("F", 14-len(pin))
	af := "0000" + p[len(p)-13:len(p)-1]
	out := make([]byte, 8)
	for i := range out {
		a, _ := hex.DecodeString(pf[2*i : 2*i+2])
		b, _ := hex.DecodeString(af[2*i : 2*i+2])
		out[i] = a[0] ^ b[0]
	}
	return out
}

// sendOnce runs one request through a client whose host never answers and
// returns what went on the wire, unpacked.
func sendOnce(t *testing.T, keys Keys, send func(c *Client, ctx context.Context) error, edits ...func(*Config)) *iso8583.Message {
	t.Helper()
	dial, got := fakeHost(t, func(Frame) []byte { return nil })
	c := newTestClient(t, keys, dial, edits...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- send(c, ctx) }()
	req := <-got
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled exchange: %v", err)
	}
	m, err := Unpack(req.Message)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// allowFallback is a profile that lets domestic chip cards fall back to the
// stripe, as no built-in profile does.
func allowFallback(c *Config) {
	c.Profile = DefaultProfile()
	c.Profile.DomesticFallback = true
}

// TestFallbackPolicy: the default profile refuses a domestic chip card read
// from its stripe before anything is sent; a foreign card falls back.
func TestFallbackPolicy(t *testing.T) {
	keys := swipeKeys(t, DoubleDES)
	dial := func(context.Context, string, string) (net.Conn, error) {
		t.Error("a refused fallback was sent")
		return nil, errors.New("no")
	}
	c := newTestClient(t, keys, dial)
	_, err := c.Sale(context.Background(), provisioning.SaleRequest{Terminal: terminal, STAN: 9, Batch: "000123", Amount: 100,
		Card: swipeCard(provisioning.EntryFallback)})
	if !errors.Is(err, ErrFallback) || !errors.Is(err, ErrRequest) {
		t.Fatalf("domestic fallback: %v", err)
	}
	const visa = "4111111111111111"
	foreign := provisioning.Card{PAN: pan.MustParse(visa), Entry: provisioning.EntryFallback, Track2: pan.NewTrack(visa + "=30122011234567890")}
	m := sendOnce(t, keys, func(c *Client, ctx context.Context) error {
		_, err := c.Sale(ctx, provisioning.SaleRequest{Terminal: terminal, STAN: 9, Batch: "000123", Amount: 100, Card: foreign})
		return err
	})
	if got := Get(m, 60); got != "2200012300052" {
		t.Errorf("foreign fallback field 60 = %q", got)
	}
}

func swipeKeys(t testing.TB, mode KeyMode) Keys {
	k := Keys{TMK: mustHex(t, "0123456789ABCDEFFEDCBA9876543210"), Mode: mode, Working: WorkingKeys{
		PIK: mustHex(t, "1111111111111111AAAAAAAAAAAAAAAA"),
		MAK: mustHex(t, "2222222222222222BBBBBBBBBBBBBBBB"),
		TDK: mustHex(t, "3333333333333333CCCCCCCCCCCCCCCC")}}
	if mode == SingleDES {
		k.Working = WorkingKeys{PIK: mustHex(t, "1111111111111111"), MAK: mustHex(t, "2222222222222222")}
	}
	return k
}

func swipeCard(entry provisioning.Entry) provisioning.Card {
	return provisioning.Card{PAN: pan.MustParse(swipePAN), Entry: entry,
		Track2: pan.NewTrack(swipeTrack2), Track3: pan.NewTrack(swipeTrack3),
		// A swiped card's IC data must never reach field 55.
		ICData: "9F2608112233445566778899"}
}

// TestSwipeSaleFields pins a magstripe sale: 22 = 02x, the tracks in 35/36
// encrypted under the TDK (53 digit 3 = 1), 60.5 = 2 for a fallback, no IC
// fields; and in single-DES mode, which has no TDK, the tracks in clear.
func TestSwipeSaleFields(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mode    KeyMode
		entry   provisioning.Entry
		pin     bool
		f22     string
		f53     string
		f60tail string
	}{
		{"swipe", DoubleDES, provisioning.EntrySwipe, false, "022", "2610000000000000", "50"},
		{"swipe+pin", DoubleDES, provisioning.EntrySwipe, true, "021", "2610000000000000", "50"},
		{"fallback", DoubleDES, provisioning.EntryFallback, false, "022", "2610000000000000", "52"},
		{"single-des", SingleDES, provisioning.EntrySwipe, false, "022", "2000000000000000", "50"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys := swipeKeys(t, tc.mode)
			card := swipeCard(tc.entry)
			var pin provisioning.PINBlock
			if tc.pin {
				pin = referencePINBlock(t, "123456", swipePAN)
			}
			m := sendOnce(t, keys, func(c *Client, ctx context.Context) error {
				_, err := c.Sale(ctx, provisioning.SaleRequest{Terminal: terminal, STAN: 9, Batch: "000123", Amount: 100, Card: card, PINBlock: pin})
				return err
			}, allowFallback)
			want := map[int]string{2: swipePAN, 14: "3012", 22: tc.f22, 25: "00", 53: tc.f53, 60: "22000123000" + tc.f60tail}
			for id, v := range want {
				if got := Get(m, id); got != v {
					t.Errorf("field %d = %q, want %q", id, got, v)
				}
			}
			for _, id := range []int{23, 55} {
				if _, ok := m.GetFields()[id]; ok {
					t.Errorf("swipe sale carries field %d", id)
				}
			}
			for id, clear := range map[int]string{35: swipeTrack2, 36: swipeTrack3} {
				got := Get(m, id)
				if tc.mode == SingleDES {
					if got != clear {
						t.Errorf("field %d = %q, want the clear track", id, got)
					}
					continue
				}
				if got == clear || len(got) != len(clear) {
					t.Errorf("field %d is not the encrypted track (%d chars)", id, len(got))
				}
				// openssl decrypts the 16 characters before the last one.
				seg := got[len(got)-17 : len(got)-1]
				plain := opensslECB(t, keys.Working.TDK, mustHex(t, strings.ReplaceAll(seg, "=", "D")), true)
				back := got[:len(got)-17] + strings.ReplaceAll(strings.ToUpper(hex.EncodeToString(plain)), "D", "=") + got[len(got)-1:]
				if back != clear {
					t.Errorf("field %d does not decrypt to the track", id)
				}
			}
			if tc.pin {
				if Get(m, 26) != "12" {
					t.Errorf("field 26 = %q", Get(m, 26))
				}
				plain := opensslECB(t, keys.Working.PIK, GetBytes(m, 52), true)
				if !bytes.Equal(plain, pin) {
					t.Errorf("field 52 does not decrypt to the PIN pad's block")
				}
			} else if _, ok := m.GetFields()[52]; ok {
				t.Error("field 52 without a PIN")
			}
		})
	}
}

// TestChipSaleWithPIN: 051, 26, 52 under the PIK, 53 with no track flag.
func TestChipSaleWithPIN(t *testing.T) {
	keys := swipeKeys(t, DoubleDES)
	pin := referencePINBlock(t, "1234", "6222021234567890123")
	m := sendOnce(t, keys, func(c *Client, ctx context.Context) error {
		_, err := c.Sale(ctx, provisioning.SaleRequest{Terminal: terminal, STAN: 9, Batch: "000123", Amount: 100, Card: chipCard, PINBlock: pin})
		return err
	})
	for id, v := range map[int]string{22: "051", 23: "001", 26: "12", 53: "2600000000000000", 60: "2200012300050"} {
		if got := Get(m, id); got != v {
			t.Errorf("field %d = %q, want %q", id, got, v)
		}
	}
	if !bytes.Equal(opensslECB(t, keys.Working.PIK, GetBytes(m, 52), true), pin) {
		t.Error("field 52 does not decrypt to the PIN pad's block")
	}
	if _, ok := m.GetFields()[35]; ok {
		t.Error("chip sale carries track 2")
	}
}

// TestCardRequestErrors: what cannot be packed is refused before anything
// is sent, naming the field and never the data.
func TestCardRequestErrors(t *testing.T) {
	keys := swipeKeys(t, DoubleDES)
	dial := func(context.Context, string, string) (net.Conn, error) {
		t.Error("nothing should be sent")
		return nil, errors.New("no")
	}
	c := newTestClient(t, keys, dial)
	ctx := context.Background()
	otherPAN := swipeCard(provisioning.EntrySwipe)
	otherPAN.PAN = pan.MustParse("6222021234567890123")
	noTrack := swipeCard(provisioning.EntrySwipe)
	noTrack.Track2 = pan.Track{}
	badTrack := swipeCard(provisioning.EntrySwipe)
	badTrack.Track2 = pan.NewTrack(swipePAN + "=3012X")
	for _, tc := range []struct {
		name  string
		card  provisioning.Card
		pin   provisioning.PINBlock
		field int
	}{
		{"track PAN differs", otherPAN, nil, 2},
		{"swipe without track 2", noTrack, nil, 35},
		{"track not digits", badTrack, nil, 35},
		{"PIN block of another PAN", chipCard, referencePINBlock(t, "1234", "6250941234567898"), 52},
		{"PIN block too short", chipCard, provisioning.PINBlock{1, 2, 3}, 52},
	} {
		_, err := c.Sale(ctx, provisioning.SaleRequest{Terminal: terminal, STAN: 1, Batch: "000001", Amount: 1, Card: tc.card, PINBlock: tc.pin})
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: %v, want field %d", tc.name, err, tc.field)
		}
		if err != nil && (strings.Contains(err.Error(), "62220212") || strings.Contains(err.Error(), "3012")) {
			t.Errorf("%s: card data in %q", tc.name, err)
		}
	}
	bad := swipeCard("tap")
	if _, err := c.Sale(ctx, provisioning.SaleRequest{Terminal: terminal, STAN: 1, Batch: "000001", Amount: 1, Card: bad}); !errors.Is(err, ErrRequest) {
		t.Errorf("unknown entry: %v", err)
	}
}

// TestReversalRepeatsEntry: a reversal of a swiped sale with PIN repeats
// 22 = 021 and 60.5, carries the PAN in field 2 and none of the card data.
func TestReversalRepeatsEntry(t *testing.T) {
	keys := swipeKeys(t, DoubleDES)
	m := sendOnce(t, keys, func(c *Client, ctx context.Context) error {
		_, err := c.Reverse(ctx, provisioning.ReversalRequest{Terminal: terminal, Reason: "98", PAN: pan.MustParse(swipePAN),
			Orig: provisioning.InFlight{Kind: "sale", STAN: 7, Batch: "000123", Amount: 100, Entry: provisioning.EntryFallback, PIN: true}})
		return err
	})
	for id, v := range map[int]string{2: swipePAN, 3: "000000", 11: "000007", 22: "021", 39: "98", 60: "2200012300052"} {
		if got := Get(m, id); got != v {
			t.Errorf("field %d = %q, want %q", id, got, v)
		}
	}
	for _, id := range []int{14, 26, 35, 36, 52, 53, 55} {
		if _, ok := m.GetFields()[id]; ok {
			t.Errorf("reversal carries field %d", id)
		}
	}
}
