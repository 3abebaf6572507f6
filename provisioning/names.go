package provisioning

import (
	"slices"
	"strings"
	"unicode"
)

// NormalizeName folds a cardholder or registered name into the form names are
// compared in. The same person is written many ways: the chip and track 1 carry
// "ZHANG/SAN" (EMV 5F20 and ISO 7813 write SURNAME/GIVEN), the registration form
// was typed on a Chinese keyboard that may produce full-width letters and the
// ideographic space, and Chinese names are written with or without a space
// between surname and given name.
//
// Full-width ASCII (U+FF01–U+FF5E) becomes half-width and letters become upper
// case; '/', '.', ',' and the middle dots used in transliterated minority names
// ('·' U+00B7, '・' U+30FB, '･' U+FF65, '•' U+2022, '‧' U+2027) separate words like
// spaces do; whitespace and control characters (NUL padding read from a chip) are
// separators too, and runs of them become one space; format characters such as
// zero-width spaces are dropped; the result is trimmed. A name that contains a
// Han character loses all its spaces, because "张 三" and "张三" are the same
// name and Chinese names have no word order to compare.
//
// NormalizeName is idempotent: normalizing its result changes nothing.
func NormalizeName(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	han := false
	space := false // a separator is pending; written only before the next kept rune
	for _, r := range s {
		r, keep := nameFoldRune(r)
		switch {
		case !keep:
			continue
		case r == ' ':
			space = b.Len() > 0 // leading separators are trimmed here, trailing ones never written
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		if unicode.Is(unicode.Han, r) {
			han = true
		}
		b.WriteRune(r)
	}
	out := b.String()
	if han {
		out = strings.ReplaceAll(out, " ", "")
	}
	return out
}

// nameFoldRune maps one rune of a name: ' ' for a separator, keep false for a
// rune to drop, else the rune in the compared form.
func nameFoldRune(r rune) (folded rune, keep bool) {
	if r >= 0xFF01 && r <= 0xFF5E {
		// The full-width forms are the ASCII block shifted by a constant.
		r -= 0xFF01 - 0x21
	}
	switch r {
	case '/', '.', ',', '\u00B7', '\u30FB', '\uFF65', '\u2022', '\u2027':
		return ' ', true
	}
	switch {
	case unicode.IsSpace(r), unicode.IsControl(r): // IsSpace covers U+3000
		return ' ', true
	case unicode.Is(unicode.Cf, r):
		return 0, false
	}
	return unicode.ToUpper(r), true
}

// nameHasHan reports whether s contains a Chinese (Han) character.
func nameHasHan(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.Is(unicode.Han, r) }) >= 0
}

// NamesMatch reports whether a card name matches a registered name: equal after
// NormalizeName, or, for names without Han characters, made of the same words in
// another order, since the card says "ZHANG/SAN" (surname first) where the form
// may say "San Zhang". An empty name matches nothing.
//
// It deliberately does not match across scripts (pinyin "ZHANG SAN" against
// "张三"): romanization is ambiguous, and a false match would bind a stranger's
// account.
func NamesMatch(card, registered string) bool {
	a, b := NormalizeName(card), NormalizeName(registered)
	if a == "" || b == "" {
		return false
	}
	if a == b {
		return true
	}
	if nameHasHan(a) || nameHasHan(b) {
		// Normalized Han names have no spaces, hence no words to reorder.
		return false
	}
	wa, wb := strings.Split(a, " "), strings.Split(b, " ")
	if len(wa) != len(wb) {
		return false
	}
	slices.Sort(wa)
	slices.Sort(wb)
	return slices.Equal(wa, wb)
}
