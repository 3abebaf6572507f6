package acquirer

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/moov-io/bertlv"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// Field 62 of the procedure's answers, and field 48 of settlement and batch
// upload. Every parser here reads bytes a host (or anyone on the link) sent:
// none panics, and each error names what is wrong, never the bytes.

// ErrBadField62 is wrapped by every error about a field 62 that does not
// parse as the message's layout says.
var ErrBadField62 = fmt.Errorf("acquirer: field 62: %w", ErrMalformed)

// ErrBadField48 is the same for field 48.
var ErrBadField48 = fmt.Errorf("acquirer: field 48: %w", ErrMalformed)

func bad62(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadField62}, args...)...)
}

// decodeTLVField is bertlv.Decode made safe for hostile input (a crafted
// long-form length can make it slice out of range); its error names field,
// not the bytes.
func decodeTLVField(b []byte, field int) (tlvs []bertlv.TLV, err error) {
	defer func() {
		if r := recover(); r != nil {
			tlvs, err = nil, &FieldError{Op: "unpack", Field: field}
		}
	}()
	tlvs, err = bertlv.Decode(b)
	if err != nil {
		return nil, &FieldError{Op: "unpack", Field: field}
	}
	return tlvs, nil
}

// List answers (372, 382) start with one ASCII control byte (LiaoYang_POS
// QueryEmvCapk/QueryEmvParam; the Centerm app's AsyncDownloadAidTask): '0'
// the host has none, '1' or '3' this is the last page, '2' another page
// follows. A single-entry answer (370, 380) starts with '1' when it holds
// the entry.
const (
	listNone = '0'
	listLast = '1'
	listMore = '2'
	listEnd  = '3'
)

// listBody splits a list answer into its control byte's meaning and TLVs.
func listBody(b []byte) (tlvs []bertlv.TLV, more bool, err error) {
	if len(b) == 0 {
		return nil, false, bad62("empty")
	}
	switch b[0] {
	case listNone:
		if len(b) > 1 {
			return nil, false, bad62("entries after the none-listed flag")
		}
		return nil, false, nil
	case listLast, listEnd, listMore:
	default:
		return nil, false, bad62("unknown list flag %#02x", b[0])
	}
	tlvs, err = decodeTLVField(b[1:], 62)
	if err != nil {
		return nil, false, bad62("list is not TLV (truncated?)")
	}
	return tlvs, b[0] == listMore, nil
}

// parseCAPKList reads a 372 answer: 9F06 RID, 9F22 index and DF05 expiry,
// entry after entry, each opened by its 9F06. An entry without its index,
// or an index outside an entry, is a broken list.
func parseCAPKList(b []byte) ([]provisioning.CAPKID, bool, error) {
	tlvs, more, err := listBody(b)
	if err != nil {
		return nil, false, err
	}
	var out []provisioning.CAPKID
	var cur *provisioning.CAPKID
	var haveIndex bool
	done := func() error {
		if cur != nil && !haveIndex {
			return bad62("CA key %d: no 9F22 index", len(out))
		}
		return nil
	}
	for _, t := range tlvs {
		switch t.Tag {
		case "9F06":
			if err := done(); err != nil {
				return nil, false, err
			}
			if len(t.Value) != 5 {
				return nil, false, bad62("CA key %d: RID of %d bytes", len(out)+1, len(t.Value))
			}
			out = append(out, provisioning.CAPKID{RID: bytes.Clone(t.Value)})
			cur, haveIndex = &out[len(out)-1], false
		case "9F22":
			if cur == nil || haveIndex || len(t.Value) != 1 {
				return nil, false, bad62("CA key %d: misplaced or bad 9F22", len(out))
			}
			cur.Index, haveIndex = t.Value[0], true
		case "DF05":
			if cur == nil || cur.Expiry != "" {
				return nil, false, bad62("CA key %d: misplaced DF05", len(out))
			}
			if cur.Expiry, err = expiry(t.Value); err != nil {
				return nil, false, err
			}
		}
	}
	if err := done(); err != nil {
		return nil, false, err
	}
	return out, more, nil
}

// expiry reads DF05: eight ASCII digits YYYYMMDD, as CUP sends it
// (LiaoYang_POS SaveCapkInfoItem: "目前CUP是按照这个ASCII数字串返回的"), or the
// same packed as BCD (YYMMDD or YYYYMMDD).
func expiry(v []byte) (string, error) {
	var s string
	switch len(v) {
	case 8:
		s = string(v)
	case 3, 4:
		s = strings.ToUpper(hex.EncodeToString(v))
	default:
		return "", bad62("DF05 expiry of %d bytes", len(v))
	}
	if !isDigits(s, len(s)) {
		return "", bad62("DF05 expiry is not a date")
	}
	return s, nil
}

// tlvMap indexes primitive TLVs by tag, refusing a tag given twice: two
// values for one parameter leave nothing to believe.
func tlvMap(tlvs []bertlv.TLV) (map[string][]byte, error) {
	m := make(map[string][]byte, len(tlvs))
	for _, t := range tlvs {
		if _, dup := m[t.Tag]; dup {
			return nil, bad62("tag %s given twice", t.Tag)
		}
		m[t.Tag] = t.Value
	}
	return m, nil
}

// entryBody is a 370/380 answer's TLVs: the control byte must say the
// entry is there.
func entryBody(b []byte) (map[string][]byte, error) {
	if len(b) == 0 {
		return nil, bad62("empty")
	}
	if b[0] != listLast {
		return nil, fmt.Errorf("%w (field 62 flag %#02x)", ErrNotListed, b[0])
	}
	tlvs, err := decodeTLVField(b[1:], 62)
	if err != nil {
		return nil, bad62("entry is not TLV (truncated?)")
	}
	return tlvMap(tlvs)
}

// Algorithm indicators of a CA key (EMV Book 2, Annex B2): SHA-1 and RSA are
// the only ones Verify knows. The SM2/SM3 keys of PBOC 3.0 (DF07 04, DF06
// 07 in the Centerm app's AsyncDownloadCapkTask) are refused rather than
// checked with the wrong hash.
const (
	hashSHA1 = 0x01
	keyRSA   = 0x01
)

// parseCAPK reads a 370 answer: 9F06 RID, 9F22 index, DF05 expiry, DF06
// hash algorithm, DF07 key algorithm, DF02 modulus, DF04 exponent, DF03
// checksum (LiaoYang_POS SaveEmvCapkItem). It must be the key asked for,
// and its checksum must verify.
func parseCAPK(b []byte, want provisioning.CAPKID) (provisioning.CAPK, error) {
	m, err := entryBody(b)
	if err != nil {
		return provisioning.CAPK{}, err
	}
	k := provisioning.CAPK{RID: bytes.Clone(m["9F06"]), Modulus: bytes.Clone(m["DF02"]),
		Exponent: bytes.Clone(m["DF04"]), Checksum: bytes.Clone(m["DF03"]), HashAlgo: hashSHA1, KeyAlgo: keyRSA}
	idx := m["9F22"]
	if len(k.RID) != 5 || len(idx) != 1 {
		return provisioning.CAPK{}, bad62("CA key without its RID and index")
	}
	k.Index = idx[0]
	if !bytes.Equal(k.RID, want.RID) || k.Index != want.Index {
		return provisioning.CAPK{}, bad62("CA key %s answered for %s", k.ID(), want)
	}
	if k.Expiry, err = expiry(m["DF05"]); err != nil {
		return provisioning.CAPK{}, err
	}
	for _, a := range []struct {
		tag string
		dst *byte
	}{{"DF06", &k.HashAlgo}, {"DF07", &k.KeyAlgo}} {
		v, ok := m[a.tag]
		if !ok {
			continue // LiaoYang_POS reads neither: SHA-1 and RSA
		}
		if len(v) != 1 {
			return provisioning.CAPK{}, bad62("%s of %d bytes", a.tag, len(v))
		}
		*a.dst = v[0]
	}
	if k.HashAlgo != hashSHA1 || k.KeyAlgo != keyRSA {
		return provisioning.CAPK{}, fmt.Errorf("acquirer: CA key %s: hash %02X / key algorithm %02X not supported", k.ID(), k.HashAlgo, k.KeyAlgo)
	}
	switch {
	case len(k.Modulus) == 0 || len(k.Modulus) > 248:
		return provisioning.CAPK{}, bad62("CA key %s: modulus of %d bytes", k.ID(), len(k.Modulus))
	case len(k.Exponent) != 1 && len(k.Exponent) != 3:
		return provisioning.CAPK{}, bad62("CA key %s: exponent of %d bytes", k.ID(), len(k.Exponent))
	case len(k.Checksum) != 20:
		return provisioning.CAPK{}, bad62("CA key %s: checksum of %d bytes", k.ID(), len(k.Checksum))
	}
	if err := k.Verify(); err != nil {
		return provisioning.CAPK{}, fmt.Errorf("acquirer: %w", err)
	}
	return k, nil
}

// parseAIDList reads a 382 answer: 9F06 AIDs (LiaoYang_POS SaveOneAid);
// other tags a host adds are skipped.
func parseAIDList(b []byte) ([][]byte, bool, error) {
	tlvs, more, err := listBody(b)
	if err != nil {
		return nil, false, err
	}
	var out [][]byte
	for _, t := range tlvs {
		if t.Tag != "9F06" {
			continue
		}
		if len(t.Value) < 5 || len(t.Value) > 16 {
			return nil, false, bad62("AID %d of %d bytes", len(out)+1, len(t.Value))
		}
		out = append(out, bytes.Clone(t.Value))
	}
	return out, more, nil
}

// parseAppParams reads a 380 answer (LiaoYang_POS SaveAppParamItem): 9F06
// AID, DF01 application selection indicator, 9F09 application version,
// DF11/DF12/DF13 TAC default/online/denial, 9F1B floor limit and DF15
// random-selection threshold (4 bytes binary), DF16/DF17 maximum target and
// target percentages (1 byte BCD), DF14 default DDOL, DF18 online PIN
// capable. Both public apps send the version as 9F08 (LiaoYang_POS
// SaveAppParamItem; the Centerm app's config/BusinessConfig.java defaults):
// 9F09 is read first, then 9F08. The contactless reader limits DF19, DF20
// and DF21 (6-byte BCD amounts, LiaoYang_POS and the Centerm app alike) go
// to the qPBOC kernel; the e-cash limit 9F7B is skipped (no e-cash here).
func parseAppParams(b []byte, want []byte) (provisioning.AppParams, error) {
	m, err := entryBody(b)
	if err != nil {
		return provisioning.AppParams{}, err
	}
	a := provisioning.AppParams{AID: bytes.Clone(m["9F06"])}
	if !bytes.Equal(a.AID, want) {
		return provisioning.AppParams{}, bad62("parameters for another AID")
	}
	if v, ok := m["DF01"]; ok {
		if len(v) != 1 {
			return provisioning.AppParams{}, bad62("DF01 of %d bytes", len(v))
		}
		a.PartialMatch = v[0] == 0
	}
	ver, ok := m["9F09"]
	if !ok {
		ver, ok = m["9F08"]
	}
	if ok {
		if len(ver) != 2 {
			return provisioning.AppParams{}, bad62("application version of %d bytes", len(ver))
		}
		a.Version = bytes.Clone(ver)
	}
	for _, t := range []struct {
		tag string
		dst *[]byte
	}{{"DF11", &a.TACDefault}, {"DF12", &a.TACOnline}, {"DF13", &a.TACDenial}} {
		v := m[t.tag]
		if len(v) != 5 {
			// A missing TAC would run terminal action analysis on zeros:
			// accept nothing rather than a silent default.
			return provisioning.AppParams{}, bad62("%s (TAC) of %d bytes", t.tag, len(v))
		}
		*t.dst = bytes.Clone(v)
	}
	for _, t := range []struct {
		tag string
		dst *int64
	}{{"9F1B", &a.FloorLimit}, {"DF15", &a.Threshold}} {
		v, ok := m[t.tag]
		if !ok {
			continue // 0: every transaction goes online
		}
		if len(v) != 4 {
			return provisioning.AppParams{}, bad62("%s of %d bytes", t.tag, len(v))
		}
		*t.dst = int64(v[0])<<24 | int64(v[1])<<16 | int64(v[2])<<8 | int64(v[3])
	}
	for _, t := range []struct {
		tag string
		dst *int
	}{{"DF16", &a.MaxTargetPercent}, {"DF17", &a.TargetPercent}} {
		v, ok := m[t.tag]
		if !ok {
			continue
		}
		if len(v) != 1 || v[0]>>4 > 9 || v[0]&0x0F > 9 {
			return provisioning.AppParams{}, bad62("%s is not one BCD byte", t.tag)
		}
		*t.dst = int(v[0]>>4)*10 + int(v[0]&0x0F)
	}
	if a.TargetPercent > a.MaxTargetPercent && a.MaxTargetPercent > 0 {
		return provisioning.AppParams{}, bad62("target percentage above its maximum")
	}
	if v, ok := m["DF14"]; ok {
		a.DefaultDDOL = bytes.Clone(v)
	}
	if v, ok := m["DF18"]; ok {
		if len(v) != 1 {
			return provisioning.AppParams{}, bad62("DF18 of %d bytes", len(v))
		}
		a.OnlinePIN = v[0] != 0
	}
	for _, t := range []struct {
		tag string
		dst **int64
	}{{"DF19", &a.CLFloorLimit}, {"DF20", &a.CLTransactionLimit}, {"DF21", &a.CVMLimit}} {
		v, ok := m[t.tag]
		if !ok {
			continue
		}
		n, ok := bcdAmount(v)
		if !ok {
			return provisioning.AppParams{}, bad62("%s is not a 6-byte BCD amount", t.tag)
		}
		*t.dst = &n
	}
	return a, nil
}

// bcdAmount reads an n12 amount: 6 bytes of BCD, minor units.
func bcdAmount(v []byte) (int64, bool) {
	if len(v) != 6 {
		return 0, false
	}
	var n int64
	for _, b := range v {
		hi, lo := b>>4, b&0x0F
		if hi > 9 || lo > 9 {
			return 0, false
		}
		n = n*100 + int64(hi)*10 + int64(lo)
	}
	return n, true
}

// parseTerminalParams reads a terminal-parameter answer: two ASCII digits
// of tag, then the tag's value of the width the profile says, again and
// again (LiaoYang_POS UpdateParameters). A tag the profile does not know
// leaves the rest unreadable, so it is an error naming the tag: the profile
// is what to fix. The host timeout (12), merchant name (22, GBK) and resend
// count (23) are read into their fields; every other tag is kept in Other,
// text trimmed, anything else as hex.
func parseTerminalParams(p Profile, b []byte) (provisioning.TerminalParams, error) {
	if len(b) == 0 {
		return provisioning.TerminalParams{}, bad62("no parameters")
	}
	var out provisioning.TerminalParams
	seen := map[string]bool{}
	for len(b) > 0 {
		if len(b) < 2 || !isDigits(string(b[:2]), 2) {
			return provisioning.TerminalParams{}, bad62("parameter tag is not two digits")
		}
		tag := string(b[:2])
		pt, ok := p.paramTag(tag)
		if !ok {
			return provisioning.TerminalParams{}, bad62("parameter tag %s is not in profile %s", tag, p.Name)
		}
		if len(b) < 2+pt.Width {
			return provisioning.TerminalParams{}, bad62("parameter %s cut short", tag)
		}
		v := b[2 : 2+pt.Width]
		b = b[2+pt.Width:]
		if seen[tag] {
			return provisioning.TerminalParams{}, bad62("parameter %s given twice", tag)
		}
		seen[tag] = true
		switch tag {
		case paramHostTimeout:
			n, err := number(v)
			if err != nil {
				return provisioning.TerminalParams{}, bad62("parameter %s is not a number", tag)
			}
			out.HostTimeout = time.Duration(n) * time.Second
		case paramResend:
			n, err := number(v)
			if err != nil {
				return provisioning.TerminalParams{}, bad62("parameter %s is not a number", tag)
			}
			// LiaoYang_POS sends a reversal ucResendTimes+1 times
			// (Src/trancomm.c, the reversal loop).
			out.MaxReversals = n + 1
		case paramMerchantName:
			name, err := simplifiedchinese.GB18030.NewDecoder().Bytes(v)
			if err != nil || !utf8.Valid(name) {
				return provisioning.TerminalParams{}, bad62("merchant name is not GBK")
			}
			out.MerchantName = strings.TrimRight(strings.TrimSpace(string(name)), "\x00")
		default:
			if out.Other == nil {
				out.Other = map[string]string{}
			}
			out.Other[tag] = paramText(v)
		}
	}
	return out, nil
}

// number reads a zero- or space-padded decimal parameter.
func number(v []byte) (int, error) {
	s := strings.TrimSpace(string(v))
	if s == "" || !isDigits(s, len(s)) {
		return 0, errors.New("not a number")
	}
	return strconv.Atoi(s)
}

// paramText is a parameter's value for Other: printable ASCII trimmed of
// padding, or uppercase hex for anything else (26's switch bytes, say).
func paramText(v []byte) string {
	for _, c := range v {
		if c < 0x20 || c > 0x7E {
			return strings.ToUpper(hex.EncodeToString(v))
		}
	}
	return strings.TrimSpace(string(v))
}

// statusField builds a status upload's field 62 in the profile's layout:
// the host timeout (12) and resend count (23) from params' fields, other
// tags from params.Other (what the host set), else the tag's default.
func statusField(p Profile, params provisioning.TerminalParams) ([]byte, error) {
	var out []byte
	for _, t := range p.StatusTags {
		v, ok := params.Other[t.Tag]
		if !ok {
			v = t.Default
		}
		switch {
		case t.Tag == paramHostTimeout && params.HostTimeout > 0:
			v = strconv.Itoa(int(params.HostTimeout / time.Second))
		case t.Tag == paramResend && params.MaxReversals > 0:
			v = strconv.Itoa(params.MaxReversals - 1)
		}
		if len(v) > t.Width {
			return nil, fmt.Errorf("%w: status %s is wider than %d", &FieldError{Op: "pack", Field: 62}, t.Tag, t.Width)
		}
		pad := t.Width - len(v)
		out = append(out, t.Tag...)
		if t.Text {
			for i := 0; i < len(v); i++ {
				if v[i] < 0x20 || v[i] > 0x7E {
					return nil, &FieldError{Op: "pack", Field: 62}
				}
			}
			out = append(append(out, v...), bytes.Repeat([]byte{' '}, pad)...)
			continue
		}
		if v != "" && !isDigits(v, len(v)) {
			return nil, &FieldError{Op: "pack", Field: 62}
		}
		out = append(append(out, bytes.Repeat([]byte{'0'}, pad)...), v...)
	}
	return out, nil
}

// Settlement's field 48 (LiaoYang_POS PosSettleTran; the Centerm app's
// BaseField48 getTransSummary): for domestic then foreign cards, the debit
// amount (12) and count (3), the credit amount (12) and count (3), and one
// digit the terminal sends as 0 and the host answers with its verdict: 1
// balanced, 2 unbalanced, 3 error (the host's totals could not be
// compared; both apps then upload the batch as for 2). 62 digits.
const settleSide = 12 + 3 + 12 + 3 + 1

// settlementTotals renders the request's field 48.
func settlementTotals(dom, foreign provisioning.Totals) (string, error) {
	var b strings.Builder
	for _, t := range []provisioning.Totals{dom, foreign} {
		if t.DebitAmount < 0 || t.DebitAmount > 999999999999 || t.CreditAmount < 0 || t.CreditAmount > 999999999999 ||
			t.DebitCount < 0 || t.DebitCount > 999 || t.CreditCount < 0 || t.CreditCount > 999 {
			return "", &FieldError{Op: "pack", Field: 48}
		}
		fmt.Fprintf(&b, "%012d%03d%012d%03d0", t.DebitAmount, t.DebitCount, t.CreditAmount, t.CreditCount)
	}
	return b.String(), nil
}

// parseSettlement reads the verdicts of a settlement answer's field 48 (the
// 31st and 62nd digits, LiaoYang_POS SaveRspPackData). A host that answers
// only the domestic side is believed about the foreign one only when the
// terminal had no foreign totals.
func parseSettlement(f48 string, noForeign bool) (dom, foreign bool, err error) {
	verdict := func(c byte) (bool, error) {
		switch c {
		case '1':
			return true, nil
		case '2', '3':
			return false, nil
		}
		return false, fmt.Errorf("%w: settlement verdict %q is not 1, 2 or 3", ErrBadField48, c)
	}
	if len(f48) != settleSide && len(f48) != 2*settleSide {
		return false, false, fmt.Errorf("%w: settlement answer of %d digits", ErrBadField48, len(f48))
	}
	if dom, err = verdict(f48[settleSide-1]); err != nil {
		return false, false, err
	}
	if len(f48) == settleSide {
		if !noForeign {
			return false, false, fmt.Errorf("%w: no verdict on the foreign totals", ErrBadField48)
		}
		return dom, true, nil
	}
	foreign, err = verdict(f48[2*settleSide-1])
	return dom, foreign, err
}

// batchDetail is a batch upload's field 48 for one transaction: 01 (one
// detail), the card organisation (00 UnionPay by its BIN 62, 01 other), the
// transaction's STAN, the PAN zero-padded to 20, the amount (12).
func batchDetail(t provisioning.TxnRecord, card pan.PAN) (string, error) {
	if t.STAN < 1 || t.STAN > 999999 || t.Amount <= 0 || t.Amount > 999999999999 || card.Len() > 20 {
		return "", &FieldError{Op: "pack", Field: 48}
	}
	org := "01"
	if card.HasPrefix("62") {
		org = "00"
	}
	digits := card.Reveal()
	return fmt.Sprintf("01%s%06d%s%s%012d", org, t.STAN, strings.Repeat("0", 20-len(digits)), digits, t.Amount), nil
}
