package agent

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/posagent/posagent/agent/card/oda"
)

// loadRevocations reads host.ca_revocation_file: the issuer certificates
// the CAs revoked, by RID, CA public key index and certificate serial
// (EMV Book 2 §5.3), all hex. Every entry must read: a list the terminal
// half understood would let a revoked card pass.
func loadRevocations(path string) ([]oda.Revocation, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent: host.ca_revocation_file: %w", err)
	}
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
		return nil, fmt.Errorf("agent: host.ca_revocation_file %s: %w", path, err)
	}
	out := make([]oda.Revocation, 0, len(f.Revoked))
	for i, r := range f.Revoked {
		rid, err1 := hex.DecodeString(r.RID)
		idx, err2 := hex.DecodeString(r.Index)
		serial, err3 := hex.DecodeString(r.Serial)
		if err1 != nil || err2 != nil || err3 != nil || len(rid) != 5 || len(idx) != 1 || len(serial) != 3 {
			return nil, fmt.Errorf("agent: host.ca_revocation_file %s: entry %d: rid is 5 bytes, index 1, serial 3, in hex", path, i+1)
		}
		out = append(out, oda.Revocation{RID: rid, Index: idx[0], Serial: serial})
	}
	return out, nil
}
