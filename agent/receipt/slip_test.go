package receipt

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/testkit/golden"
	"github.com/posagent/posagent/drivers/printer"
)

// sale is a chip test sale as the provisioning flow prints it.
func sale(c Copy) Slip {
	return Slip{
		Copy:         c,
		MerchantName: "上海浦东新区张江高科技园区便利店 ZHANGJIANG MART",
		MID:          "898310048160001",
		TID:          "10000001",
		Operator:     "01",
		Issuer:       "01040000",
		Acquirer:     "48020000",
		CardMasked:   "621790******0123",
		EntryMode:    "I",
		TxnType:      "消费 SALE",
		Expiry:       "3012",
		Batch:        "000001",
		Voucher:      "000017",
		AuthCode:     "A1B2C3",
		RRN:          "260101123456",
		Time:         time.Date(2026, 1, 2, 15, 4, 5, 0, time.FixedZone("CST", 8*3600)),
		Amount:       1,
		ICLines: []string{
			"AID: A000000333010101",
			"APP LABEL: PBOC DEBIT",
			"ARQC: 8F3A1C2B4D5E6F70",
			"TVR: 0000000000",
			"TSI: E800",
			"ATC: 001A",
		},
		Test: true,
	}
}

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		file string
		copy Copy
	}{
		{"sale_merchant.golden", Merchant},
		{"sale_cardholder.golden", Cardholder},
	} {
		t.Run(tc.file, func(t *testing.T) {
			golden.Check(t, filepath.Join("testdata", tc.file), Text(sale(tc.copy), 32))
		})
	}
}

func TestCardholderCopyHasNoSignature(t *testing.T) {
	got := Text(sale(Cardholder), 32)
	if strings.Contains(got, "持卡人签名") {
		t.Error("cardholder copy asks for a signature")
	}
	if !strings.Contains(got, "持卡人存根 CARDHOLDER COPY") || !strings.Contains(got, "本人确认以上交易") {
		t.Errorf("cardholder copy lacks its label or the acknowledgement:\n%s", got)
	}
	if !strings.Contains(Text(sale(Merchant), 32), "持卡人签名 CARDHOLDER SIGNATURE") {
		t.Error("merchant copy has no signature line")
	}
}

func TestNoLineWiderThanWidth(t *testing.T) {
	long := sale(Merchant)
	long.MerchantName = strings.Repeat("北京市朝阳区建国路八十八号", 3) + " SUPERCALIFRAGILISTICEXPIALIDOCIOUS-STORE"
	long.TxnType = "消费撤销 VOID"
	long.OrigVoucher, long.OrigRRN = "000016", "260101123455"
	long.Reference = "原凭证号 ORIG VOUCHER 000016, 原参考号 ORIG REFER 260101123455"
	long.ICLines = append(long.ICLines, "IAD: 07010103A0A802010A01000000000074D8D1C6")
	long.Duplicate = true
	for _, s := range []Slip{sale(Merchant), sale(Cardholder), long, {}} {
		for _, w := range []int{24, 32, 42, 0} {
			want := w
			if w <= 0 {
				want = DefaultWidth
			}
			for i, line := range Render(s, w) {
				if Width(line) > want {
					t.Errorf("width %d: line %d is %d wide: %q", w, i, Width(line), line)
				}
				if strings.TrimRight(line, " ") != line {
					t.Errorf("width %d: line %d has trailing spaces: %q", w, i, line)
				}
			}
		}
	}
}

func TestLabelValuePairs(t *testing.T) {
	l := layout{width: 24}
	l.pair("终端编号 TERMINAL NO.:", "10000001") // 22 + 1 + 8 > 24: value goes below
	l.pair("批次号 BATCH NO.:", "000001")       // fits
	want := []string{
		"终端编号 TERMINAL NO.:",
		"                10000001",
		"批次号 BATCH NO.: 000001",
	}
	got := printer.Page{Lines: l.lines}.Text()
	if got != strings.Join(want, "\n")+"\n" {
		t.Errorf("got\n%swant\n%s", got, strings.Join(want, "\n"))
	}
}

func TestFullPANIsMasked(t *testing.T) {
	for _, in := range []string{
		"6217900000000000123",
		"6217 9000 0000 0123",
		"6217-9000-0000-0123",
		"6217900000000123",
		"6217900012**0123", // masked, but shows 12 digits
	} {
		s := sale(Merchant)
		s.CardMasked = in
		out := Text(s, 32)
		digits := strings.NewReplacer(" ", "", "-", "").Replace(in)
		if strings.Contains(strings.NewReplacer(" ", "", "-", "").Replace(out), digits) {
			t.Errorf("%q printed in full:\n%s", in, out)
		}
		masked := MaskCard(in)
		if !strings.Contains(out, masked+" /I") {
			t.Errorf("%q: slip lacks %q:\n%s", in, masked+" /I", out)
		}
		if n := strings.Count(masked, "*"); n < len(strings.Trim(digits, " "))-10 {
			t.Errorf("%q masked as %q", in, masked)
		}
	}
}

func TestMaskCard(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"621790******0123", "621790******0123"},
		{"6217900000000000123", "621790*********0123"},
		{"6217 9000 0000 0123", "621790******0123"},
		{"621790XXXXXX0123", "621790******0123"},
		{"6217900012**0123", "621790******0123"},
		{"CARD 6217900000000123 (CUP)", "CARD 621790******0123 (CUP)"},
		{"REF 12345678901", "REF 12345678901"}, // 11 digits: not a PAN
		{"", ""},
	} {
		if got := MaskCard(tc.in); got != tc.want {
			t.Errorf("MaskCard(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMarks(t *testing.T) {
	s := sale(Merchant)
	s.Test = false
	plain := Text(s, 32)
	if strings.Contains(plain, markDup) || strings.Contains(plain, markTest) {
		t.Errorf("marks on a plain slip:\n%s", plain)
	}
	s.Duplicate, s.Test = true, true
	lines := Render(s, 32)
	rule := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "---") {
			rule = i
			break
		}
	}
	head := strings.Join(lines[:rule], "\n")
	if !strings.Contains(head, markDup) || !strings.Contains(head, markTest) {
		t.Errorf("marks missing above the first rule:\n%s", head)
	}
}

func TestExpiry(t *testing.T) {
	for in, want := range map[string]string{"3012": "30/12", "": "", "30/12": "30/12", "301231": "301231"} {
		if got := formatExpiry(in); got != want {
			t.Errorf("formatExpiry(%q) = %q, want %q", in, got, want)
		}
	}
}
