package receipt

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// wide lists the East Asian Wide (W) and Fullwidth (F) ranges that a receipt or
// a terminal screen can meet: CJK ideographs and punctuation, kana, Hangul,
// fullwidth forms and the common emoji blocks. A GB18030 printer and a CJK LCD
// both draw these two columns wide. Ranges are sorted for the binary search.
var wide = [][2]rune{
	{0x1100, 0x115F},   // Hangul Jamo initial consonants
	{0x231A, 0x231B},   // watch, hourglass
	{0x2329, 0x232A},   // angle brackets
	{0x23E9, 0x23EC},   // media symbols
	{0x2E80, 0x303E},   // CJK radicals, Kangxi, CJK symbols and punctuation (incl. U+3000 ideographic space)
	{0x3041, 0x33FF},   // Hiragana, Katakana, Bopomofo, Hangul compatibility, CJK compatibility
	{0x3400, 0x4DBF},   // CJK Extension A
	{0x4E00, 0x9FFF},   // CJK Unified Ideographs
	{0xA000, 0xA4CF},   // Yi
	{0xA960, 0xA97F},   // Hangul Jamo Extended-A
	{0xAC00, 0xD7A3},   // Hangul syllables
	{0xF900, 0xFAFF},   // CJK compatibility ideographs
	{0xFE10, 0xFE19},   // vertical forms
	{0xFE30, 0xFE6F},   // CJK compatibility forms, small form variants
	{0xFF00, 0xFF60},   // fullwidth ASCII and punctuation (，：（） …)
	{0xFFE0, 0xFFE6},   // fullwidth signs (￥ …)
	{0x1F300, 0x1F64F}, // pictographs, emoticons
	{0x1F900, 0x1F9FF}, // supplemental symbols and pictographs
	{0x20000, 0x2FFFD}, // CJK Extensions B–F
	{0x30000, 0x3FFFD}, // CJK Extension G and later
}

// RuneWidth is the number of display columns r takes: 2 for East Asian wide and
// fullwidth characters, 0 for control characters and combining marks, else 1.
//
// Ambiguous-width characters (·, —, “ ”, °) count as 1. A printer in GB18030 mode
// may draw them two columns wide, so text meant for a slip should avoid them;
// this package's own labels use only ASCII punctuation for that reason.
func RuneWidth(r rune) int {
	switch {
	case r < 0x20 || (r >= 0x7F && r < 0xA0):
		return 0
	case r < 0x1100:
		// Fast path for ASCII and Latin; only combining marks are zero-width here.
		if unicode.In(r, unicode.Mn, unicode.Me) {
			return 0
		}
		return 1
	case isWide(r):
		return 2
	case unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf):
		// Combining marks and format characters (zero-width space, ZWJ) take no column.
		return 0
	}
	return 1
}

func isWide(r rune) bool {
	lo, hi := 0, len(wide)
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case r < wide[m][0]:
			hi = m
		case r > wide[m][1]:
			lo = m + 1
		default:
			return true
		}
	}
	return false
}

// Width is the number of display columns s takes (see RuneWidth). Invalid UTF-8
// bytes count one column each, as the replacement character a device would draw.
func Width(s string) int {
	n := 0
	for _, r := range s {
		n += RuneWidth(r)
	}
	return n
}

// Wrap breaks s into lines no wider than width display columns.
//
// Newlines in s end a line. Lines break at spaces (which are dropped at the
// break) and on either side of a wide character, as Chinese text allows, but
// never before closing punctuation or after opening punctuation, so a line does
// not start with a comma. A word wider than width is cut between runes; a rune
// is never split. Tabs and other zero-width whitespace become a plain space so
// that what is counted is what is drawn. Trailing spaces are trimmed; an empty s gives one
// empty line. With width < 2 a wide rune still gets a line of its own.
func Wrap(s string, width int) []string {
	if width < 1 {
		width = 1
	}
	var out []string
	for _, para := range strings.Split(s, "\n") {
		out = append(out, wrapLine(para, width)...)
	}
	return out
}

// token is an unbreakable unit of a line: a run of spaces or a run of
// characters with no break opportunity inside it.
type token struct {
	text  string
	width int
	space bool
}

// tokenize splits one line into tokens at spaces and at the break opportunities
// around wide characters.
func tokenize(s string) []token {
	var toks []token
	var b strings.Builder
	w := 0
	inSpace := false
	var prev rune = -1
	flush := func() {
		if b.Len() > 0 {
			toks = append(toks, token{text: b.String(), width: w, space: inSpace})
		}
		b.Reset()
		w = 0
	}
	for _, r := range s {
		sp := unicode.IsSpace(r)
		if sp && RuneWidth(r) == 0 {
			r = ' ' // a tab or CR would be counted as nothing but drawn as something
		}
		switch {
		case sp != inSpace:
			flush()
			inSpace = sp
		case !sp && prev >= 0 && canBreak(prev, r):
			flush()
		}
		b.WriteRune(r)
		w += RuneWidth(r)
		prev = r
	}
	flush()
	return toks
}

// canBreak reports whether a line may break between a and b (neither a space).
func canBreak(a, b rune) bool {
	if strings.ContainsRune(closing, b) || strings.ContainsRune(opening, a) {
		return false
	}
	return isWide(a) || isWide(b)
}

// Punctuation that must not start (closing) or end (opening) a line.
const (
	closing = ",.;:!?)]}%、，。；：！？）】」』》〉"
	opening = "([{（【「『《〈"
)

func wrapLine(s string, width int) []string {
	var lines []string
	var cur strings.Builder
	curW := 0
	pending := "" // spaces between the last word on the line and the next one
	pendingW := 0
	first := true // leading spaces of the first line are indentation: keep them
	emit := func() {
		line := strings.TrimRightFunc(cur.String(), unicode.IsSpace)
		if line != "" || len(lines) == 0 {
			lines = append(lines, line)
		}
		cur.Reset()
		curW = 0
		pending, pendingW = "", 0
		first = false
	}
	for _, t := range tokenize(s) {
		if t.space {
			if curW == 0 && !first {
				continue // spaces at a break are dropped
			}
			pending, pendingW = pending+t.text, pendingW+t.width
			continue
		}
		if curW+pendingW+t.width > width && curW > 0 {
			emit()
		}
		if curW > 0 || first {
			cur.WriteString(pending)
			curW += pendingW
		}
		pending, pendingW = "", 0
		first = false
		if curW+t.width <= width {
			cur.WriteString(t.text)
			curW += t.width
			continue
		}
		// A token wider than the line: leading indentation cannot stay, then cut
		// the token between runes.
		if curW > 0 && strings.TrimLeftFunc(cur.String(), unicode.IsSpace) == "" {
			cur.Reset()
			curW = 0
		}
		for _, r := range t.text {
			rw := RuneWidth(r)
			if curW+rw > width && curW > 0 {
				emit()
			}
			cur.WriteRune(r)
			curW += rw
		}
	}
	if curW > 0 || len(lines) == 0 {
		emit()
	}
	return lines
}

// pad returns n spaces (none when n <= 0).
func pad(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat(" ", n)
}

// validUTF8 replaces invalid bytes so that Width and the printed text agree.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
