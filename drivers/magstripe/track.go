// Package magstripe decodes magnetic-stripe card swipes: the framing a serial
// reader puts around the tracks, and the ISO/IEC 7813 track 1, 2 and 3 formats.
//
// A swipe is external, often damaged input: every check (sentinels, separators,
// lengths, character sets, LRC where the reader sends it, Luhn, expiry, service
// code) is done here, and a failure names the check and the track, never the
// data. Results carry the card number as pan.PAN, which masks itself in every
// print. Raw track data is never kept: the bytes read from the line are zeroed
// once a frame is decoded, and the track-2/track-3 data the host needs (fields 35
// and 36) is lent to a callback and zeroed when it returns (see Config.Sensitive).
package magstripe

import (
	"errors"
	"strings"
	"time"

	"github.com/posagent/posagent/provisioning/pan"
)

// Check names one validation of a track; Track.Failed lists those that failed.
// The names are stable strings for tools and monitoring.
type Check string

// Checks, in the order they are made.
const (
	CheckSentinel    Check = "sentinel"     // start/end sentinel missing or wrong
	CheckLength      Check = "length"       // longer than ISO 7813 allows for the track
	CheckCharset     Check = "charset"      // a character outside the track's set
	CheckLRC         Check = "lrc"          // the longitudinal redundancy check byte is wrong
	CheckFormat      Check = "format"       // format code or field separators wrong
	CheckPAN         Check = "pan"          // the PAN is not 12 to 19 digits
	CheckLuhn        Check = "luhn"         // the PAN's check digit is wrong
	CheckExpiry      Check = "expiry"       // not YYMM, or the card has expired
	CheckServiceCode Check = "service_code" // not three digits
	CheckName        Check = "name"         // track 1 name missing or too long
)

// Errors callers branch on. A TrackError wraps the ones matching its checks.
var (
	ErrSentinel    = errors.New("magstripe: bad sentinel")
	ErrLength      = errors.New("magstripe: track too long")
	ErrCharset     = errors.New("magstripe: character outside the track's set")
	ErrLRC         = errors.New("magstripe: LRC mismatch")
	ErrFormat      = errors.New("magstripe: bad format code or separator")
	ErrPAN         = errors.New("magstripe: bad card number")
	ErrLuhn        = errors.New("magstripe: card number check digit wrong")
	ErrExpired     = errors.New("magstripe: card expired or expiry invalid")
	ErrServiceCode = errors.New("magstripe: bad service code")
	ErrName        = errors.New("magstripe: bad cardholder name")
)

var checkErr = map[Check]error{
	CheckSentinel: ErrSentinel, CheckLength: ErrLength, CheckCharset: ErrCharset,
	CheckLRC: ErrLRC, CheckFormat: ErrFormat, CheckPAN: ErrPAN, CheckLuhn: ErrLuhn,
	CheckExpiry: ErrExpired, CheckServiceCode: ErrServiceCode, CheckName: ErrName,
}

// TrackError says which checks a track failed, never what the track held.
type TrackError struct {
	Track  int // 1, 2 or 3; 0 when the sentinel did not tell
	Failed []Check
}

// Error names the track and the failed checks.
func (e *TrackError) Error() string {
	names := make([]string, len(e.Failed))
	for i, c := range e.Failed {
		names[i] = string(c)
	}
	return "magstripe: track " + string(rune('0'+e.Track)) + " failed: " + strings.Join(names, ", ")
}

// Unwrap lets errors.Is match the sentinel error of every failed check.
func (e *TrackError) Unwrap() []error {
	errs := make([]error, 0, len(e.Failed))
	for _, c := range e.Failed {
		errs = append(errs, checkErr[c])
	}
	return errs
}

// Track is what a track says about the card. Discretionary data (which holds
// the CVV/CVN) is deliberately not kept.
type Track struct {
	Number      int     // 1, 2 or 3
	PAN         pan.PAN // empty for track 3
	Name        string  // track 1 only, trimmed
	Expiry      string  // YYMM
	ServiceCode string  // three digits
	Failed      []Check // empty when the track is valid
}

// Chip reports whether the service code says the card has a chip (first digit
// 2 or 6): such a card must be read by its chip, not swiped.
func (t Track) Chip() bool {
	return len(t.ServiceCode) == 3 && (t.ServiceCode[0] == '2' || t.ServiceCode[0] == '6')
}

// ISO/IEC 7813 maximum lengths including sentinels and LRC; ISO 4909 for track 3.
const (
	maxTrack1 = 79
	maxTrack2 = 40
	maxTrack3 = 107
	maxName   = 26
)

// ParseOptions tune ParseTrack.
type ParseOptions struct {
	// LRC says the byte after the end sentinel is the track's LRC, to verify.
	// Without it, a byte after the end sentinel is a framing error.
	LRC bool
	// Now is the time the expiry is checked against; zero skips the "expired"
	// part of the check (the YYMM form is still checked).
	Now time.Time
	// Track3 forces a ';'-started track to be read as track 3 (some readers use
	// ';' as track 3's start sentinel).
	Track3 bool
}

// ParseTrack parses and validates one track including its sentinels (and LRC
// when opts.LRC). The track number comes from the start sentinel: '%' is track
// 1, ';' track 2 (track 3 with opts.Track3), '+' track 3.
//
// It returns what it could read even when checks fail; err is then a
// *TrackError listing them. ParseTrack never keeps b or a slice of it.
func ParseTrack(b []byte, opts ParseOptions) (Track, error) {
	var t Track
	if len(b) == 0 {
		t.Failed = []Check{CheckSentinel}
		return t, &TrackError{Failed: t.Failed}
	}
	var f failures
	switch b[0] {
	case '%':
		t.Number = 1
	case ';':
		t.Number = 2
		if opts.Track3 {
			t.Number = 3
		}
	case '+':
		t.Number = 3
	default:
		t.Failed = []Check{CheckSentinel}
		return t, &TrackError{Failed: t.Failed}
	}
	max := map[int]int{1: maxTrack1, 2: maxTrack2, 3: maxTrack3}[t.Number]
	if len(b) > max {
		f.add(CheckLength)
	}
	end := indexByte(b, '?')
	if end < 0 {
		f.add(CheckSentinel)
		end = len(b)
	}
	rest := b[min(end+1, len(b)):]
	switch {
	case opts.LRC && end < len(b):
		if len(rest) != 1 || !lrcOK(t.Number, b[:end+1], rest[0]) {
			f.add(CheckLRC)
		}
	case len(rest) != 0:
		f.add(CheckSentinel)
	}
	data := b[1:end]
	if !charsetOK(t.Number, data) {
		f.add(CheckCharset)
	}
	switch t.Number {
	case 1:
		parseTrack1(&t, data, opts.Now, &f)
	case 2:
		parseTrack2(&t, data, opts.Now, &f)
	case 3:
		// Track 3 (ISO 4909) is passed to the host as is (field 36); only
		// its framing and character set are ours to check.
	}
	t.Failed = f.list
	if len(t.Failed) > 0 {
		return t, &TrackError{Track: t.Number, Failed: t.Failed}
	}
	return t, nil
}

// failures collects failed checks once each, in order.
type failures struct{ list []Check }

func (f *failures) add(c Check) {
	for _, x := range f.list {
		if x == c {
			return
		}
	}
	f.list = append(f.list, c)
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// charsetOK checks the data between the sentinels. Track 1 is 6-bit
// alphanumeric (0x20–0x5F) without the sentinels '%' and '?'; tracks 2 and 3
// are 4-bit BCD where only digits and the separator '=' are data.
func charsetOK(track int, data []byte) bool {
	for _, c := range data {
		if track == 1 {
			if c < 0x20 || c > 0x5F || c == '%' || c == '?' {
				return false
			}
			continue
		}
		if (c < '0' || c > '9') && c != '=' {
			return false
		}
	}
	return true
}

// lrcOK verifies the LRC: the XOR of every character's code (sentinels
// included) in the track's own code (6-bit for track 1, 4-bit for 2 and 3),
// sent as a character of the same set.
func lrcOK(track int, withSentinels []byte, lrc byte) bool {
	return LRC(track, withSentinels) == lrc
}

// LRC computes the LRC character for a track given with its sentinels, as a
// reader that transmits it would send it. Track 1 characters that are outside
// the 6-bit set make the LRC meaningless; callers check the charset first.
func LRC(track int, withSentinels []byte) byte {
	base := byte('0')
	mask := byte(0x0F)
	if track == 1 {
		base, mask = 0x20, 0x3F
	}
	var x byte
	for _, c := range withSentinels {
		x ^= (c - base) & mask
	}
	return x + base
}

func parseTrack1(t *Track, data []byte, now time.Time, f *failures) {
	if len(data) == 0 || data[0] != 'B' {
		f.add(CheckFormat)
		if len(data) == 0 {
			return
		}
	}
	fields := splitN(data[1:], '^', 3)
	if len(fields) != 3 {
		f.add(CheckFormat)
		parsePAN(t, fields[0], f)
		return
	}
	parsePAN(t, fields[0], f)
	name := strings.TrimSpace(string(fields[1]))
	if len(fields[1]) < 2 || len(fields[1]) > maxName {
		f.add(CheckName)
	}
	t.Name = name
	parseExpirySC(t, fields[2], now, f)
}

func parseTrack2(t *Track, data []byte, now time.Time, f *failures) {
	fields := splitN(data, '=', 2)
	parsePAN(t, fields[0], f)
	if len(fields) != 2 {
		f.add(CheckFormat)
		return
	}
	parseExpirySC(t, fields[1], now, f)
}

// splitN splits at most n-1 times, so the last field keeps any separators.
func splitN(b []byte, sep byte, n int) [][]byte {
	var out [][]byte
	for len(out) < n-1 {
		i := indexByte(b, sep)
		if i < 0 {
			break
		}
		out = append(out, b[:i])
		b = b[i+1:]
	}
	return append(out, b)
}

func parsePAN(t *Track, digits []byte, f *failures) {
	p, err := pan.Parse(string(digits))
	if err != nil || strings.Contains(string(digits), " ") {
		f.add(CheckPAN)
		return
	}
	t.PAN = p
	if !p.LuhnValid() {
		f.add(CheckLuhn)
	}
}

// parseExpirySC reads YYMM and the service code; what follows is
// discretionary data, which is not kept.
func parseExpirySC(t *Track, b []byte, now time.Time, f *failures) {
	if len(b) < 4 || !digits(b[:4]) {
		f.add(CheckExpiry)
	} else {
		t.Expiry = string(b[:4])
		if !expiryOK(t.Expiry, now) {
			f.add(CheckExpiry)
		}
	}
	if len(b) < 7 || !digits(b[4:7]) {
		f.add(CheckServiceCode)
		return
	}
	t.ServiceCode = string(b[4:7])
}

func digits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// expiryOK checks the month and, when now is set, that the card is valid
// through the end of its expiry month (ISO 7813: expires after that month).
// Two-digit years are taken as 20YY: magstripe cards did not exist in 19YY
// form that could still be valid.
func expiryOK(yymm string, now time.Time) bool {
	yy := int(yymm[0]-'0')*10 + int(yymm[1]-'0')
	mm := int(yymm[2]-'0')*10 + int(yymm[3]-'0')
	if mm < 1 || mm > 12 {
		return false
	}
	if now.IsZero() {
		return true
	}
	firstAfter := time.Date(2000+yy, time.Month(mm)+1, 1, 0, 0, 0, 0, now.Location())
	return now.Before(firstAfter)
}
