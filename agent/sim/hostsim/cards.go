package hostsim

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/cardsim"
	"github.com/posagent/posagent/provisioning/pan"
)

// CardKey is what the simulated issuer knows of one card: the master key its
// ARQCs derive from and the CDOL1 of each of its applications (the field-55
// objects are put back in CDOL1 order to recompute the cryptogram).
type CardKey struct {
	MK     []byte
	SMI    []byte   // the issuer script MAC master key (the profile's mac_key)
	CDOL1s []string // hex DOLs
}

// LoadCards reads every *.yaml card profile in dir (the cards cardsim
// emulates) and returns their keys by PAN. Several profiles may describe the
// same account (an expired predecessor, a quirky reader path) as long as they
// agree on its key; two keys for one PAN are an error, since the simulator
// could not tell which one the card used.
func LoadCards(dir string) (map[string]CardKey, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("hostsim: cards: %w", err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("hostsim: cards: no *.yaml profile in %s", dir)
	}
	out := map[string]CardKey{}
	for _, p := range paths {
		prof, err := cardsim.LoadProfile(p)
		if err != nil {
			return nil, fmt.Errorf("hostsim: cards: %w", err)
		}
		mk, err := hex.DecodeString(strings.Join(strings.Fields(prof.Key), ""))
		if err != nil {
			// LoadProfile validated it; this is not reachable with its checks.
			return nil, fmt.Errorf("hostsim: cards: %s: key is not hex", p)
		}
		smi, err := hex.DecodeString(strings.Join(strings.Fields(prof.MACKey), ""))
		if err != nil {
			return nil, fmt.Errorf("hostsim: cards: %s: mac_key is not hex", p)
		}
		ck, seen := out[prof.PAN]
		if seen && (!bytes.Equal(ck.MK, mk) || !bytes.Equal(ck.SMI, smi)) {
			return nil, fmt.Errorf("hostsim: cards: %s: PAN %s already has another key", p, pan.Mask(prof.PAN))
		}
		ck.MK, ck.SMI = mk, smi
		for _, a := range prof.Applications {
			if !slices.Contains(ck.CDOL1s, a.CDOL1) {
				ck.CDOL1s = append(ck.CDOL1s, a.CDOL1)
			}
		}
		out[prof.PAN] = ck
	}
	return out, nil
}

// verifyARQC reports whether field 55 carries a cryptogram the card with key
// ck would have computed, under any of its applications' CDOL1.
func verifyARQC(ck CardKey, field55 []byte) bool {
	f := hex.EncodeToString(field55)
	for _, dol := range ck.CDOL1s {
		if cardsim.VerifyField55(ck.MK, dol, f) == nil {
			return true
		}
	}
	return false
}

// amountSigned reports whether field 55's amount authorised (9F02, n12 BCD)
// is field 4's (12 digits). A field 55 without 9F02 signs no amount to
// compare, and passes.
func amountSigned(field55 []byte, field4 string) bool {
	objs, err := emv.DecodeTLV(field55)
	if err != nil {
		return false
	}
	a, ok := emv.Find(objs, 0x9F02)
	if !ok {
		return true
	}
	return hex.EncodeToString(a.Value) == field4
}
