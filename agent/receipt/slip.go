// Package receipt lays out the UnionPay sales slip (签购单) and prints it: the
// install flow's provisioning.Printer over a drivers/printer driver.
//
// The layout is styled lines (Page) measured in display columns (a Chinese
// character is two), each justified by its own padding, so the same lines
// serve the ESC/POS printer, the demo's text printer, the slip pictures and
// golden tests. Which lines stand out is decided here, by what they are: the
// title and the amount print bold and double height. The package never sees
// a full card number on purpose: the caller passes the masked number, and
// Page masks again whatever still looks like a PAN, because a slip is the one
// place a leaked PAN ends up on paper.
package receipt

import (
	"strings"
	"time"
	"unicode"

	"github.com/posagent/posagent/drivers/printer"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// DefaultWidth is the line width of a 58 mm thermal printer in its standard
// font, the common POS printer; Render uses it when given no width.
const DefaultWidth = 32

// Copy names which part of the slip this is; each part carries its own label.
type Copy string

// Slip copies. The merchant copy is the one the cardholder signs.
const (
	Merchant   Copy = "merchant"   // 商户存根 MERCHANT COPY
	Cardholder Copy = "cardholder" // 持卡人存根 CARDHOLDER COPY
	Bank       Copy = "bank"       // 银行存根 BANK COPY, for acquirers that still ask for three parts
)

// Label is the bilingual label printed under the title. An unknown copy prints
// its name as given rather than nothing, so a typo shows on paper, not silently.
func (c Copy) Label() string {
	switch c {
	case Merchant:
		return "商户存根 MERCHANT COPY"
	case Cardholder:
		return "持卡人存根 CARDHOLDER COPY"
	case Bank:
		return "银行存根 BANK COPY"
	}
	return strings.ToUpper(string(c))
}

// Slip is one sales slip's content. Every field is text as it should appear,
// except Amount (minor units, printed by provisioning.FormatRMB), Time and
// Expiry (YYMM), which Render formats.
type Slip struct {
	Copy Copy

	MerchantName string
	MID          string // field 42, 商户编号
	TID          string // field 41, 终端编号
	Operator     string // 操作员号

	Issuer   string // 发卡行; the line is left out when empty
	Acquirer string // 收单行; the line is left out when empty

	// CardMasked is the card number masked to first 6 / last 4. Render masks it
	// again if it shows more digits than that (see Render).
	CardMasked string
	EntryMode  string // "I" chip, "S" swipe, "C" contactless; printed after the card number
	TxnType    string // "消费 SALE", "撤销 VOID" …
	Expiry     string // YYMM, printed YY/MM

	Batch    string // 批次号, field 60.2
	Voucher  string // 凭证号, the STAN of the transaction
	AuthCode string // 授权码, field 38
	RRN      string // 参考号, field 37

	// OrigVoucher and OrigRRN are, on a void's slip, the STAN and RRN of
	// the sale it cancels (原凭证号, 原参考号); each line is left out when
	// empty.
	OrigVoucher string
	OrigRRN     string

	Time   time.Time // printed as is, in Time's own location
	Amount int64     // minor units (fen)

	// Reference is free text under 备注 REFERENCE; ICLines follow it one per line
	// ("AID: A000000333010101", "ARQC: …", "TVR: …", "TSI: …", "ATC: …").
	Reference string
	ICLines   []string

	Duplicate bool // a reprint: marked 重打印 DUPLICATED near the top
	Test      bool // a test transaction: marked 测试交易 TEST TRANSACTION
	// PINVerified is a chip sale whose cardholder verification was the
	// online PIN the issuer approved: the merchant copy says so instead of
	// asking for a signature (EMV's CVM decides the signature line).
	PINVerified bool
}

// Fixed texts of the slip. They use ASCII punctuation only: ambiguous-width
// characters such as the fullwidth colon would change width between devices.
const (
	titleCN     = "银联POS签购单"
	titleEN     = "POS SALES SLIP"
	markDup     = "重打印 DUPLICATED"
	markTest    = "测试交易 TEST TRANSACTION"
	ackCN       = "本人确认以上交易,同意将其计入本卡账户"
	ackEN       = "I ACKNOWLEDGE SATISFACTORY RECEIPT OF RELATIVE GOODS/SERVICES"
	signature   = "持卡人签名 CARDHOLDER SIGNATURE:"
	pinVerified = "密码验证 免签名 PIN VERIFIED, NO SIGNATURE"
	signatureSp = 3 // blank lines to sign on
)

// emphasis is how a slip prints what the cardholder checks first, its title
// and the amount: bold and double height. Double height, not double width:
// the layout is measured in columns, and only a taller line keeps them.
var emphasis = printer.Format{Bold: true, Height: 2}

// Page lays s out in lines no wider than width display columns (DefaultWidth
// when width <= 0), left-justified and carrying their own centring and right
// alignment, without trailing spaces: the title and the amount in emphasis,
// every other line in normal text.
//
// A label and its value share a line, the value right-aligned, when both fit
// with a space between; otherwise the value goes right-aligned on the next line.
// The card number is masked again before it is laid out: any run of 12 or more
// digits (spaces and dashes between digits allowed) becomes first 6 / last 4,
// and a number that shows more than 10 digits in total is re-masked as a whole.
func Page(s Slip, width int) printer.Page {
	if width <= 0 {
		width = DefaultWidth
	}
	l := layout{width: width}

	l.emphasised(func() {
		l.center(titleCN)
		l.center(titleEN)
	})
	if s.Copy != "" {
		l.center(s.Copy.Label())
	}
	if s.Duplicate {
		l.center(markDup)
	}
	if s.Test {
		l.center(markTest)
	}
	l.rule()

	l.text("商户名称 MERCHANT NAME:")
	l.text(s.MerchantName)
	l.pair("商户编号 MERCHANT NO.:", s.MID)
	l.pair("终端编号 TERMINAL NO.:", s.TID)
	l.pair("操作员号 OPERATOR NO.:", s.Operator)
	if s.Issuer != "" {
		l.pair("发卡行 ISSUER:", s.Issuer)
	}
	if s.Acquirer != "" {
		l.pair("收单行 ACQUIRER:", s.Acquirer)
	}
	// The card number always gets a line of its own, as on real slips: it is
	// the field a cardholder checks first.
	l.text("卡号 CARD NO.:")
	card := MaskCard(s.CardMasked)
	if s.EntryMode != "" {
		card += " /" + s.EntryMode
	}
	l.right(card)
	l.pair("交易类型 TRANS TYPE:", s.TxnType)
	l.pair("有效期 EXP DATE:", formatExpiry(s.Expiry))
	l.pair("批次号 BATCH NO.:", s.Batch)
	l.pair("凭证号 VOUCHER NO.:", s.Voucher)
	l.pair("授权码 AUTH NO.:", s.AuthCode)
	when := ""
	if !s.Time.IsZero() {
		when = s.Time.Format("2006/01/02 15:04:05")
	}
	l.pair("日期/时间 DATE/TIME:", when)
	l.pair("参考号 REFER NO.:", s.RRN)
	if s.OrigVoucher != "" {
		l.pair("原凭证号 ORIG TRACE:", s.OrigVoucher)
	}
	if s.OrigRRN != "" {
		l.pair("原参考号 ORIG REF:", s.OrigRRN)
	}
	// The amount is what the cardholder signs for: it always stands on a line
	// of its own with a blank line after it, so it cannot be read as another
	// field's value.
	l.text("金额 AMOUNT:")
	l.emphasised(func() { l.right(provisioning.FormatRMB(s.Amount)) })
	l.blank()
	l.text("备注 REFERENCE:")
	if s.Reference != "" {
		l.text(s.Reference)
	}
	for _, ic := range s.ICLines {
		l.text(ic)
	}
	l.rule()
	switch {
	case s.Copy == Cardholder:
	case s.PINVerified:
		l.text(pinVerified)
		l.rule()
	default:
		l.text(signature)
		for range signatureSp {
			l.blank()
		}
		l.rule()
	}
	l.text(ackCN)
	l.text(ackEN)
	return printer.Page{Lines: l.lines}
}

// Render is the text of Page's lines, without their formatting.
func Render(s Slip, width int) []string {
	var out []string
	for _, line := range Page(s, width).Lines {
		out = append(out, line.Text())
	}
	return out
}

// Text is Render joined with newlines, ending in a newline: the slip as text
// paper shows it.
func Text(s Slip, width int) string {
	return strings.Join(Render(s, width), "\n") + "\n"
}

// formatExpiry prints YYMM as YY/MM; anything else is printed as given, since a
// wrong expiry on a slip is better seen than hidden.
func formatExpiry(yymm string) string {
	if len(yymm) == 4 && isDigits(yymm) {
		return yymm[:2] + "/" + yymm[2:]
	}
	return yymm
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// MaskCard masks a card number for printing, whatever the caller passed.
//
// If s is a card number in any state of masking (digits and '*', 'X' or 'x',
// with optional spaces or dashes, 12 to 19 characters once those are dropped) it
// is returned as first 6 / last 4 with '*' between: this catches a full PAN as
// well as one masked too little. Otherwise every run of 12 or more digits
// (spaces or dashes between digits allowed) is replaced by its first 6 / last 4.
func MaskCard(s string) string {
	s = validUTF8(s)
	compact := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, s)
	if n := len(compact); n >= 12 && n <= 19 && strings.Trim(compact, "0123456789*Xx") == "" {
		return pan.Mask(strings.Map(func(r rune) rune {
			if r == 'X' || r == 'x' {
				return '*'
			}
			return r
		}, compact))
	}
	return maskDigitRuns(s)
}

// maskDigitRuns replaces each run of 12 or more digits, which may contain
// single spaces or dashes between digits, by pan.Mask of its digits.
func maskDigitRuns(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i := 0; i < len(rs); {
		if !isASCIIDigit(rs[i]) {
			b.WriteRune(rs[i])
			i++
			continue
		}
		// Extend the run over digits and single separators followed by a digit.
		j, digits := i, []rune{}
		end := i
		for j < len(rs) {
			if isASCIIDigit(rs[j]) {
				digits = append(digits, rs[j])
				j++
				end = j
				continue
			}
			if (rs[j] == ' ' || rs[j] == '-') && j+1 < len(rs) && isASCIIDigit(rs[j+1]) {
				j++
				continue
			}
			break
		}
		if len(digits) >= 12 {
			b.WriteString(pan.Mask(string(digits)))
		} else {
			b.WriteString(string(rs[i:end]))
		}
		i = end
	}
	return b.String()
}

func isASCIIDigit(r rune) bool { return r >= '0' && r <= '9' }

// layout accumulates the slip's lines at a fixed width, in its current style.
type layout struct {
	width int
	lines []printer.Line
	style printer.Format
}

func (l *layout) add(line string) {
	var pl printer.Line
	if line = strings.TrimRightFunc(line, unicode.IsSpace); line == "" {
		pl.Empty = l.style
	} else {
		pl.Runs = []printer.Run{{Text: line, Format: l.style}}
	}
	l.lines = append(l.lines, pl)
}

// emphasised adds the lines add adds in emphasis, however many the text
// wraps into.
func (l *layout) emphasised(add func()) {
	l.style = emphasis
	add()
	l.style = printer.Format{}
}

func (l *layout) blank() { l.add("") }

func (l *layout) rule() { l.add(strings.Repeat("-", l.width)) }

// text adds s left-aligned, wrapped to the width.
func (l *layout) text(s string) {
	for _, line := range Wrap(validUTF8(s), l.width) {
		l.add(line)
	}
}

// center adds s centered, wrapped first if it is too wide.
func (l *layout) center(s string) {
	for _, line := range Wrap(validUTF8(s), l.width) {
		l.add(pad((l.width-Width(line))/2) + line)
	}
}

// right adds s right-aligned, wrapped first if it is too wide.
func (l *layout) right(s string) {
	for _, line := range Wrap(validUTF8(s), l.width) {
		l.add(pad(l.width-Width(line)) + line)
	}
}

// pair adds a label and its value: on one line when they fit with a space
// between, else the label (wrapped) and the value right-aligned below it.
func (l *layout) pair(label, value string) {
	label, value = validUTF8(label), validUTF8(value)
	lw, vw := Width(label), Width(value)
	switch {
	case value == "":
		l.text(label)
	case lw+1+vw <= l.width && !strings.Contains(value, "\n"):
		l.add(label + pad(l.width-lw-vw) + value)
	default:
		l.text(label)
		l.right(value)
	}
}
