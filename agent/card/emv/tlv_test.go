package emv_test

import (
	"context"
	"errors"
	"testing"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/drivers/cardreader/cardreadertest"
)

func TestDecodeTLV(t *testing.T) {
	// FCI of a PSE: 6F { 84 "1PAY.SYS.DDF01", A5 { 88 01, 5F2D "zhen" } }, with 00 padding.
	b := cardreadertest.X("6F1C 840E 315041592E5359532E4444463031 A50A 880101 5F2D047A68656E 0000")
	objs, err := emv.DecodeTLV(b)
	if err != nil {
		t.Fatal(err)
	}
	if sfi, ok := emv.Find(objs, 0x88); !ok || len(sfi.Value) != 1 || sfi.Value[0] != 1 {
		t.Fatalf("88: %+v", sfi)
	}
	if lang, ok := emv.Find(objs, 0x5F2D); !ok || string(lang.Value) != "zhen" {
		t.Fatalf("5F2D: %+v", lang)
	}
	if got := len(emv.FindAll(objs, 0x5F2D)); got != 1 {
		t.Fatalf("FindAll = %d", got)
	}
	for _, bad := range []string{"5F", "5F24", "5F2403 0102", "9F8181", "9F818181 01 00", "6F03 8401", "5A84FFFFFFFF", "5A80"} {
		if _, err := emv.DecodeTLV(cardreadertest.X(bad)); !errors.Is(err, emv.ErrTLV) {
			t.Errorf("%s: %v, want ErrTLV", bad, err)
		}
	}
	long := emv.EncodeTLV(nil, 0x70, make([]byte, 300))
	if objs, err := emv.DecodeTLV(long); err != nil || len(objs[0].Value) != 300 {
		t.Fatalf("long form: %v", err)
	}
	if emv.Tag(0x9F02).String() != "9F02" || emv.Tag(0x5A).String() != "5A" || !emv.Tag(0xBF0C).Constructed() {
		t.Fatal("tag helpers")
	}
}

func TestParseDOL(t *testing.T) {
	dol, err := emv.ParseDOL(cardreadertest.X("9F6604 9F0206 9505"))
	if err != nil || len(dol) != 3 || dol[0] != (emv.DOLEntry{Tag: 0x9F66, Len: 4}) || dol[2].Len != 5 {
		t.Fatalf("%+v %v", dol, err)
	}
	if _, err := emv.ParseDOL(cardreadertest.X("9F66")); !errors.Is(err, emv.ErrTLV) {
		t.Fatalf("truncated DOL: %v", err)
	}
}

func FuzzDecodeTLV(f *testing.F) {
	f.Add(cardreadertest.X("6F1C840E315041592E5359532E4444463031A50A8801015F2D047A68656E"))
	f.Add(cardreadertest.X("800E7C00080102001001010018010100"))
	f.Add(cardreadertest.X("70819F"))
	f.Fuzz(func(t *testing.T, b []byte) {
		objs, err := emv.DecodeTLV(b)
		if err != nil {
			if !errors.Is(err, emv.ErrTLV) {
				t.Fatalf("error not ErrTLV: %v", err)
			}
			return
		}
		// Every value lies within the input.
		var walk func([]emv.TLV)
		walk = func(os []emv.TLV) {
			for _, o := range os {
				if len(o.Value) > len(b) {
					t.Fatal("value longer than input")
				}
				walk(o.Children)
			}
		}
		walk(objs)
		_, _ = emv.ParseDOL(b)
		if _, err := emv.DescribeJSON(b); err != nil {
			t.Fatalf("Describe failed where DecodeTLV succeeded: %v", err)
		}
	})
}

// FuzzRead feeds arbitrary card answers to the whole flow: whatever the card
// says, Read returns (a result or an error) without panicking.
func FuzzRead(f *testing.F) {
	f.Add(cardreadertest.X("0C 6F088402AAAA A5020000 9000 02 6A82"))
	f.Add(cardreadertest.X("02 6A82 02 9000 02 6985"))
	f.Add(cardreadertest.X("1C 6F1C840E315041592E5359532E4444463031A50A8801015F2D047A68 02 6104"))
	f.Fuzz(func(t *testing.T, script []byte) {
		card := &cardreadertest.Func{Respond: func([]byte) ([]byte, error) {
			// Each answer is a length byte and that many bytes; after the
			// script the card answers 6A82 to everything.
			if len(script) == 0 {
				return []byte{0x6A, 0x82}, nil
			}
			n := min(int(script[0]), len(script)-1)
			r := script[1 : 1+n]
			script = script[1+n:]
			return r, nil
		}}
		term := emv.DefaultTerminal()
		term.Contactless = len(script)%2 == 1
		_, _ = emv.Read(context.Background(), card, term, emv.Transaction{})
	})
}
