package magstripe

import (
	"fmt"
	"strconv"
	"strings"
)

// FramingByName is the framing a configuration names: "magtek" (MagTek), or
// "lines" (tracks 1, 2 and 3 one per line), or "lines:" and the tracks the
// reader sends, comma-separated in order ("lines:2", "lines:1,2").
func FramingByName(name string) (Framing, error) {
	switch name {
	case "magtek", "":
		return MagTek, nil
	case "lines":
		return Lines(1, 2, 3), nil
	}
	list, ok := strings.CutPrefix(name, "lines:")
	if !ok {
		return Framing{}, fmt.Errorf("magstripe: unknown framing %q (magtek, lines, lines:2,3 …)", name)
	}
	var tracks []int
	seen := map[int]bool{}
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 3 || seen[n] {
			return Framing{}, fmt.Errorf("magstripe: framing %q: tracks are 1, 2 or 3, each once", name)
		}
		seen[n] = true
		tracks = append(tracks, n)
	}
	if !seen[2] {
		// Without track 2 no swipe could ever be accepted.
		return Framing{}, fmt.Errorf("magstripe: framing %q: the reader must send track 2", name)
	}
	return Lines(tracks...), nil
}

// NormalizeName puts a track 1 cardholder name in the form "SURNAME/GIVEN":
// upper case, the spaces readers pad with and around the separator dropped,
// runs of spaces as one, and an ISO 7813 title after '.' ("SMITH/JOHN.MR")
// left off. A name without '/' is kept as one name; one with nothing but
// separators is "".
func NormalizeName(s string) string {
	clean := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	s = strings.ToUpper(s)
	surname, given, ok := strings.Cut(s, "/")
	if !ok {
		return clean(s)
	}
	if i := strings.IndexByte(given, '.'); i >= 0 {
		given = given[:i]
	}
	surname, given = clean(surname), clean(strings.ReplaceAll(given, "/", " "))
	switch {
	case surname == "":
		return given
	case given == "":
		return surname
	}
	return surname + "/" + given
}
