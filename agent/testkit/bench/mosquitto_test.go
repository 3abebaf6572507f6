package bench

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"testing"
)

// The generated chain is what mosquitto and paho will check: the server
// certificate verifies for 127.0.0.1 and each client certificate for client
// authentication, both under the CA.
func TestMakePKIChainsVerify(t *testing.T) {
	p, err := MakePKI(t.TempDir(), "10000001")
	if err != nil {
		t.Fatal(err)
	}
	pool := p.CAPool(t)
	check := func(cert, key string, usage x509.ExtKeyUsage, host string) {
		t.Helper()
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("%s: %v", cert, err)
		}
	}
	check(p.ServerCert, p.ServerKey, x509.ExtKeyUsageServerAuth, "127.0.0.1")
	c := p.Clients["10000001"]
	check(c[0], c[1], x509.ExtKeyUsageClientAuth, "")
}

// A TLS-only broker listens on its TLS port only, and comes back on the same
// port after Restart.
func TestStartMosquittoWithRestart(t *testing.T) {
	m := StartMosquittoWith(t, MosquittoConfig{TLS: true, NoPlain: true, Users: map[string]string{"u": "p"}})
	if m.URL != "" || m.TLSURL == "" {
		t.Fatalf("URL %q TLSURL %q", m.URL, m.TLSURL)
	}
	m.Stop()
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", m.TLSPort)); err == nil {
		c.Close()
		t.Fatal("stopped broker still accepts")
	}
	m.Restart(t)
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", m.TLSPort))
	if err != nil {
		t.Fatalf("after Restart: %v", err)
	}
	c.Close()
}
