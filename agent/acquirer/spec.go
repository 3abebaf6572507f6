package acquirer

import (
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/encoding"
	iso8583errors "github.com/moov-io/iso8583/errors"
	"github.com/moov-io/iso8583/field"
	"github.com/moov-io/iso8583/prefix"
)

// Spec is the UnionPay POS dialect (PROTOCOLS.md §1) as data: BCD MTI and
// numerics, BCD LL/LLL length prefixes, a binary 8-byte bitmap.
//
// Fixed-length numerics are right-justified (a leading 0 nibble for odd
// lengths) except field 22, which UnionPay wants left-justified. Variable
// numerics (2, 32, 48, 60, 61) are left-justified with a trailing 0 nibble, as
// UnionPay hosts pack them; the length prefix says how many digits are real.
var Spec = &iso8583.MessageSpec{
	Name: "UnionPay POS",
	Fields: map[int]field.Field{
		0:  field.NewString(fixedBCD(4, "Message Type Indicator")),
		1:  field.NewBitmap(&field.Spec{Length: 8, Description: "Bitmap", Enc: encoding.Binary, Pref: prefix.Binary.Fixed}),
		2:  field.NewString(varBCD(prefix.BCD.LL, 19, "Primary Account Number")),
		3:  field.NewString(fixedBCD(6, "Processing Code")),
		4:  field.NewString(fixedBCD(12, "Amount, Transaction")),
		11: field.NewString(fixedBCD(6, "System Trace Audit Number")),
		12: field.NewString(fixedBCD(6, "Time, Local Transaction (hhmmss)")),
		13: field.NewString(fixedBCD(4, "Date, Local Transaction (MMDD)")),
		14: field.NewString(fixedBCD(4, "Date, Expiration (YYMM)")),
		15: field.NewString(fixedBCD(4, "Date, Settlement (MMDD)")),
		22: field.NewString(&field.Spec{Length: 3, Description: "Point of Service Entry Mode", Enc: bcdLeft, Pref: prefix.BCD.Fixed}),
		23: field.NewString(fixedBCD(3, "Card Sequence Number")),
		25: field.NewString(fixedBCD(2, "Point of Service Condition Code")),
		26: field.NewString(fixedBCD(2, "Point of Service PIN Capture Code")),
		32: field.NewString(varBCD(prefix.BCD.LL, 11, "Acquiring Institution Identification Code")),
		35: field.NewString(&field.Spec{Length: 37, Description: "Track 2 Data", Enc: trackEncoding, Pref: prefix.BCD.LL}),
		36: field.NewString(&field.Spec{Length: 104, Description: "Track 3 Data", Enc: trackEncoding, Pref: prefix.BCD.LLL}),
		37: field.NewString(fixedASCII(12, "Retrieval Reference Number")),
		38: field.NewString(fixedASCII(6, "Authorization Identification Response")),
		39: field.NewString(fixedASCII(2, "Response Code")),
		41: field.NewString(fixedASCII(8, "Card Acceptor Terminal Identification")),
		42: field.NewString(fixedASCII(15, "Card Acceptor Identification Code")),
		44: field.NewString(&field.Spec{Length: 25, Description: "Additional Response Data", Enc: encoding.ASCII, Pref: prefix.BCD.LL}),
		48: field.NewString(varBCD(prefix.BCD.LLL, 322, "Additional Data - Private")),
		49: field.NewString(fixedASCII(3, "Currency Code, Transaction")),
		52: field.NewBinary(&field.Spec{Length: 8, Description: "PIN Data", Enc: encoding.Binary, Pref: prefix.Binary.Fixed}),
		53: field.NewString(fixedBCD(16, "Security Related Control Information")),
		54: field.NewString(&field.Spec{Length: 20, Description: "Balance Amount", Enc: encoding.ASCII, Pref: prefix.BCD.LLL}),
		55: field.NewBinary(&field.Spec{Length: 255, Description: "ICC Data (BER-TLV)", Enc: encoding.Binary, Pref: prefix.BCD.LLL}),
		60: field.NewString(varBCD(prefix.BCD.LLL, 17, "Reserved Private (60.1-60.5)")),
		61: field.NewString(varBCD(prefix.BCD.LLL, 29, "Original Message (batch, voucher, date)")),
		62: field.NewBinary(&field.Spec{Length: 512, Description: "Reserved Private (keys, downloads, status)", Enc: encoding.Binary, Pref: prefix.BCD.LLL}),
		63: field.NewString(&field.Spec{Length: 163, Description: "Reserved Private (operator, card organisation)", Enc: encoding.ASCII, Pref: prefix.BCD.LLL}),
		64: field.NewBinary(&field.Spec{Length: 8, Description: "Message Authentication Code", Enc: encoding.Binary, Pref: prefix.Binary.Fixed}),
	},
}

func fixedBCD(n int, desc string) *field.Spec {
	return &field.Spec{Length: n, Description: desc, Enc: bcdRight, Pref: prefix.BCD.Fixed}
}

func varBCD(p prefix.Prefixer, n int, desc string) *field.Spec {
	return &field.Spec{Length: n, Description: desc, Enc: bcdLeft, Pref: p}
}

func fixedASCII(n int, desc string) *field.Spec {
	return &field.Spec{Length: n, Description: desc, Enc: encoding.ASCII, Pref: prefix.BCD.Fixed}
}

// ErrMalformed is wrapped by every FieldError.
var ErrMalformed = errors.New("malformed")

// FieldError says which field could not be packed or unpacked. It never
// carries the value nor the library's message (which may quote it); Field is
// 0 for the MTI, 1 for the bitmap and -1 when the failing field is unknown.
type FieldError struct {
	Op    string // "pack" or "unpack"
	Field int
}

// Error names the operation and the field, never the value.
func (e *FieldError) Error() string {
	if e.Field < 0 {
		// The library could not say which field (or panicked and was recovered).
		return fmt.Sprintf("acquirer: %s message: %v", e.Op, ErrMalformed)
	}
	return fmt.Sprintf("acquirer: %s field %d: %v", e.Op, e.Field, ErrMalformed)
}

// Unwrap lets callers test for ErrMalformed.
func (e *FieldError) Unwrap() error { return ErrMalformed }

// NewMessage returns an empty message of the dialect with its MTI set.
func NewMessage(mti string) *iso8583.Message {
	m := iso8583.NewMessage(Spec)
	m.MTI(mti)
	return m
}

// Pack renders m from the MTI on. A failing field is named, its value is not.
func Pack(m *iso8583.Message) (b []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, &FieldError{Op: "pack", Field: -1}
		}
	}()
	b, err = m.Pack()
	if err == nil {
		return b, nil
	}
	// Find the culprit by packing field by field: the library's message would
	// name it, but may quote the value with it.
	ids := make([]int, 0, len(m.GetFields()))
	for id := range m.GetFields() {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		if _, ferr := m.GetFields()[id].Pack(); ferr != nil {
			return nil, &FieldError{Op: "pack", Field: id}
		}
	}
	return nil, &FieldError{Op: "pack", Field: -1}
}

// Unpack parses b (from the MTI on). It never panics on hostile input.
func Unpack(b []byte) (m *iso8583.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, &FieldError{Op: "unpack", Field: -1}
		}
	}()
	m = iso8583.NewMessage(Spec)
	if err := m.Unpack(b); err != nil {
		id := -1
		var ue *iso8583errors.UnpackError
		if errors.As(err, &ue) {
			if n, cerr := strconv.Atoi(ue.FieldID); cerr == nil {
				id = n
			}
		}
		return nil, &FieldError{Op: "unpack", Field: id}
	}
	return m, nil
}

// Get returns field id as a string, "" when absent.
func Get(m *iso8583.Message, id int) string {
	if !hasField(m, id) {
		return ""
	}
	s, err := m.GetString(id)
	if err != nil {
		return ""
	}
	return s
}

// GetBytes returns a binary field, nil when absent.
func GetBytes(m *iso8583.Message, id int) []byte {
	if !hasField(m, id) {
		return nil
	}
	b, err := m.GetBytes(id)
	if err != nil {
		return nil
	}
	return b
}

func hasField(m *iso8583.Message, id int) bool {
	_, ok := m.GetFields()[id]
	return ok
}

// Set sets field id, naming the field (not the value) on failure.
func Set(m *iso8583.Message, id int, v string) error {
	if err := m.Field(id, v); err != nil {
		return &FieldError{Op: "pack", Field: id}
	}
	return nil
}

// SetBytes sets a binary field.
func SetBytes(m *iso8583.Message, id int, v []byte) error {
	if err := m.BinaryField(id, v); err != nil {
		return &FieldError{Op: "pack", Field: id}
	}
	return nil
}

// Field60 is the UnionPay reserved-private field 60, kept as its sub-fields.
type Field60 struct {
	Type  string // 60.1 message type code, 2 digits ("00" management, "22" sale, "23" void)
	Batch string // 60.2 batch number, 6 digits
	Code  string // 60.3 network-management or transaction code, 3 digits
	// Reader and Fallback are 60.4 and 60.5 of financial messages ("5": the
	// terminal reads IC; "0" or "2" for fallback). Empty for management.
	Reader   string
	Fallback string
}

// String renders the digits of field 60.
func (f Field60) String() string {
	s := f.Type + f.Batch + f.Code
	if f.Reader != "" || f.Fallback != "" {
		s += f.Reader + f.Fallback
	}
	return s
}

// ParseField60 splits field 60 into its sub-fields; missing trailing
// sub-fields are empty.
func ParseField60(s string) (Field60, error) {
	if len(s) < 8 {
		return Field60{}, &FieldError{Op: "unpack", Field: 60}
	}
	f := Field60{Type: s[:2], Batch: s[2:8]}
	rest := s[8:]
	take := func(n int) string {
		if len(rest) < n {
			r := rest
			rest = ""
			return r
		}
		r := rest[:n]
		rest = rest[n:]
		return r
	}
	f.Code, f.Reader, f.Fallback = take(3), take(1), take(1)
	return f, nil
}
