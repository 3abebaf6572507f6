package mqtt

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
)

// tlsConfig builds the TLS settings for a TLS scheme and refuses TLS files on a
// plain one: a configured CA with a tcp:// URL would send the password in clear
// while the operator believes it is protected.
func tlsConfig(scheme, caFile, certFile, keyFile string) (*tls.Config, error) {
	files := caFile != "" || certFile != "" || keyFile != ""
	switch scheme {
	case "tcp", "mqtt":
		if files {
			return nil, fmt.Errorf("mqtt: TLS files given for a %s:// URL; use ssl://, tls:// or mqtts://", scheme)
		}
		return nil, nil
	case "ssl", "tls", "mqtts":
	default:
		return nil, fmt.Errorf("mqtt: broker URL scheme %q: want tcp, mqtt, ssl, tls or mqtts", scheme)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt: CA file %s: no PEM certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("mqtt: CertFile and KeyFile come together")
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			// tls errors name files and formats, never key material.
			return nil, fmt.Errorf("mqtt: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// redact hides a password in a URL for logs and errors.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
