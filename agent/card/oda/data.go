package oda

import (
	"errors"
	"fmt"
)

// ErrStaticData: the static data to be authenticated cannot be built from
// what the card gave — a record of SFI 1 to 10 that is not a 70 template, or
// an SDA tag list (9F4A) that names a tag other than the AIP. Book 3 §10.3
// counts that as offline data authentication performed and failed: the
// kernel sets the failed bit of the method it chose.
var ErrStaticData = errors.New("oda: static data to be authenticated invalid")

// Record is one record a READ RECORD returned for an AFL entry, among the
// entry's first "number of records involved in offline data authentication"
// (the AFL entry's fourth byte): its SFI and the response data as received.
type Record struct {
	SFI  byte
	Data []byte
}

// StaticData builds the static data to be authenticated, the input of
// RecoverICCKey and VerifySDA (Book 3 §10.3): in AFL order, for SFI 1 to 10
// the value of the record's 70 template (its tag and length excluded), for
// SFI 11 to 30 the whole record as received; then, when the card gave an SDA
// tag list (9F4A), the AIP's value — the only tag the list may name.
func StaticData(records []Record, sdaTagList, aip []byte) ([]byte, error) {
	var out []byte
	for i, r := range records {
		switch {
		case r.SFI >= 1 && r.SFI <= 10:
			tag, v, rest, err := nextTLV(r.Data)
			if err != nil || tag != 0x70 || len(rest) != 0 {
				return nil, failf(ErrStaticData, "record %d (SFI %d) is not one 70 template", i+1, r.SFI)
			}
			out = append(out, v...)
		case r.SFI >= 11 && r.SFI <= 30:
			out = append(out, r.Data...)
		default:
			return nil, failf(ErrStaticData, "record %d has SFI %d", i+1, r.SFI)
		}
	}
	if len(sdaTagList) == 0 {
		return out, nil
	}
	if len(sdaTagList) != 1 || sdaTagList[0] != 0x82 {
		return nil, failf(ErrStaticData, "9F4A names tags other than 82")
	}
	if len(aip) != 2 {
		return nil, failWith(ErrStaticData, ErrMissingData, "9F4A names the AIP (82), which is missing")
	}
	return append(out, aip...), nil
}

// CDATransactionData builds VerifyCDA's txnData (Book 2 §6.6.2 step 9):
// pdolData (the GET PROCESSING OPTIONS data the terminal sent, without its 83
// tag and length), cdolData (the CDOL1 data of this GENERATE AC, or CDOL1
// data || CDOL2 data for the second), then every data object of the GENERATE
// AC answer's 77 template but 9F4B, each as received — tag, length and value
// — in the card's order. answer is the response data, 77 template included;
// a format 1 (80) answer cannot carry CDA and is refused.
func CDATransactionData(pdolData, cdolData, answer []byte) ([]byte, error) {
	tag, body, rest, err := nextTLV(answer)
	if err != nil || tag != 0x77 || len(rest) != 0 {
		return nil, failf(ErrCDA, "GENERATE AC answer is not one 77 template")
	}
	out := append(append([]byte(nil), pdolData...), cdolData...)
	seen := false
	for len(body) > 0 {
		tag, _, next, err := nextTLV(body)
		if err != nil {
			return nil, failf(ErrCDA, "GENERATE AC answer: %v", err)
		}
		if tag == 0x9F4B {
			seen = true
		} else {
			out = append(out, body[:len(body)-len(next)]...)
		}
		body = next
	}
	if !seen {
		return nil, failWith(ErrCDA, ErrMissingData, "GENERATE AC answer has no 9F4B")
	}
	return out, nil
}

// nextTLV reads one BER-TLV (ISO/IEC 8825-1 as EMV Book 3 Annex B uses it:
// tags of up to 3 bytes, lengths of up to 3 bytes after 81/82/83) and
// returns its tag as a number, its value and what follows.
func nextTLV(b []byte) (tag uint32, value, rest []byte, err error) {
	if len(b) == 0 {
		return 0, nil, nil, errors.New("empty")
	}
	i := 1
	tag = uint32(b[0])
	if b[0]&0x1F == 0x1F {
		for {
			if i >= len(b) || i >= 3 {
				return 0, nil, nil, errors.New("tag truncated or too long")
			}
			tag = tag<<8 | uint32(b[i])
			i++
			if b[i-1]&0x80 == 0 {
				break
			}
		}
	}
	if i >= len(b) {
		return 0, nil, nil, fmt.Errorf("tag %X without a length", tag)
	}
	n := int(b[i])
	i++
	if n > 0x80 {
		k := n - 0x80
		if k > 3 || i+k > len(b) {
			return 0, nil, nil, fmt.Errorf("tag %X: length truncated or too long", tag)
		}
		n = 0
		for _, c := range b[i : i+k] {
			n = n<<8 | int(c)
		}
		i += k
	} else if n == 0x80 {
		return 0, nil, nil, fmt.Errorf("tag %X: indefinite length", tag)
	}
	if n > len(b)-i {
		return 0, nil, nil, fmt.Errorf("tag %X: value truncated", tag)
	}
	return tag, b[i : i+n], b[i+n:], nil
}
