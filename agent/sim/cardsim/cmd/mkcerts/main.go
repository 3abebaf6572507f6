// Command mkcerts writes the offline data authentication certificates of
// the cardsim ODA profiles (testdata/cards/oda) into testdata/pki, signed by
// the TEST-ONLY CA keys of agent/sim/testca. Run it from the repository
// root after changing an ODA profile's records:
//
//	go run ./agent/sim/cardsim/cmd/mkcerts
//
// Missing RSA keys (issuer, ICC, the "other" ICC key) are made first with
// openssl genpkey, once; the certificates are deterministic from the keys.
package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/posagent/posagent/agent/sim/cardsim"
)

func main() {
	if err := run("."); err != nil {
		fmt.Fprintln(os.Stderr, "mkcerts:", err)
		os.Exit(1)
	}
}

func run(root string) error {
	for _, k := range []struct {
		path string
		bits int
		exp  int
	}{{cardsim.IssuerKeyFile, 1024, 3}, {cardsim.ICCKeyFile, 768, 65537}, {cardsim.OtherICCKeyFile, 768, 65537}} {
		if err := ensureKey(filepath.Join(root, k.path), k.bits, k.exp); err != nil {
			return err
		}
	}
	for _, s := range cardsim.CertSpecs {
		path, out, err := cardsim.MakeCerts(root, s)
		if err != nil {
			return err
		}
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, out) {
			continue
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", path)
	}
	return nil
}

// ensureKey makes a TEST ONLY RSA key with openssl when path is absent (Go's
// crypto/rsa only generates exponent 65537; EMV issuers often use 3).
func ensureKey(path string, bits, exp int) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	out, err := exec.Command("openssl", "genpkey", "-algorithm", "RSA",
		"-pkeyopt", fmt.Sprintf("rsa_keygen_bits:%d", bits),
		"-pkeyopt", fmt.Sprintf("rsa_keygen_pubexp:%d", exp)).Output()
	if err != nil {
		return fmt.Errorf("openssl genpkey %s: %w", path, err)
	}
	line := "TEST ONLY - a simulator key for cardsim's offline data authentication; never load it into a real card or HSM.\n"
	fmt.Println("made key", path)
	return os.WriteFile(path, append([]byte(line), out...), 0o600)
}
