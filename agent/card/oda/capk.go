package oda

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/posagent/posagent/provisioning"
)

// FindCAPK picks the CA public key a card names: its RID (the first five
// bytes of the AID) and the CA public key index (8F). A key that is past its
// expiry date (DF05) on now, whose expiry cannot be read, or that is not an
// RSA/SHA-1 key is refused: Book 3 §10.3 treats a key the terminal cannot
// use like a missing one, and so does this (ErrNoCAPK either way, with
// ErrExpired too for an expired key). The checksum (DF03) was checked when
// the key was downloaded (provisioning.CAPK.Verify) and is checked again
// here, since the stored list may have been damaged since.
func FindCAPK(capks []provisioning.CAPK, rid []byte, index byte, now time.Time) (provisioning.CAPK, error) {
	var first error
	for _, k := range capks {
		if !bytes.Equal(k.RID, rid) || k.Index != index {
			continue
		}
		// A list may hold a key twice (an old copy and its renewal):
		// the first usable one wins, else the first one's reason.
		err := usableCAPK(k, now)
		if err == nil {
			return k, nil
		}
		if first == nil {
			first = err
		}
	}
	if first != nil {
		return provisioning.CAPK{}, first
	}
	return provisioning.CAPK{}, failf(ErrNoCAPK, "none for %X/%02X", rid, index)
}

func usableCAPK(k provisioning.CAPK, now time.Time) error {
	id := fmt.Sprintf("%X/%02X", k.RID, k.Index)
	last, err := capkExpiry(k.Expiry)
	if err != nil {
		return failf(ErrNoCAPK, "%s: %v", id, err)
	}
	if y, m, d := now.Date(); dateAfter(y, m, d, last) {
		return failWith(ErrNoCAPK, ErrExpired, "%s expired", id)
	}
	if k.HashAlgo != hashSHA1 || k.KeyAlgo != algoRSA {
		return failf(ErrNoCAPK, "%s: hash algorithm %02X, key algorithm %02X", id, k.HashAlgo, k.KeyAlgo)
	}
	if err := checkKey(PublicKey{Modulus: k.Modulus, Exponent: k.Exponent}); err != nil {
		return failf(ErrNoCAPK, "%s: %v", id, err)
	}
	if err := k.Verify(); err != nil {
		return failf(ErrNoCAPK, "%w", err)
	}
	return nil
}

// capkExpiry reads DF05 as the acquirer package stores it: eight digits
// YYYYMMDD (CUP's ASCII form, or four BCD bytes) or six digits YYMMDD
// (three BCD bytes). Two-digit years are 20YY: CA keys are issued with
// expiry dates in this century. The key is valid through that day.
func capkExpiry(s string) (time.Time, error) {
	var layout string
	switch len(s) {
	case 8:
		layout = "20060102"
	case 6:
		layout = "060102"
	default:
		return time.Time{}, fmt.Errorf("expiry %q is neither YYYYMMDD nor YYMMDD", s)
	}
	if _, err := strconv.ParseUint(s, 10, 32); err != nil {
		return time.Time{}, fmt.Errorf("expiry %q is not a date", s)
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("expiry %q is not a date", s)
	}
	if len(s) == 6 && t.Year() < 2000 {
		t = t.AddDate(100, 0, 0)
	}
	return t, nil
}

// dateAfter tells whether the calendar day y-m-d comes after last's day.
// Calendar days, not instants: the terminal's local date is what an expiry
// date means, whatever the time zone of now.
func dateAfter(y int, m time.Month, d int, last time.Time) bool {
	ly, lm, ld := last.Date()
	if y != ly {
		return y > ly
	}
	if m != lm {
		return m > lm
	}
	return d > ld
}
