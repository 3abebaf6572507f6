package acquirer

import (
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/moov-io/bertlv"
	"github.com/moov-io/iso8583"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/provisioning/pan"
)

// Description is a JSON-able view of a message: {"mti": ..., "fields": {...}}.
// Binary fields are uppercase hex, field 55 is a TLV list, and sensitive
// fields are masked unless revealed.
type Description struct {
	MTI    string         `json:"mti"`
	Fields map[string]any `json:"fields"`
}

// TLV is one element of field 55 in a Description.
type TLV struct {
	Tag   string `json:"tag"`
	Value string `json:"value,omitempty"` // hex
	TLVs  []TLV  `json:"tlvs,omitempty"`
}

// masked replaces a secret value of n characters.
func masked(n int) string { return fmt.Sprintf("[masked %d]", n) }

// Describe renders m for people and logs. Unless reveal is set, the PAN (2)
// shows first 6 / last 4, tracks (35, 36), the PIN block (52) and keys (62)
// are replaced, and inside field 55 the cardholder data EMV descriptions
// mask (emv.Sensitive: PAN 5A, tracks 56/57/9F6B, discretionary data
// 9F1F/9F20, names 5F20/9F0B) is masked.
func Describe(m *iso8583.Message, reveal bool) (Description, error) {
	mti, err := m.GetMTI()
	if err != nil {
		return Description{}, &FieldError{Op: "describe", Field: 0}
	}
	d := Description{MTI: mti, Fields: map[string]any{}}
	ids := make([]int, 0)
	for id := range m.GetFields() {
		if id > 1 {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	for _, id := range ids {
		key := strconv.Itoa(id)
		switch id {
		case 52, 55, 62, 64:
			b := GetBytes(m, id)
			switch {
			case id == 55:
				d.Fields[key] = describeTLV(b, reveal)
			case reveal || id == 64:
				d.Fields[key] = strings.ToUpper(hex.EncodeToString(b))
			default:
				d.Fields[key] = masked(len(b))
			}
		default:
			s := Get(m, id)
			switch {
			case reveal:
			case id == 2:
				s = pan.Mask(s)
			case id == 35 || id == 36:
				s = masked(len(s))
			}
			d.Fields[key] = s
		}
	}
	return d, nil
}

// sensitiveTag reports whether a field-55 tag (hex) carries cardholder
// data: the list is emv's, so the card's and the host message's
// descriptions cannot drift apart.
func sensitiveTag(tag string) bool {
	t, err := strconv.ParseUint(tag, 16, 32)
	return err == nil && emv.Sensitive(emv.Tag(t))
}

func describeTLV(b []byte, reveal bool) any {
	tlvs, err := decodeTLVField(b, 55)
	if err != nil {
		// Not TLV: show it only when revealing, it may be anything.
		if reveal {
			return strings.ToUpper(hex.EncodeToString(b))
		}
		return masked(len(b))
	}
	return convertTLV(tlvs, reveal)
}

func convertTLV(in []bertlv.TLV, reveal bool) []TLV {
	out := make([]TLV, 0, len(in))
	for _, t := range in {
		e := TLV{Tag: t.Tag}
		if len(t.TLVs) > 0 {
			e.TLVs = convertTLV(t.TLVs, reveal)
		} else if !reveal && sensitiveTag(t.Tag) {
			e.Value = masked(len(t.Value) * 2)
		} else {
			e.Value = strings.ToUpper(hex.EncodeToString(t.Value))
		}
		out = append(out, e)
	}
	return out
}
