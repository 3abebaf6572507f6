package acquirer

import (
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/moov-io/iso8583"
)

// annotateFrame renders a whole frame (length prefix included) as
// "hex  # what it is" lines, one per part and field, for the golden files
// of testdata/golden: annotated() reads them back to the same bytes, so a
// reviewer can check a message byte by byte against PROTOCOLS.md.
func annotateFrame(t *testing.T, wire []byte) string {
	t.Helper()
	f, err := DecodeFrame(wire)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Unpack(f.Message)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	line := func(raw []byte, format string, args ...any) {
		h := strings.ToUpper(hex.EncodeToString(raw))
		first := true
		for len(h) > 0 || first {
			n := min(len(h), 64)
			pad := 36
			if first {
				fmt.Fprintf(&b, "%-*s # %s\n", pad, h[:n], fmt.Sprintf(format, args...))
			} else {
				fmt.Fprintf(&b, "%s\n", h[:n])
			}
			h, first = h[n:], false
		}
	}
	line(wire[:2], "length: %d bytes follow", len(wire)-2)
	line(f.TPDU[:], "TPDU: id %02X, destination %X, source %X", f.TPDU[0], f.TPDU[1:3], f.TPDU[3:5])
	line(f.Header[:], "header: class %X, version %X, terminal status %d, processing requirement %d, sub-version %X",
		f.Header[0], f.Header[1], f.Header[2]>>4, f.Header[2]&0x0F, f.Header[3:])
	mti, _ := m.GetMTI()
	line(f.Message[:2], "MTI %s", mti)
	ids := fieldIDs(m)
	var names []string
	for _, id := range ids {
		names = append(names, fmt.Sprint(id))
	}
	line(f.Message[2:10], "bitmap: %s", strings.Join(names, " "))
	for _, id := range ids {
		packed, err := m.GetFields()[id].Pack()
		if err != nil {
			t.Fatalf("field %d: %v", id, err)
		}
		line(packed, "%d %s: %s", id, m.GetFields()[id].Spec().Description, fieldNote(m, id))
	}
	var again strings.Builder
	for _, l := range strings.Split(b.String(), "\n") {
		l, _, _ = strings.Cut(l, "#")
		again.WriteString(strings.TrimSpace(l))
	}
	if again.String() != strings.ToUpper(hex.EncodeToString(wire)) {
		t.Fatal("the annotation does not render the frame")
	}
	return b.String()
}

func fieldIDs(m *iso8583.Message) []int {
	var ids []int
	for id := range m.GetFields() {
		if id > 1 {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	return ids
}

// fieldNote is the field's value as a reader wants it: sub-fields of 60,
// field 62 as ASCII or as its tags, binary fields as hex.
func fieldNote(m *iso8583.Message, id int) string {
	switch id {
	case 52, 55, 62, 64:
		v := GetBytes(m, id)
		if id == 62 {
			return note62(v)
		}
		return fmt.Sprintf("%d bytes", len(v))
	case 60:
		f, err := ParseField60(Get(m, 60))
		if err != nil {
			return Get(m, 60)
		}
		s := fmt.Sprintf("60.1 %s, 60.2 %s, 60.3 %s", f.Type, f.Batch, f.Code)
		if f.Reader != "" {
			s += fmt.Sprintf(", 60.4 %s, 60.5 %s", f.Reader, f.Fallback)
		}
		return s
	}
	return fmt.Sprintf("%q", Get(m, id))
}

func note62(v []byte) string {
	printable := len(v) > 0
	for _, c := range v {
		if c < 0x20 || c > 0x7E {
			printable = false
		}
	}
	if printable {
		return fmt.Sprintf("%d bytes, ASCII %q", len(v), v)
	}
	if tlvs, err := decodeTLVField(v, 62); err == nil {
		var tags []string
		for _, t := range tlvs {
			tags = append(tags, fmt.Sprintf("%s(%d)", t.Tag, len(t.Value)))
		}
		return fmt.Sprintf("%d bytes, TLV %s", len(v), strings.Join(tags, " "))
	}
	return fmt.Sprintf("%d bytes", len(v))
}
