package provisioning

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// BindingRules configures which cards may be bound as the settlement card. The
// zero value applies the defaults.
type BindingRules struct {
	// AcceptedBINs are IIN/BIN prefixes that are UnionPay, consulted only for a
	// card read without an AID (a swiped card). Empty means DefaultBINs. Empty
	// entries are ignored: a blank line in a configuration file must not accept
	// every card.
	AcceptedBINs []string
	// Accounts checks a card against the merchant record's account check
	// value; it holds (or reaches) the key the check is made with. Required:
	// without it no card can be bound (E_ACCOUNT_CHECK).
	Accounts AccountChecker
}

// DefaultBINs are the UnionPay IIN prefixes used when BindingRules names none.
// UnionPay also issues outside 62 (co-branded ranges), which is why the list is
// configurable rather than a constant.
var DefaultBINs = []string{"62"}

// UnionPayRID is UnionPay's registered application provider identifier: the
// first five bytes of every UnionPay chip application's AID.
const UnionPayRID = "A000000333"

// UnionPay application identifiers that say whether the card is debit or
// credit (CardTypeOfAID). The chip reader lists them in its application list.
const (
	AIDUnionPayDebit       = "A000000333010101"
	AIDUnionPayCredit      = "A000000333010102"
	AIDUnionPayQuasiCredit = "A000000333010103" // 准贷记卡: a credit line behind a deposit account
)

// Rejection is why a card cannot be bound. Code is stable, because it is reported
// over MQTT and monitoring branches on it; Message is one line for the
// installer's screen, in English optionally followed by " / " and Chinese. A
// message never contains the full PAN or the account check value.
type Rejection struct {
	Code    string
	Message string
}

// Error returns the code and message, for logs.
func (r *Rejection) Error() string {
	return "provisioning: card rejected: " + r.Code + ": " + r.Message
}

// Rejection codes. They are reported to central monitoring: never change the
// meaning of one, add a new one instead.
const (
	RejectBadLuhn        = "E_BAD_LUHN"         // the PAN's check digit is wrong: usually a misread
	RejectNotUnionPay    = "E_NOT_UNIONPAY"     // not a UnionPay card or application
	RejectCardType       = "E_CARD_TYPE"        // debit/credit differs from the registration, or is unknown
	RejectExpired        = "E_EXPIRED"          // past the last day of its expiry month
	RejectNameMismatch   = "E_NAME_MISMATCH"    // the cardholder is not the legal person or account holder
	RejectOtherAccount   = "E_ACCOUNT_MISMATCH" // a card of the right person, but not the registered account
	RejectUnreadable     = "E_CARD_DATA"        // missing/malformed PAN, expiry, name or AID
	RejectMerchantRecord = "E_MERCHANT_RECORD"  // the merchant record cannot be checked against: no card will do
)

func newRejection(code, format string, args ...any) *Rejection {
	return &Rejection{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Check returns nil when c may be bound as the settlement card of m at time now,
// or a *Rejection for the first rule the card breaks. The rules run from the
// cheapest and most likely misread to the account comparison, so the installer
// is told to re-read a card before being told it is the wrong one:
//
//  1. a PAN is present and its Luhn check digit is right;
//  2. it is UnionPay: by AID when the card has one (a Visa application on a 62
//     card is not UnionPay), else by the PAN's BIN;
//  3. it is the card type (debit/credit) the merchant registered;
//  4. it has not expired (in now's location);
//  5. the cardholder name matches the legal person or the account name;
//  6. it is the merchant's registered settlement account, by the record's
//     keyed check value (AccountCheck), which r.Accounts checks.
//
// A merchant record that cannot be checked against gives RejectMerchantRecord
// at the rule that needs the missing part. When the account cannot be
// checked at all (no Accounts, or it fails), the error is a *StepError with
// code E_ACCOUNT_CHECK: the terminal's fault, not the card's.
func (r BindingRules) Check(c Card, m Merchant, now time.Time) error {
	if rej := checkBindPAN(c); rej != nil {
		return rej
	}
	if rej := r.checkUnionPay(c); rej != nil {
		return rej
	}
	if rej := checkBindType(c, m); rej != nil {
		return rej
	}
	if rej := checkBindExpiry(c, now); rej != nil {
		return rej
	}
	if rej := checkBindName(c, m); rej != nil {
		return rej
	}
	return r.checkAccount(c, m)
}

func checkBindPAN(c Card) *Rejection {
	if c.PAN.IsZero() {
		return newRejection(RejectUnreadable,
			"Card number could not be read; read the card again / 无法读取卡号，请重新读卡")
	}
	if !c.PAN.LuhnValid() {
		return newRejection(RejectBadLuhn,
			"Card number %s fails its check digit; read the card again / 卡号 %s 校验错误，请重新读卡",
			c.PAN.Masked(), c.PAN.Masked())
	}
	return nil
}

func (r BindingRules) checkUnionPay(c Card) *Rejection {
	if c.AID != "" {
		aid, ok := parseBindAID(c.AID)
		if !ok {
			return newRejection(RejectUnreadable,
				"Card application could not be read; read the card again / 无法读取卡片应用，请重新读卡")
		}
		if !strings.HasPrefix(aid, UnionPayRID) {
			// A dual-branded card may carry a UnionPay application next to this one.
			return newRejection(RejectNotUnionPay,
				"Card application is not UnionPay; choose the UnionPay application or use a UnionPay card / 非银联应用，请选择银联应用或使用银联卡")
		}
		return nil
	}
	bins := r.AcceptedBINs
	if len(bins) == 0 {
		bins = DefaultBINs
	}
	for _, bin := range bins {
		if bin != "" && c.PAN.HasPrefix(bin) {
			return nil
		}
	}
	return newRejection(RejectNotUnionPay,
		"Card %s is not a UnionPay card; the settlement card must be UnionPay / 卡号 %s 不是银联卡，结算卡须为银联卡",
		c.PAN.Masked(), c.PAN.Masked())
}

// parseBindAID upper-cases an AID and checks that it is hex of 5 to 16 bytes
// (ISO/IEC 7816-5): a garbled AID is a misread, not a foreign card.
func parseBindAID(s string) (string, bool) {
	if len(s) < 10 || len(s) > 32 || len(s)%2 != 0 {
		return "", false
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", false
	}
	return strings.ToUpper(s), true
}

// CardTypeOf derives debit or credit from the AID when the card has one
// (CardTypeOfAID), else returns c.Type, which a card source sets for a swiped
// card from what the installer chose.
func CardTypeOf(c Card) CardType {
	if c.AID == "" {
		return c.Type
	}
	return CardTypeOfAID(c.AID)
}

// CardTypeOfAID maps a UnionPay AID (hex, either case) to its card type:
// A000000333010101 debit, …0102 credit, …0103 quasi-credit counts as credit;
// …0106 electronic cash, other UnionPay and foreign applications, and
// malformed AIDs (not hex of 5 to 16 bytes, or empty) are unknown, "".
//
// The card's AID may extend the listed ones (EMV partial selection), so they
// are matched as prefixes.
func CardTypeOfAID(aid string) CardType {
	aid, ok := parseBindAID(aid)
	switch {
	case !ok:
		return ""
	case strings.HasPrefix(aid, AIDUnionPayDebit):
		return Debit
	case strings.HasPrefix(aid, AIDUnionPayCredit), strings.HasPrefix(aid, AIDUnionPayQuasiCredit):
		return Credit
	}
	return ""
}

func checkBindType(c Card, m Merchant) *Rejection {
	if m.CardType != Debit && m.CardType != Credit {
		return newRejection(RejectMerchantRecord,
			"Merchant record has no valid settlement card type; reload the parameters / 商户资料中结算卡类型无效，请重新下载参数")
	}
	t := CardTypeOf(c)
	if t != Debit && t != Credit {
		return newRejection(RejectCardType,
			"Card type (debit or credit) cannot be determined; use the card's debit or credit application / 无法确定借记或贷记卡类型，请使用借记或贷记应用")
	}
	if t != m.CardType {
		return newRejection(RejectCardType,
			"This is a %s card; the merchant registered a %s card / 此卡为%s，商户登记的是%s",
			t, m.CardType, bindTypeZH(t), bindTypeZH(m.CardType))
	}
	return nil
}

func bindTypeZH(t CardType) string {
	if t == Credit {
		return "贷记卡"
	}
	return "借记卡"
}

func checkBindExpiry(c Card, now time.Time) *Rejection {
	year, month, ok := parseBindExpiry(c.Expiry)
	if !ok {
		return newRejection(RejectUnreadable,
			"Card expiry date could not be read; read the card again / 无法读取卡片有效期，请重新读卡")
	}
	// Valid through the last day of the month: expired from the first instant
	// of the next one, on the terminal's calendar (now's location), which is the
	// calendar the installer and the card's printed date share. time.Date
	// carries month 13 into January.
	end := time.Date(year, time.Month(month+1), 1, 0, 0, 0, 0, now.Location())
	if !now.Before(end) {
		return newRejection(RejectExpired,
			"Card expired at the end of %02d/%02d; use a valid card / 卡片已过期（有效期 %02d/%02d），请使用有效卡",
			month, year%100, month, year%100)
	}
	return nil
}

// parseBindExpiry reads YYMM. Two-digit years are 20YY: payment cards are
// issued for at most a few decades, and none valid today expires in 19YY.
func parseBindExpiry(s string) (year, month int, ok bool) {
	if len(s) != 4 {
		return 0, 0, false
	}
	for i := 0; i < 4; i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, 0, false
		}
	}
	year = 2000 + int(s[0]-'0')*10 + int(s[1]-'0')
	month = int(s[2]-'0')*10 + int(s[3]-'0')
	if month < 1 || month > 12 {
		return 0, 0, false
	}
	return year, month, true
}

func checkBindName(c Card, m Merchant) *Rejection {
	card := NormalizeName(c.Name)
	if card == "" {
		return newRejection(RejectUnreadable,
			"Cardholder name could not be read from the card / 无法读取持卡人姓名")
	}
	legal, account := NormalizeName(m.LegalPerson), NormalizeName(m.AccountName)
	if legal == "" && account == "" {
		return newRejection(RejectMerchantRecord,
			"Merchant record has no legal person or account name; reload the parameters / 商户资料缺少法人或账户名，请重新下载参数")
	}
	if NamesMatch(card, legal) || NamesMatch(card, account) {
		return nil
	}
	// Neither name is shown: the screen's message is also reported centrally.
	// Say when the scripts differ, the one mismatch an installer cannot see by
	// comparing the card with the registration form.
	hintEN, hintZH := "", ""
	regHan := nameHasHan(legal) || nameHasHan(account)
	switch {
	case !nameHasHan(card) && regHan:
		hintEN, hintZH = " (the card's name is in Latin letters, the registered one in Chinese characters)", "（卡上姓名为拼音/字母，登记姓名为汉字）"
	case nameHasHan(card) && !regHan:
		hintEN, hintZH = " (the card's name is in Chinese characters, the registered one in Latin letters)", "（卡上姓名为汉字，登记姓名为拼音/字母）"
	}
	return newRejection(RejectNameMismatch,
		"Cardholder name does not match the merchant's legal person or account name%s / 持卡人姓名与商户法人或账户名不符%s",
		hintEN, hintZH)
}

// checkAccount asks the account checker whether c is the account of the
// record's check value. A record without a well-formed check value is the
// record's fault (RejectMerchantRecord); a checker that is missing or cannot
// check is the terminal's (E_ACCOUNT_CHECK), never a rejection of the card.
func (r BindingRules) checkAccount(c Card, m Merchant) error {
	if !accountCheckShape(m.AccountCheck) {
		return newRejection(RejectMerchantRecord,
			"Merchant record's settlement account is missing or malformed; reload the parameters / 商户资料中结算账户信息有误，请重新下载参数")
	}
	if r.Accounts == nil {
		return stepErr("E_ACCOUNT_CHECK", errors.New("provisioning: no account checker configured"))
	}
	ok, err := r.Accounts.MatchAccount(c.PAN, strings.ToLower(m.AccountCheck))
	if err != nil {
		return stepErr("E_ACCOUNT_CHECK", err)
	}
	if !ok {
		return newRejection(RejectOtherAccount,
			"Card %s is not the merchant's registered settlement account / 卡号 %s 不是商户登记的结算账户",
			c.PAN.Masked(), c.PAN.Masked())
	}
	return nil
}

// accountCheckShape is 64 hex digits (HMAC-SHA256); either case, as a
// record may come from a system that writes upper case.
func accountCheckShape(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
