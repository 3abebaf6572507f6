package oda

import (
	"bytes"
	"encoding/hex"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/posagent/posagent/provisioning"
)

// ParseCAPKs reads a file of certification authority public keys, for a
// tool that holds no acquirer download (`posctl card read --capks`): YAML
// `keys: [{rid, index, expiry, hash, algorithm, exponent, modulus,
// checksum}]`, each hex but the expiry (YYYYMMDD) — the layout of
// agent/sim/testca/capk.yaml, so the test CA's keys load as they are.
// Every key must read and pass its checksum (DF03, Book 2 §5.2): a key
// damaged in the file would fail every card it signed, silently.
func ParseCAPKs(b []byte) ([]provisioning.CAPK, error) {
	var f struct {
		Keys []struct {
			RID       string `yaml:"rid"`
			Index     string `yaml:"index"`
			Expiry    string `yaml:"expiry"`
			Hash      string `yaml:"hash"`
			Algorithm string `yaml:"algorithm"`
			Exponent  string `yaml:"exponent"`
			Modulus   string `yaml:"modulus"`
			Checksum  string `yaml:"checksum"`
		} `yaml:"keys"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("oda: CA key file: %w", err)
	}
	if len(f.Keys) == 0 {
		return nil, fmt.Errorf("oda: CA key file: no keys")
	}
	out := make([]provisioning.CAPK, 0, len(f.Keys))
	for i, k := range f.Keys {
		var v [7][]byte
		bad := false
		for j, s := range []string{k.RID, k.Index, k.Hash, k.Algorithm, k.Exponent, k.Modulus, k.Checksum} {
			var err error
			if v[j], err = hex.DecodeString(s); err != nil {
				bad = true
			}
		}
		rid, idx, hash, alg, exp, mod, sum := v[0], v[1], v[2], v[3], v[4], v[5], v[6]
		if bad || len(rid) != 5 || len(idx) != 1 || len(hash) != 1 || len(alg) != 1 || len(sum) != 20 ||
			len(exp) == 0 || len(exp) > 3 || len(mod) == 0 || len(mod) > 248 || !isDate(k.Expiry) {
			return nil, fmt.Errorf("oda: CA key file: key %d: rid is 5 bytes, index, hash and algorithm 1, exponent 1-3, modulus up to 248, checksum 20, in hex; expiry YYYYMMDD", i+1)
		}
		c := provisioning.CAPK{RID: rid, Index: idx[0], Expiry: k.Expiry, HashAlgo: hash[0], KeyAlgo: alg[0],
			Modulus: mod, Exponent: exp, Checksum: sum}
		if err := c.Verify(); err != nil {
			return nil, fmt.Errorf("oda: CA key file: key %d: %w", i+1, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func isDate(s string) bool {
	if len(s) != 8 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
