package provisioning_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

const (
	bindTestPAN  = "6222021234567890128" // Luhn-valid, UnionPay debit BIN
	bindTestSalt = "00112233445566778899aabbccddeeff"
	// bindTestHash was computed outside Go, so that a bug shared by AccountHash
	// and the test's own SHA-256 construction cannot hide:
	//
	//	printf '\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff6222021234567890128' | sha256sum
	bindTestHash = "84870985e41a94975d328a71ebbcb968cb074b7488aa15e162bef2f944a7f369"
)

// bindTestNow is mid-2025 on the terminal's calendar (China Standard Time).
var (
	bindCST     = time.FixedZone("CST", 8*3600)
	bindTestNow = time.Date(2025, time.June, 15, 10, 0, 0, 0, bindCST)
)

func bindTestCard() provisioning.Card {
	return provisioning.Card{
		PAN:    pan.MustParse(bindTestPAN),
		Seq:    "01",
		Name:   "ZHANG/SAN",
		Expiry: "2812",
		AID:    "A000000333010101",
		Label:  "UnionPay Debit",
	}
}

func bindTestMerchant() provisioning.Merchant {
	return provisioning.Merchant{
		MID:         "898310048990001",
		Name:        "Test Shop",
		LegalPerson: "Zhang San",
		AccountHash: bindTestHash,
		AccountSalt: bindTestSalt,
		CardType:    provisioning.Debit,
	}
}

// bindWithLuhn appends the Luhn check digit to body, written here rather than
// taken from package pan so that the test PANs do not depend on the code under test.
func bindWithLuhn(body string) string {
	sum := 0
	for i := 0; i < len(body); i++ {
		d := int(body[len(body)-1-i] - '0')
		if i%2 == 0 { // doubled: these are the odd positions counting the check digit as first
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return body + string(rune('0'+(10-sum%10)%10))
}

// bindHashFor hashes like the acquirer does, built by hand from the bytes.
func bindHashFor(t *testing.T, saltHex, digits string) string {
	t.Helper()
	salt, err := hex.DecodeString(saltHex)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(append(salt, digits...))
	return hex.EncodeToString(sum[:])
}

type bindCase struct {
	name  string
	rules provisioning.BindingRules
	card  func(*provisioning.Card)
	merch func(*provisioning.Merchant)
	now   time.Time // zero means bindTestNow
	want  string    // rejection code, "" for accepted
}

func bindCases(t *testing.T) []bindCase {
	visa := "4111111111111111" // Luhn-valid Visa test number
	p81 := bindWithLuhn("810012345678901")
	// A swiped card: no AID, the type comes from the card source.
	swiped := func(c *provisioning.Card) { c.AID = ""; c.Type = provisioning.Debit }
	rehash := func(digits string) func(*provisioning.Merchant) {
		return func(m *provisioning.Merchant) { m.AccountHash = bindHashFor(t, bindTestSalt, digits) }
	}
	return []bindCase{
		{name: "chip debit", want: ""},
		{name: "swiped debit", card: swiped},
		{name: "credit AID for credit merchant", card: func(c *provisioning.Card) { c.AID = "A000000333010102" },
			merch: func(m *provisioning.Merchant) { m.CardType = provisioning.Credit }},
		{name: "quasi-credit counts as credit", card: func(c *provisioning.Card) { c.AID = "A000000333010103" },
			merch: func(m *provisioning.Merchant) { m.CardType = provisioning.Credit }},
		{name: "lower-case AID", card: func(c *provisioning.Card) { c.AID = "a000000333010101" }},
		{name: "AID with extension (partial selection)", card: func(c *provisioning.Card) { c.AID = "A00000033301010101" }},

		// 1. PAN and Luhn.
		{name: "no PAN", card: func(c *provisioning.Card) { c.PAN = pan.PAN{} }, want: provisioning.RejectUnreadable},
		{name: "bad Luhn", card: func(c *provisioning.Card) { c.PAN = pan.MustParse("6222021234567890129") },
			want: provisioning.RejectBadLuhn},
		{name: "bad Luhn reported before expiry", card: func(c *provisioning.Card) {
			c.PAN = pan.MustParse("6222021234567890120")
			c.Expiry = "1901"
		}, want: provisioning.RejectBadLuhn},

		// 2. UnionPay.
		{name: "Visa AID on a 62 card", card: func(c *provisioning.Card) { c.AID = "A0000000031010" },
			want: provisioning.RejectNotUnionPay},
		{name: "Visa AID lower case", card: func(c *provisioning.Card) { c.AID = "a0000000031010" },
			want: provisioning.RejectNotUnionPay},
		{name: "swiped Visa", card: func(c *provisioning.Card) { swiped(c); c.PAN = pan.MustParse(visa) },
			want: provisioning.RejectNotUnionPay},
		{name: "swiped 62 outside configured BINs", rules: provisioning.BindingRules{AcceptedBINs: []string{"81"}},
			card: swiped, want: provisioning.RejectNotUnionPay},
		{name: "swiped card in configured BIN", rules: provisioning.BindingRules{AcceptedBINs: []string{"62", "81"}},
			card: func(c *provisioning.Card) { swiped(c); c.PAN = pan.MustParse(p81) }, merch: rehash(p81)},
		{name: "empty BIN entry accepts nothing", rules: provisioning.BindingRules{AcceptedBINs: []string{""}},
			card: func(c *provisioning.Card) { swiped(c); c.PAN = pan.MustParse(visa) }, want: provisioning.RejectNotUnionPay},
		{name: "configured BINs ignore a UnionPay AID's PAN", rules: provisioning.BindingRules{AcceptedBINs: []string{"81"}}},
		{name: "garbled AID", card: func(c *provisioning.Card) { c.AID = "A000000333ZZ0101" }, want: provisioning.RejectUnreadable},
		{name: "odd-length AID", card: func(c *provisioning.Card) { c.AID = "A00000033301010" }, want: provisioning.RejectUnreadable},
		{name: "short AID", card: func(c *provisioning.Card) { c.AID = "A0000003" }, want: provisioning.RejectUnreadable},

		// 3. Card type.
		{name: "credit card for debit merchant", card: func(c *provisioning.Card) { c.AID = "A000000333010102" },
			want: provisioning.RejectCardType},
		{name: "debit card for credit merchant", merch: func(m *provisioning.Merchant) { m.CardType = provisioning.Credit },
			want: provisioning.RejectCardType},
		{name: "electronic cash is unknown", card: func(c *provisioning.Card) { c.AID = "A000000333010106" },
			want: provisioning.RejectCardType},
		{name: "US common AID is unknown", card: func(c *provisioning.Card) { c.AID = "A000000333010108" },
			want: provisioning.RejectCardType},
		{name: "AID wins over Type", card: func(c *provisioning.Card) { c.Type = provisioning.Credit }},
		{name: "swiped without type", card: func(c *provisioning.Card) { swiped(c); c.Type = "" },
			want: provisioning.RejectCardType},
		{name: "swiped with bogus type", card: func(c *provisioning.Card) { swiped(c); c.Type = "prepaid" },
			want: provisioning.RejectCardType},
		{name: "swiped credit", card: func(c *provisioning.Card) { swiped(c); c.Type = provisioning.Credit },
			merch: func(m *provisioning.Merchant) { m.CardType = provisioning.Credit }},
		{name: "merchant without card type", merch: func(m *provisioning.Merchant) { m.CardType = "" },
			want: provisioning.RejectMerchantRecord},
		{name: "merchant card type is case-sensitive", merch: func(m *provisioning.Merchant) { m.CardType = "DEBIT" },
			want: provisioning.RejectMerchantRecord},

		// 4. Expiry (boundaries in TestBindingExpiryBoundary).
		{name: "expired", card: func(c *provisioning.Card) { c.Expiry = "2412" }, want: provisioning.RejectExpired},
		{name: "this month is valid", card: func(c *provisioning.Card) { c.Expiry = "2506" }},
		{name: "last month is expired", card: func(c *provisioning.Card) { c.Expiry = "2505" }, want: provisioning.RejectExpired},
		{name: "expiry missing", card: func(c *provisioning.Card) { c.Expiry = "" }, want: provisioning.RejectUnreadable},
		{name: "expiry YYMMDD", card: func(c *provisioning.Card) { c.Expiry = "281231" }, want: provisioning.RejectUnreadable},
		{name: "expiry month 13", card: func(c *provisioning.Card) { c.Expiry = "2813" }, want: provisioning.RejectUnreadable},
		{name: "expiry month 00", card: func(c *provisioning.Card) { c.Expiry = "2800" }, want: provisioning.RejectUnreadable},
		{name: "expiry not digits", card: func(c *provisioning.Card) { c.Expiry = "28-1" }, want: provisioning.RejectUnreadable},

		// 5. Name.
		{name: "name mismatch", card: func(c *provisioning.Card) { c.Name = "LI/SI" }, want: provisioning.RejectNameMismatch},
		{name: "name empty", card: func(c *provisioning.Card) { c.Name = "" }, want: provisioning.RejectUnreadable},
		{name: "name only separators", card: func(c *provisioning.Card) { c.Name = " / " }, want: provisioning.RejectUnreadable},
		{name: "name matches account name", card: func(c *provisioning.Card) { c.Name = "LI/SI" },
			merch: func(m *provisioning.Merchant) { m.AccountName = "Li Si" }},
		{name: "name matches legal person when account name set",
			merch: func(m *provisioning.Merchant) { m.AccountName = "Li Si" }},
		{name: "name matches neither", card: func(c *provisioning.Card) { c.Name = "WANG/WU" },
			merch: func(m *provisioning.Merchant) { m.AccountName = "Li Si" }, want: provisioning.RejectNameMismatch},
		{name: "name reordered", card: func(c *provisioning.Card) { c.Name = "SAN ZHANG" }},
		{name: "full-width card name", card: func(c *provisioning.Card) { c.Name = "ＺＨＡＮＧ／ＳＡＮ" }},
		{name: "full-width registered name", merch: func(m *provisioning.Merchant) { m.LegalPerson = "ｚｈａｎｇ　ｓａｎ" }},
		{name: "Chinese name with spaces", card: func(c *provisioning.Card) { c.Name = "张 三" },
			merch: func(m *provisioning.Merchant) { m.LegalPerson = "张三" }},
		{name: "Chinese name with ideographic space", card: func(c *provisioning.Card) { c.Name = "张三" },
			merch: func(m *provisioning.Merchant) { m.LegalPerson = "张　三" }},
		{name: "pinyin is not Chinese", merch: func(m *provisioning.Merchant) { m.LegalPerson = "张三" },
			want: provisioning.RejectNameMismatch},
		{name: "merchant without names", merch: func(m *provisioning.Merchant) { m.LegalPerson = " " },
			want: provisioning.RejectMerchantRecord},

		// 6. Account.
		{name: "other account", merch: rehash("6222021234567890136"), want: provisioning.RejectOtherAccount},
		{name: "hash in upper case", merch: func(m *provisioning.Merchant) { m.AccountHash = strings.ToUpper(bindTestHash) }},
		{name: "salt in upper case", merch: func(m *provisioning.Merchant) { m.AccountSalt = strings.ToUpper(bindTestSalt) }},
		{name: "other salt", merch: func(m *provisioning.Merchant) { m.AccountSalt = "ff" + bindTestSalt[2:] },
			want: provisioning.RejectOtherAccount},
		{name: "salt not hex", merch: func(m *provisioning.Merchant) { m.AccountSalt = "zz" + bindTestSalt[2:] },
			want: provisioning.RejectMerchantRecord},
		{name: "salt odd length", merch: func(m *provisioning.Merchant) { m.AccountSalt = bindTestSalt[1:] },
			want: provisioning.RejectMerchantRecord},
		{name: "salt empty", merch: func(m *provisioning.Merchant) {
			m.AccountSalt = ""
			m.AccountHash = bindHashFor(t, "", bindTestPAN)
		}, want: provisioning.RejectMerchantRecord},
		{name: "hash empty", merch: func(m *provisioning.Merchant) { m.AccountHash = "" },
			want: provisioning.RejectMerchantRecord},
		{name: "hash truncated", merch: func(m *provisioning.Merchant) { m.AccountHash = bindTestHash[:62] },
			want: provisioning.RejectMerchantRecord},
		{name: "hash not hex", merch: func(m *provisioning.Merchant) { m.AccountHash = "g" + bindTestHash[1:] },
			want: provisioning.RejectMerchantRecord},
	}
}

func TestBindingCheck(t *testing.T) {
	for _, tc := range bindCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			c, m, now := bindTestCard(), bindTestMerchant(), tc.now
			if tc.card != nil {
				tc.card(&c)
			}
			if tc.merch != nil {
				tc.merch(&m)
			}
			if now.IsZero() {
				now = bindTestNow
			}
			err := tc.rules.Check(c, m, now)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check = %v, want accepted", err)
				}
				return
			}
			var rej *provisioning.Rejection
			if !errors.As(err, &rej) {
				t.Fatalf("Check = %v (%T), want *Rejection %s", err, err, tc.want)
			}
			if rej.Code != tc.want {
				t.Fatalf("Check code = %s (%q), want %s", rej.Code, rej.Message, tc.want)
			}
			if rej.Message == "" || strings.ContainsAny(rej.Message, "\r\n") {
				t.Errorf("message %q is not one line", rej.Message)
			}
		})
	}
}

// TestBindingMessagesHideSecrets runs every rejecting case and checks that
// neither the message nor Error() carries the full PAN, the account hash or
// the salt.
func TestBindingMessagesHideSecrets(t *testing.T) {
	rejected := 0
	for _, tc := range bindCases(t) {
		c, m := bindTestCard(), bindTestMerchant()
		if tc.card != nil {
			tc.card(&c)
		}
		if tc.merch != nil {
			tc.merch(&m)
		}
		err := tc.rules.Check(c, m, bindTestNow)
		if err == nil {
			continue
		}
		rejected++
		for _, s := range []string{err.(*provisioning.Rejection).Message, err.Error()} {
			if d := c.PAN.Reveal(); d != "" && strings.Contains(s, d) {
				t.Errorf("%s: message contains the full PAN: %q", tc.name, s)
			}
			for _, secret := range []string{m.AccountHash, m.AccountSalt} {
				if len(secret) >= 8 && strings.Contains(strings.ToLower(s), strings.ToLower(secret)) {
					t.Errorf("%s: message contains the account hash or salt: %q", tc.name, s)
				}
			}
		}
	}
	if rejected == 0 {
		t.Fatal("no case was rejected")
	}
}

func TestBindingMessageMasksPAN(t *testing.T) {
	c := bindTestCard()
	c.PAN = pan.MustParse("6222021234567890129")
	err := provisioning.BindingRules{}.Check(c, bindTestMerchant(), bindTestNow)
	if err == nil || !strings.Contains(err.Error(), "622202*********0129") {
		t.Fatalf("Check = %v, want the masked PAN in the message", err)
	}
}

func TestBindingExpiryBoundary(t *testing.T) {
	utc8 := bindCST
	tests := []struct {
		expiry string
		now    time.Time
		want   string
	}{
		{"2503", time.Date(2025, time.March, 1, 0, 0, 0, 0, utc8), ""},
		{"2503", time.Date(2025, time.March, 31, 23, 59, 59, 999999999, utc8), ""},
		{"2503", time.Date(2025, time.April, 1, 0, 0, 0, 0, utc8), provisioning.RejectExpired},
		{"2502", time.Date(2025, time.February, 28, 12, 0, 0, 0, utc8), ""},
		{"2502", time.Date(2025, time.March, 1, 0, 0, 0, 0, utc8), provisioning.RejectExpired},
		{"2402", time.Date(2024, time.February, 29, 23, 0, 0, 0, utc8), ""}, // leap day
		{"2512", time.Date(2025, time.December, 31, 23, 59, 59, 0, utc8), ""},
		{"2512", time.Date(2026, time.January, 1, 0, 0, 0, 0, utc8), provisioning.RejectExpired},
		// The same instant, 2025-03-31 16:30 UTC, is already April in Beijing:
		// the terminal's calendar decides.
		{"2503", time.Date(2025, time.March, 31, 16, 30, 0, 0, time.UTC), ""},
		{"2503", time.Date(2025, time.March, 31, 16, 30, 0, 0, time.UTC).In(utc8), provisioning.RejectExpired},
	}
	for _, tc := range tests {
		c := bindTestCard()
		c.Expiry = tc.expiry
		err := provisioning.BindingRules{}.Check(c, bindTestMerchant(), tc.now)
		got := ""
		var rej *provisioning.Rejection
		if errors.As(err, &rej) {
			got = rej.Code
		} else if err != nil {
			t.Fatalf("%s at %v: %v", tc.expiry, tc.now, err)
		}
		if got != tc.want {
			t.Errorf("expiry %s at %v: code %q, want %q", tc.expiry, tc.now, got, tc.want)
		}
	}
}

func TestBindingCardTypeOf(t *testing.T) {
	tests := []struct {
		aid  string
		typ  provisioning.CardType
		want provisioning.CardType
	}{
		{"A000000333010101", "", provisioning.Debit},
		{"a000000333010101", "", provisioning.Debit},
		{"A000000333010102", provisioning.Debit, provisioning.Credit},
		{"A000000333010103", "", provisioning.Credit},
		{"A000000333010106", provisioning.Debit, ""},
		{"A000000333010108", "", ""},
		{"A0000000031010", provisioning.Debit, ""},
		{"A0000003330101", "", ""},   // UnionPay RID, no product
		{"A00000033301010", "", ""},  // odd length
		{"A000000333XX0101", "", ""}, // not hex
		{"", provisioning.Debit, provisioning.Debit},
		{"", provisioning.Credit, provisioning.Credit},
		{"", "", ""},
	}
	for _, tc := range tests {
		if got := provisioning.CardTypeOf(provisioning.Card{AID: tc.aid, Type: tc.typ}); got != tc.want {
			t.Errorf("CardTypeOf(AID %q, Type %q) = %q, want %q", tc.aid, tc.typ, got, tc.want)
		}
	}
}

func TestAccountHashKnownAnswer(t *testing.T) {
	p := pan.MustParse(bindTestPAN)
	got, err := provisioning.AccountHash(bindTestSalt, p)
	if err != nil {
		t.Fatal(err)
	}
	if got != bindTestHash {
		t.Errorf("AccountHash = %s, want %s (sha256sum)", got, bindTestHash)
	}

	// The same construction by hand: salt bytes, then the digits as ASCII.
	raw := []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	raw = append(raw, '6', '2', '2', '2', '0', '2', '1', '2', '3', '4', '5', '6', '7', '8', '9', '0', '1', '2', '8')
	sum := sha256.Sum256(raw)
	if want := hex.EncodeToString(sum[:]); got != want {
		t.Errorf("AccountHash = %s, want %s (by hand)", got, want)
	}

	// Upper-case salt hex is the same salt; the result is always lower case.
	if up, err := provisioning.AccountHash(strings.ToUpper(bindTestSalt), p); err != nil || up != bindTestHash {
		t.Errorf("AccountHash(upper-case salt) = %s, %v", up, err)
	}

	// A second vector, with another salt and PAN, also from sha256sum:
	//	printf '\xde\xad\xbe\xef4111111111111111' | sha256sum
	if got, err := provisioning.AccountHash("deadbeef", pan.MustParse("4111111111111111")); err != nil ||
		got != "bf7d154f7fd46cea8f08788359f95cbc992505c695ddab3be74663acf5d1b1fe" {
		t.Errorf("AccountHash(deadbeef, 4111…) = %s, %v", got, err)
	}

	// An empty salt is a plain SHA-256 of the digits.
	plain := sha256.Sum256([]byte(bindTestPAN))
	if got, err := provisioning.AccountHash("", p); err != nil || got != hex.EncodeToString(plain[:]) {
		t.Errorf("AccountHash(no salt) = %s, %v", got, err)
	}
}

func TestAccountHashErrors(t *testing.T) {
	p := pan.MustParse(bindTestPAN)
	for _, salt := range []string{"zz", "abc", "00 11"} {
		_, err := provisioning.AccountHash(salt, p)
		if err == nil {
			t.Errorf("AccountHash(%q) accepted a malformed salt", salt)
			continue
		}
		if strings.Contains(err.Error(), salt) {
			t.Errorf("AccountHash(%q) error quotes the salt: %v", salt, err)
		}
	}
	if _, err := provisioning.AccountHash(bindTestSalt, pan.PAN{}); err == nil {
		t.Error("AccountHash accepted a zero PAN")
	}
}

func TestRejectionError(t *testing.T) {
	r := &provisioning.Rejection{Code: provisioning.RejectExpired, Message: "Card expired"}
	var err error = r
	if got := err.Error(); !strings.Contains(got, provisioning.RejectExpired) || !strings.Contains(got, "Card expired") {
		t.Errorf("Error() = %q, want code and message", got)
	}
}

// FuzzCheck feeds arbitrary card data through every rule: Check must not panic,
// must return nil or a *Rejection with a known code and a one-line message, and
// the message must not contain the full PAN.
func FuzzCheck(f *testing.F) {
	f.Add(bindTestPAN, "ZHANG/SAN", "2812", "A000000333010101", "", "Zhang San")
	f.Add(bindTestPAN, "张 三", "2506", "", "debit", "张三")
	f.Add("6222021234567890129", "", "", "A0000000031010", "credit", "")
	f.Add("4111111111111111", "ＺＨＡＮＧ／ＳＡＮ", "9913", "a000000333010106", "x", "SAN ZHANG")
	f.Add("", "\x00\xff/·", "0000", "A000000333ZZ", "", "\u3000")
	known := map[string]bool{
		provisioning.RejectBadLuhn: true, provisioning.RejectNotUnionPay: true, provisioning.RejectCardType: true,
		provisioning.RejectExpired: true, provisioning.RejectNameMismatch: true, provisioning.RejectOtherAccount: true,
		provisioning.RejectUnreadable: true, provisioning.RejectMerchantRecord: true,
	}
	f.Fuzz(func(t *testing.T, panStr, name, expiry, aid, typ, legal string) {
		p, _ := pan.Parse(panStr) // unparsable numbers stay zero: a card read without one
		c := provisioning.Card{PAN: p, Name: name, Expiry: expiry, AID: aid, Type: provisioning.CardType(typ)}
		m := bindTestMerchant()
		m.LegalPerson = legal
		err := provisioning.BindingRules{}.Check(c, m, bindTestNow)
		if err == nil {
			return
		}
		rej, ok := err.(*provisioning.Rejection)
		if !ok {
			t.Fatalf("Check returned %T %v, want *Rejection", err, err)
		}
		if !known[rej.Code] {
			t.Errorf("unknown code %q", rej.Code)
		}
		if rej.Message == "" || strings.ContainsAny(rej.Message, "\r\n") {
			t.Errorf("message %q is not one line", rej.Message)
		}
		if d := p.Reveal(); d != "" && strings.Contains(rej.Message, d) {
			t.Errorf("message contains the full PAN: %q", rej.Message)
		}
	})
}
