package oda

import (
	"bytes"
	"encoding/hex"
	"fmt"

	"gopkg.in/yaml.v3"
)

// ParseRevocations reads a CA revocation list: YAML `revoked: [{rid, index,
// serial}]`, each hex (RID 5 bytes, CA public key index 1, certificate
// serial 3; EMV Book 2 §5.3). Every entry must read: a list understood in
// part would let a revoked card pass.
func ParseRevocations(b []byte) ([]Revocation, error) {
	var f struct {
		Revoked []struct {
			RID    string `yaml:"rid"`
			Index  string `yaml:"index"`
			Serial string `yaml:"serial"`
		} `yaml:"revoked"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("oda: revocation list: %w", err)
	}
	out := make([]Revocation, 0, len(f.Revoked))
	for i, r := range f.Revoked {
		rid, err1 := hex.DecodeString(r.RID)
		idx, err2 := hex.DecodeString(r.Index)
		serial, err3 := hex.DecodeString(r.Serial)
		if err1 != nil || err2 != nil || err3 != nil || len(rid) != 5 || len(idx) != 1 || len(serial) != 3 {
			return nil, fmt.Errorf("oda: revocation list: entry %d: rid is 5 bytes, index 1, serial 3, in hex", i+1)
		}
		out = append(out, Revocation{RID: rid, Index: idx[0], Serial: serial})
	}
	return out, nil
}
