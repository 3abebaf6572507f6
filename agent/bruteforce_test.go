package agent

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// accountSearch is the search an attacker runs for the settlement card's
// number once they hold copies of what the terminal stores and sends: the
// masked card (first 6 / last 4) says which digits are missing, and every
// Luhn-valid filling is tried against every piece of material in the
// copies that could confirm it. The material is found by shape, not by
// name (any run of hex digits may be a hash, a salt, a key or a check
// value), so renaming a field hides nothing from it.
//
// What it tries, for each candidate number:
//   - SHA-256(number) and SHA-256(salt || number) for every hex run of 8 to
//     64 bytes as the salt (the old account_hash/account_salt);
//   - HMAC-SHA256(key, number) for every hex run of 16 bytes or more as the
//     key (a check key that leaked);
//   - HMAC-SHA256(HKDF-SHA256(tmk, info || TID), number) for every hex run
//     of 8, 16 or 24 bytes as the TMK and every TID in the copies (the
//     account_check as the acquirer computes it, with a TMK that leaked).
//
// A candidate is confirmed when one of those lands on a 32-byte hex run of
// the copies.
type accountSearch struct {
	prefix, suffix string
	hidden         int

	targets map[[sha256.Size]byte]bool // every 32-byte hex run
	salts   [][]byte
	macs    []hash.Hash // keyed: direct keys, then derived ones
}

var (
	hexRun    = regexp.MustCompile(`[0-9a-fA-F]{16,}`)
	maskedPAN = regexp.MustCompile(`\b(\d{6})(\*{2,})(\d{4})\b`)
	tidField  = regexp.MustCompile(`"?tid"?\s*:\s*"?(\d{8})\b`)
)

// newAccountSearch gathers the material of the artefacts and the masked
// card they show; it fails the test when no masked card is in them (the
// search would then prove nothing).
func newAccountSearch(t testing.TB, artefacts map[string][]byte) *accountSearch {
	t.Helper()
	s := &accountSearch{targets: map[[sha256.Size]byte]bool{}}
	var tids []string
	var tmks, keys [][]byte
	for _, b := range artefacts {
		text := string(b)
		if m := maskedPAN.FindStringSubmatch(text); m != nil && s.prefix == "" {
			s.prefix, s.hidden, s.suffix = m[1], len(m[2]), m[3]
		}
		for _, m := range tidField.FindAllStringSubmatch(text, -1) {
			if !slices.Contains(tids, m[1]) {
				tids = append(tids, m[1])
			}
		}
		for _, run := range hexRun.FindAllString(text, -1) {
			if len(run)%2 != 0 {
				continue
			}
			raw, _ := hex.DecodeString(run)
			n := len(raw)
			switch n {
			case sha256.Size:
				s.targets[[sha256.Size]byte(raw)] = true
			case 8, 16, 24:
				tmks = append(tmks, raw)
			}
			if n >= 8 && n <= 64 {
				s.salts = append(s.salts, raw)
			}
			if n >= 16 {
				keys = append(keys, raw)
			}
		}
	}
	if s.prefix == "" {
		t.Fatal("no masked card number in the artefacts: nothing to search for")
	}
	for _, k := range keys {
		s.macs = append(s.macs, hmac.New(sha256.New, k))
	}
	for _, tmk := range tmks {
		for _, tid := range tids {
			k, err := hkdf.Key(sha256.New, tmk, nil, "posagent settlement account check v1"+tid, 32)
			if err != nil {
				t.Fatal(err)
			}
			s.macs = append(s.macs, hmac.New(sha256.New, k))
		}
	}
	t.Logf("search: %s%s%s, %d targets, %d salts, %d keys (%d TMK candidates x %d TIDs)",
		s.prefix, strings.Repeat("*", s.hidden), s.suffix, len(s.targets), len(s.salts), len(s.macs), len(tmks), len(tids))
	return s
}

// run enumerates the hidden digits and returns every confirmed number.
func (s *accountSearch) run() []string {
	var found []string
	n := len(s.prefix) + s.hidden + len(s.suffix)
	cand := make([]byte, n)
	copy(cand, s.prefix)
	copy(cand[n-len(s.suffix):], s.suffix)
	mid := cand[len(s.prefix) : len(s.prefix)+s.hidden]
	for i := range mid {
		mid[i] = '0'
	}
	var sum [sha256.Size]byte
	hit := func(d []byte) bool { return s.targets[[sha256.Size]byte(d)] }
	salted := sha256.New()
	for {
		if luhnOK(cand) {
			ok := false
			sum = sha256.Sum256(cand)
			ok = hit(sum[:])
			for _, salt := range s.salts {
				if ok {
					break
				}
				salted.Reset()
				salted.Write(salt)
				salted.Write(cand)
				ok = hit(salted.Sum(sum[:0]))
			}
			for _, m := range s.macs {
				if ok {
					break
				}
				m.Reset()
				m.Write(cand)
				ok = hit(m.Sum(sum[:0]))
			}
			if ok {
				found = append(found, string(cand))
			}
		}
		// Next filling of the hidden digits, as a decimal counter.
		i := len(mid) - 1
		for ; i >= 0 && mid[i] == '9'; i-- {
			mid[i] = '0'
		}
		if i < 0 {
			return found
		}
		mid[i]++
	}
}

func luhnOK(d []byte) bool {
	sum, alt := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		n := int(d[i] - '0')
		if alt {
			if n *= 2; n > 9 {
				n -= 9
			}
		}
		sum += n
		alt = !alt
	}
	return sum%10 == 0
}
