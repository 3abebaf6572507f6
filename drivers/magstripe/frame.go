package magstripe

import (
	"bytes"
	"slices"
)

// Control characters readers frame swipes with.
const (
	STX = 0x02
	ETX = 0x03
	ESC = 0x1B
	CR  = 0x0D
	LF  = 0x0A
)

// Framing describes how a reader puts a swipe on the line. Readers differ and
// most are configurable, so this is data, not code: see MagTek and Lines.
type Framing struct {
	// Start, when set, begins every frame (MagTek: STX ESC). Bytes before it
	// are noise and skipped; a second Start before End drops the partial frame.
	Start []byte
	// End ends every frame in delimited mode (MagTek: CR ETX).
	End []byte
	// Lines, when set, selects line mode instead: the reader sends one line
	// per track, the tracks listed here in order (e.g. 1, 2, 3), each line
	// ending in LF with an optional CR before it. A frame is complete when
	// the last listed track's line has arrived; tracks whose lines were lost
	// to noise are missing from it.
	Lines []int
	// Status says a one-byte card-sensor status follows the last track
	// (MagTek); it is taken off before the tracks are read.
	Status bool
	// LRC says each track's end sentinel is followed by its LRC byte.
	LRC bool
	// Track3Semicolon says track 3 starts with ';' instead of '+'. In
	// delimited mode a second ';' track in a frame is track 3 regardless.
	Track3Semicolon bool
	// MaxFrame bounds a frame's size; a longer run without an End is dropped
	// as noise. Zero means 512, twice what three full tracks take.
	MaxFrame int
}

// MagTek is the framing of MagTek-style RS-232 readers:
// STX ESC %t1? ;t2? +t3? status CR ETX, a bad track sent as E, no LRC.
var MagTek = Framing{Start: []byte{STX, ESC}, End: []byte{CR, ETX}, Status: true}

// Lines returns the framing of readers that send each track on its own line
// (CR LF or LF), always the same tracks in the same order, a bad track as E.
func Lines(tracks ...int) Framing { return Framing{Lines: tracks} }

func (f Framing) maxFrame() int {
	if f.MaxFrame > 0 {
		return f.MaxFrame
	}
	return 512
}

// rawTrack is one track of a frame: its bytes with sentinels (and LRC), or bad
// when the reader sent E for it. data aliases the reader's buffer, which is
// zeroed once the frame is decoded.
type rawTrack struct {
	number int
	data   []byte
	bad    bool
}

// frame is one swipe as framed on the line.
type frame struct {
	tracks []rawTrack
	status byte
}

// Encode frames tracks (each with its sentinels, or "E" for a bad track) as a
// reader with this framing would send them. The emulator and tests use it;
// status is used only when f.Status is set. LRC bytes are added when f.LRC.
func (f Framing) Encode(status byte, tracks ...string) []byte {
	var b bytes.Buffer
	if len(f.Lines) > 0 {
		for _, t := range tracks {
			b.WriteString(t)
			if f.LRC && t != "E" && len(t) > 0 {
				b.WriteByte(LRC(trackOf(t[0], f.Track3Semicolon), []byte(t)))
			}
			b.WriteString("\r\n")
		}
		return b.Bytes()
	}
	b.Write(f.Start)
	for _, t := range tracks {
		b.WriteString(t)
		if f.LRC && t != "E" && len(t) > 0 {
			b.WriteByte(LRC(trackOf(t[0], f.Track3Semicolon), []byte(t)))
		}
	}
	if f.Status {
		b.WriteByte(status)
	}
	b.Write(f.End)
	return b.Bytes()
}

func trackOf(sentinel byte, semicolon3 bool) int {
	switch sentinel {
	case '%':
		return 1
	case '+':
		return 3
	}
	if semicolon3 {
		return 3
	}
	return 2
}

// parseBody splits a delimited frame's body (between Start and End) into
// tracks. Bytes that belong to no track (CR, LF, stray noise) are skipped.
func (f Framing) parseBody(body []byte) frame {
	var fr frame
	if f.Status && len(body) > 0 {
		fr.status = body[len(body)-1]
		body = body[:len(body)-1]
	}
	last := 0
	for i := 0; i < len(body); {
		c := body[i]
		switch c {
		case '%', ';', '+':
			n := trackOf(c, f.Track3Semicolon)
			if c == ';' && last >= 2 {
				n = 3 // readers that start track 3 with ';'
			}
			q := bytes.IndexByte(body[i:], '?')
			if q < 0 {
				// Truncated: the end sentinel never came.
				fr.tracks = append(fr.tracks, rawTrack{number: n, bad: true})
				return fr
			}
			end := i + q + 1
			if f.LRC && end < len(body) {
				end++
			}
			t := body[i:end]
			bad := bytes.Equal(t, []byte{c, 'E', '?'}) // MagTek's %E? form
			fr.tracks = append(fr.tracks, rawTrack{number: n, data: t, bad: bad})
			last = n
			i = end
		case 'E':
			last++
			fr.tracks = append(fr.tracks, rawTrack{number: last, bad: true})
			i++
		default:
			i++
		}
	}
	return fr
}

// scanner cuts frames out of the bytes read so far. It owns buf and zeroes
// every byte it drops or consumes, so no track data outlives its frame.
type scanner struct {
	f     Framing
	buf   []byte
	lines []rawTrack // line mode: tracks of the frame being collected
	pos   []int      // line mode: each collected track's place in Framing.Lines
	// lineBufs holds line mode's track bytes until the frame completes; each
	// is zeroed when the frame is decoded or dropped.
	lineBufs [][]byte
	dropped  int // partial or garbage frames skipped
}

func newScanner(f Framing) *scanner {
	return &scanner{f: f, buf: make([]byte, 0, 2*f.maxFrame())}
}

// feed appends p to the buffer, dropping the oldest bytes (zeroed) when it
// would outgrow its capacity: a frame cannot be longer than MaxFrame anyway.
func (s *scanner) feed(p []byte) {
	if len(p) > cap(s.buf) {
		p = p[len(p)-cap(s.buf):]
		s.dropped++
	}
	if over := len(s.buf) + len(p) - cap(s.buf); over > 0 {
		s.consume(over)
		s.dropped++
	}
	s.buf = append(s.buf, p...)
}

// consume removes the first n bytes and zeroes the vacated tail.
func (s *scanner) consume(n int) {
	n = min(n, len(s.buf))
	copy(s.buf, s.buf[n:])
	clear(s.buf[len(s.buf)-n:])
	s.buf = s.buf[:len(s.buf)-n]
}

// next returns the next complete frame and a release func that zeroes its
// bytes, or ok false when more input is needed.
func (s *scanner) next() (fr frame, release func(), ok bool) {
	if len(s.f.Lines) > 0 {
		return s.nextLines()
	}
	return s.nextDelimited()
}

func (s *scanner) nextDelimited() (frame, func(), bool) {
	max := s.f.maxFrame()
	end := s.f.End
	if len(end) == 0 {
		end = []byte{CR}
	}
	for {
		bodyStart := 0
		if len(s.f.Start) > 0 {
			i := bytes.Index(s.buf, s.f.Start)
			if i < 0 {
				// Keep only what could be the beginning of a Start.
				keep := min(len(s.buf), len(s.f.Start)-1)
				if len(s.buf)-keep > 0 {
					s.consume(len(s.buf) - keep)
				}
				return frame{}, nil, false
			}
			if i > 0 {
				s.consume(i) // noise before the frame
			}
			bodyStart = len(s.f.Start)
		}
		rest := s.buf[bodyStart:]
		e := bytes.Index(rest, end)
		if len(s.f.Start) > 0 {
			// A new Start before the End means the earlier frame was cut off.
			if j := bytes.Index(rest, s.f.Start); j >= 0 && (e < 0 || j < e) {
				s.consume(bodyStart + j)
				s.dropped++
				continue
			}
		}
		if e < 0 {
			if len(rest) > max {
				s.consume(bodyStart + len(rest) - len(end) + 1)
				s.dropped++
				continue
			}
			return frame{}, nil, false
		}
		if e > max {
			s.consume(bodyStart + e + len(end))
			s.dropped++
			continue
		}
		fr := s.f.parseBody(rest[:e])
		total := bodyStart + e + len(end)
		return fr, func() {
			clear(s.buf[:total]) // the tracks lent out read as zeros from now on
			s.consume(total)
		}, true
	}
}

func (s *scanner) nextLines() (frame, func(), bool) {
	for {
		i := bytes.IndexByte(s.buf, LF)
		if i < 0 {
			if len(s.buf) > s.f.maxFrame() {
				s.consume(len(s.buf))
				s.dropLines()
			}
			return frame{}, nil, false
		}
		line := s.buf[:i]
		if len(line) > 0 && line[len(line)-1] == CR {
			line = line[:len(line)-1]
		}
		s.takeLine(line)
		s.consume(i + 1)
		if len(s.pos) > 0 && s.pos[len(s.pos)-1] == len(s.f.Lines)-1 {
			fr := frame{tracks: s.lines}
			s.lines, s.pos = nil, nil
			bufs := s.lineBufs
			s.lineBufs = nil
			return fr, func() {
				for _, b := range bufs {
					clear(b)
				}
			}, true
		}
	}
}

// takeLine adds one line to the frame being collected. A track line's place
// comes from its sentinel (E takes the place after the last one), so lines
// lost to noise leave gaps instead of shifting the tracks that follow; a
// place at or before the last one collected starts a new swipe. The line is
// copied (into a buffer zeroed later) because the scanner's buffer moves on.
func (s *scanner) takeLine(line []byte) {
	if len(line) == 0 {
		return // blank lines between swipes are noise
	}
	c := line[0]
	if c != '%' && c != ';' && c != '+' && c != 'E' {
		s.dropLines() // garbage: whatever was collected cannot be trusted
		return
	}
	last := -1
	if len(s.lines) > 0 {
		last = s.pos[len(s.pos)-1]
	}
	pos := last + 1
	if c != 'E' {
		n := trackOf(c, s.f.Track3Semicolon)
		if c == ';' && !slices.Contains(s.f.Lines[last+1:], 2) {
			n = 3 // a ';' where track 2 can no longer be: track 3 with ';'
		}
		pos = slices.Index(s.f.Lines, n)
		if pos < 0 {
			s.dropLines() // a track this reader is not set up to send
			return
		}
	}
	if pos <= last {
		s.dropLines() // the start of a new swipe: the last one was cut off
	}
	if pos >= len(s.f.Lines) {
		s.dropLines()
		return
	}
	n := s.f.Lines[pos]
	s.pos = append(s.pos, pos)
	if c == 'E' || bytes.Equal(line, []byte{c, 'E', '?'}) {
		s.lines = append(s.lines, rawTrack{number: n, bad: true})
		return
	}
	b := append([]byte(nil), line...)
	s.lineBufs = append(s.lineBufs, b)
	s.lines = append(s.lines, rawTrack{number: n, data: b})
}

func (s *scanner) dropLines() {
	if len(s.lines) > 0 {
		s.dropped++
	}
	for _, b := range s.lineBufs {
		clear(b)
	}
	s.lines, s.lineBufs, s.pos = nil, nil, nil
}

// reset drops everything buffered, zeroed.
func (s *scanner) reset() {
	s.consume(len(s.buf))
	s.dropLines()
}
