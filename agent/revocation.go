package agent

import (
	"fmt"
	"os"

	"github.com/posagent/posagent/agent/card/oda"
)

// loadRevocations reads host.ca_revocation_file, the issuer certificates
// the CAs revoked (oda.ParseRevocations); none without one.
func loadRevocations(path string) ([]oda.Revocation, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent: host.ca_revocation_file: %w", err)
	}
	r, err := oda.ParseRevocations(b)
	if err != nil {
		return nil, fmt.Errorf("agent: host.ca_revocation_file %s: %w", path, err)
	}
	return r, nil
}
