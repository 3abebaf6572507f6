package provisioning_test

import (
	"crypto/hmac"
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
	bindTestPAN = "6222021234567890128" // Luhn-valid, UnionPay debit BIN
	bindTestKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	// bindTestCheck was computed outside Go, so that a bug shared by
	// AccountCheckValue and the test's own HMAC cannot hide:
	//
	//	printf 6222021234567890128 | openssl dgst -sha256 -mac HMAC -macopt hexkey:000102…1f
	bindTestCheck = "310f19a78f90fd54bf2f79b3a26e50b502e563382f605523f3b7bb532ddaee12"
)

// bindAccounts checks with the test's account-check key.
func bindAccounts(t testing.TB) provisioning.KeyedAccounts {
	k, err := hex.DecodeString(bindTestKey)
	if err != nil {
		t.Fatal(err)
	}
	return provisioning.KeyedAccounts{Key: k}
}

// failingAccounts is a checker whose key store cannot be read.
type failingAccounts struct{}

func (failingAccounts) MatchAccount(pan.PAN, string) (bool, error) {
	return false, errors.New("key store: unreadable")
}

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
		MID:          "898310048990001",
		Name:         "Test Shop",
		LegalPerson:  "Zhang San",
		AccountCheck: bindTestCheck,
		CardType:     provisioning.Debit,
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

// bindCheckFor computes the check value like the acquirer does, by hand.
func bindCheckFor(t *testing.T, digits string) string {
	t.Helper()
	key, err := hex.DecodeString(bindTestKey)
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(digits))
	return hex.EncodeToString(m.Sum(nil))
}

type bindCase struct {
	name  string
	rules provisioning.BindingRules // Accounts nil means bindAccounts
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
		return func(m *provisioning.Merchant) { m.AccountCheck = bindCheckFor(t, digits) }
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
		{name: "check in upper case", merch: func(m *provisioning.Merchant) { m.AccountCheck = strings.ToUpper(bindTestCheck) }},
		{name: "check under another key", rules: provisioning.BindingRules{Accounts: provisioning.KeyedAccounts{Key: []byte("another terminal's key")}},
			want: provisioning.RejectOtherAccount},
		{name: "check empty", merch: func(m *provisioning.Merchant) { m.AccountCheck = "" },
			want: provisioning.RejectMerchantRecord},
		{name: "check truncated", merch: func(m *provisioning.Merchant) { m.AccountCheck = bindTestCheck[:62] },
			want: provisioning.RejectMerchantRecord},
		{name: "check not hex", merch: func(m *provisioning.Merchant) { m.AccountCheck = "g" + bindTestCheck[1:] },
			want: provisioning.RejectMerchantRecord},
		{name: "old unkeyed hash is not a check", merch: func(m *provisioning.Merchant) {
			sum := sha256.Sum256([]byte(bindTestPAN))
			m.AccountCheck = hex.EncodeToString(sum[:])
		}, want: provisioning.RejectOtherAccount},
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
			if tc.rules.Accounts == nil {
				tc.rules.Accounts = bindAccounts(t)
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
// neither the message nor Error() carries the full PAN or the check value.
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
		if tc.rules.Accounts == nil {
			tc.rules.Accounts = bindAccounts(t)
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
			if secret := m.AccountCheck; len(secret) >= 8 && strings.Contains(strings.ToLower(s), strings.ToLower(secret)) {
				t.Errorf("%s: message contains the account check value: %q", tc.name, s)
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
	err := provisioning.BindingRules{Accounts: bindAccounts(t)}.Check(c, bindTestMerchant(), bindTestNow)
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
		err := provisioning.BindingRules{Accounts: bindAccounts(t)}.Check(c, bindTestMerchant(), tc.now)
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
		// The chip reader types its result by AID alone: no AID, no type.
		want := tc.want
		if tc.aid == "" {
			want = ""
		}
		if got := provisioning.CardTypeOfAID(tc.aid); got != want {
			t.Errorf("CardTypeOfAID(%q) = %q, want %q", tc.aid, got, want)
		}
	}
}

func TestAccountCheckValueKnownAnswer(t *testing.T) {
	key, _ := hex.DecodeString(bindTestKey)
	got, err := provisioning.AccountCheckValue(key, pan.MustParse(bindTestPAN))
	if err != nil || got != bindTestCheck {
		t.Errorf("AccountCheckValue = %s, %v; want %s (openssl)", got, err, bindTestCheck)
	}
	// A second vector, also from openssl:
	//	printf 4111111111111111 | openssl dgst -sha256 -mac HMAC -macopt hexkey:deadbeef
	if got, err := provisioning.AccountCheckValue([]byte{0xde, 0xad, 0xbe, 0xef}, pan.MustParse("4111111111111111")); err != nil ||
		got != "701dc13a91ac18a18cc161cb9b3bc4076b43230cc03a3e861c5e295c0707dda5" {
		t.Errorf("AccountCheckValue(deadbeef, 4111…) = %s, %v", got, err)
	}
	if _, err := provisioning.AccountCheckValue(nil, pan.MustParse(bindTestPAN)); !errors.Is(err, provisioning.ErrAccountCheckKey) {
		t.Errorf("no key: %v", err)
	}
	if _, err := provisioning.AccountCheckValue(key, pan.PAN{}); err == nil {
		t.Error("AccountCheckValue accepted a zero PAN")
	}
}

func TestKeyedAccounts(t *testing.T) {
	a := bindAccounts(t)
	p := pan.MustParse(bindTestPAN)
	for _, tc := range []struct {
		check string
		ok    bool
		err   bool
	}{
		{bindTestCheck, true, false},
		{strings.ToUpper(bindTestCheck), true, false},
		{bindCheckFor(t, "6222021234567890136"), false, false},
		{bindTestCheck[:62], false, true},
		{"zz" + bindTestCheck[2:], false, true},
		{"", false, true},
	} {
		ok, err := a.MatchAccount(p, tc.check)
		if ok != tc.ok || (err != nil) != tc.err {
			t.Errorf("MatchAccount(%.8s…) = %v, %v", tc.check, ok, err)
		}
		if err != nil && len(tc.check) > 8 && strings.Contains(err.Error(), tc.check[2:10]) {
			t.Errorf("error quotes the check value: %v", err)
		}
	}
}

// TestBindingAccountUncheckable: without a checker, or with one that
// cannot read its key, no card is bound and the failure is the terminal's
// (E_ACCOUNT_CHECK), not a rejection of the card.
func TestBindingAccountUncheckable(t *testing.T) {
	for name, rules := range map[string]provisioning.BindingRules{
		"no checker":      {},
		"failing checker": {Accounts: failingAccounts{}},
	} {
		err := rules.Check(bindTestCard(), bindTestMerchant(), bindTestNow)
		var se *provisioning.StepError
		if !errors.As(err, &se) || se.Code != "E_ACCOUNT_CHECK" {
			t.Errorf("%s: Check = %v (%T), want E_ACCOUNT_CHECK", name, err, err)
			continue
		}
		if fl := provisioning.FailureFor(provisioning.StepBindCard, err); fl.Code != "E_ACCOUNT_CHECK" || strings.Contains(fl.Message, bindTestPAN) {
			t.Errorf("%s: failure %+v", name, fl)
		}
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
		err := provisioning.BindingRules{Accounts: bindAccounts(t)}.Check(c, m, bindTestNow)
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
