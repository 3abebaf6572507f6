package acquirer

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/moov-io/iso8583"

	"github.com/posagent/posagent/provisioning"
)

// entryMode is how the card was read, as fields 22 and 60.4/60.5 say it.
type entryMode struct {
	mode     string // the first two digits of 22: 05 chip, 02 magstripe, 01 keyed
	reader   string // 60.4: 5 the terminal reads IC, 0 unspecified
	fallback string // 60.5: 2 magstripe after the chip failed, else 0
}

func (e entryMode) field22(pin bool) string {
	if pin {
		return e.mode + "1"
	}
	return e.mode + "2"
}

// entryModeOf maps the card source's entry to the dialect. chip says the
// card was read from its chip: an ARQC, or a read without one (a void's
// card check: no cryptogram, the AID set), both 05x as LiaoYang_POS sets
// field 22 for every inserted card (Src/tranproc.c SetCommReqField,
// CARD_INSERTED). A chip entry with neither is a keyed card (simulated
// cards have none).
func entryModeOf(e provisioning.Entry, chip bool) (entryMode, error) {
	switch e {
	case provisioning.EntryChip:
		if chip {
			return entryMode{"05", "5", "0"}, nil
		}
		return entryMode{"01", "0", "0"}, nil
	case provisioning.EntrySwipe:
		// 60.4 is the terminal's capability, and this one reads chips.
		return entryMode{"02", "5", "0"}, nil
	case provisioning.EntryFallback:
		return entryMode{"02", "5", "2"}, nil
	case provisioning.EntryContactless:
		// qPBOC: 07x, and 60.4 = 6, a terminal reading contactless IC
		// (PROTOCOLS.md, qPBOC).
		return entryMode{"07", "6", "0"}, nil
	}
	return entryMode{}, fmt.Errorf("%w: entry mode %q", ErrRequest, e)
}

// chipRead says whether a card came from its chip: a cryptogram, or the
// application the read selected.
func chipRead(card provisioning.Card) bool {
	return (card.Entry == provisioning.EntryChip || card.Entry == provisioning.EntryContactless) && (card.ICData != "" || card.AID != "")
}

// panSeq is field 23: the PAN sequence number (5F34, two digits) in three,
// as sales send it.
func panSeq(seq string) string {
	for len(seq) < 3 {
		seq = "0" + seq
	}
	return seq
}

// setCard sets what a sale or void says about the card and the PIN, then
// the terminal, currency and field 60. Tracks go in fields 35/36 for a
// swipe, and the track-2 equivalent (57) in field 35 for a chip read, as
// LiaoYang_POS sends it for an inserted card (SetCommReqField,
// CARD_INSERTED: EncrypteFieldTrac23 of the chip's track 2): encrypted
// under the TDK the same way, field 53 saying so.
func (c *Client) setCard(m *iso8583.Message, t provisioning.Terminal, typ, batch string, card provisioning.Card, pin provisioning.PINBlock) error {
	if !isDigits(batch, 6) {
		return &FieldError{Op: "pack", Field: 60}
	}
	swiped := card.Entry == provisioning.EntrySwipe || card.Entry == provisioning.EntryFallback
	chip := chipRead(card)
	em, err := entryModeOf(card.Entry, chip)
	if err != nil {
		return err
	}
	panDigits := card.PAN.Reveal()
	track2 := card.Track2.Reveal()
	if swiped && track2 == "" {
		return &FieldError{Op: "pack", Field: 35}
	}
	// The chip's tracks go as a swipe's; a keyed card has none to send.
	withTracks := swiped || chip && track2 != ""
	var trackPAN, trackExpiry string
	if withTracks {
		var rest string
		trackPAN, rest, _ = strings.Cut(track2, "=")
		if len(rest) >= 4 {
			trackExpiry = rest[:4]
		}
		switch {
		case panDigits == "":
			panDigits = trackPAN
		case panDigits != trackPAN:
			// The reader's PAN and the track's disagree: the host would
			// decline it (14); say which field instead.
			return &FieldError{Op: "pack", Field: 2}
		}
	}
	if panDigits != "" {
		if err := Set(m, 2, panDigits); err != nil {
			return err
		}
	}
	expiry := card.Expiry
	if !isDigits(expiry, 4) {
		expiry = trackExpiry
	}
	if isDigits(expiry, 4) {
		if err := Set(m, 14, expiry); err != nil {
			return err
		}
	}
	if chip {
		// A read without a cryptogram (a void) has nothing for field 55.
		if card.ICData != "" {
			ic, err := hex.DecodeString(card.ICData)
			if err != nil || len(ic) == 0 {
				return &FieldError{Op: "pack", Field: 55}
			}
			if err := SetBytes(m, 55, ic); err != nil {
				return err
			}
		}
		if card.Seq != "" {
			if err := Set(m, 23, panSeq(card.Seq)); err != nil {
				return err
			}
		}
	}
	hasPIN := len(pin) > 0
	if err := Set(m, 22, em.field22(hasPIN)); err != nil {
		return err
	}
	if err := Set(m, 25, "00"); err != nil {
		return err
	}
	if hasPIN {
		// 26: the most PIN digits the pad accepts (ISO 9564 allows 12).
		if err := Set(m, 26, "12"); err != nil {
			return err
		}
	}
	trackEncrypted := false
	if withTracks {
		// Without a TDK (single-DES sign-on) tracks go in clear and 53
		// says so: that acquirer has no key to decrypt them with.
		tdk := c.keys.Working.TDK
		trackEncrypted = len(tdk) > 0
		if !trackEncrypted && c.expectsTDK() {
			return ErrNoTDK
		}
		type trackField struct {
			id   int
			data string
		}
		tracks := []trackField{{35, track2}}
		if swiped {
			// A chip has no track 3 to give.
			tracks = append(tracks, trackField{36, card.Track3.Reveal()})
		}
		for _, tr := range tracks {
			if tr.data == "" {
				continue
			}
			v := tr.data
			if trackEncrypted {
				if v, err = EncryptTrack(tdk, tr.data); err != nil {
					return &FieldError{Op: "pack", Field: tr.id}
				}
			}
			if err := Set(m, tr.id, v); err != nil {
				return err
			}
		}
	}
	if hasPIN {
		if len(c.keys.Working.PIK) == 0 {
			return ErrNotSignedOn
		}
		if panDigits == "" {
			return &FieldError{Op: "pack", Field: 2}
		}
		block, err := EncryptPINBlock(c.keys.Working.PIK, pin, panDigits)
		if err != nil {
			if errors.Is(err, ErrPINBlock) {
				return &FieldError{Op: "pack", Field: 52}
			}
			return err
		}
		if err := SetBytes(m, 52, block); err != nil {
			return err
		}
	}
	if hasPIN || withTracks {
		mode := c.keys.Mode
		if mode == "" {
			mode = c.cfg.KeyMode
		}
		if err := Set(m, 53, SecurityControl(mode, trackEncrypted)); err != nil {
			return err
		}
	}
	return c.setTail(m, t, typ, batch, em)
}

// expectsTDK says whether swiped tracks must go encrypted: double-length
// keys from an acquirer that sends a TDK.
func (c *Client) expectsTDK() bool {
	mode := c.keys.Mode
	if mode == "" {
		mode = c.cfg.KeyMode
	}
	return mode == DoubleDES && !c.cfg.NoTDK
}
