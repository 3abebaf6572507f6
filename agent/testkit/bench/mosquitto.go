package bench

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// FleetACL is the ACL of a production-like broker, the one the project ships
// as scripts/packaging/mosquitto-acl (a test there keeps the two equal): each
// terminal logs in with its TID as user name and may write only its own
// state, heartbeat, status, events and command replies, and read its own state, ticket
// and commands; "monitor" reads the whole fleet; "central" also writes
// tickets and commands to any terminal.
const FleetACL = `# mosquitto ACL for the posagent fleet broker (acl_file in mosquitto.conf;
# docs/mqtt.md, "Broker ACLs"). Terminals log in with their TID as user name.
# mosquitto grants what any matching line grants, so a terminal's topics are
# listed one by one: a "pattern readwrite pos/v1/%u/#" would let a terminal
# write its own cmd and ticket topics, which only central may write.

# Central monitoring and support: read the whole fleet.
user monitor
topic read pos/v1/#

# Central's tools (posctl ticket, posctl command): tickets and commands to any
# terminal, and everything a monitor reads.
user central
topic readwrite pos/v1/#

# Each terminal: its presence (it reads its own, to answer a stale Will),
# heartbeat, status, events and command replies; central's ticket and
# commands, read only.
pattern readwrite pos/v1/%u/state
pattern write pos/v1/%u/heartbeat
pattern write pos/v1/%u/status
pattern write pos/v1/%u/events
pattern write pos/v1/%u/cmd/reply
pattern read pos/v1/%u/ticket
pattern read pos/v1/%u/cmd
`

// MosquittoConfig selects the security features of a test broker. The zero
// value is StartMosquitto's anonymous plain broker.
type MosquittoConfig struct {
	// Users maps user name to password; when set, anonymous logins are refused
	// and the password file is written with mosquitto_passwd -b.
	Users map[string]string
	// ACL is the body of an ACL file (FleetACL); "" means no ACL.
	ACL string
	// TLS adds a TLS listener with a CA and a server certificate made for this
	// broker; ClientCerts names the client certificates to make (CN = name).
	TLS bool
	// RequireClientCert makes the TLS listener refuse clients without a
	// certificate signed by the test CA.
	RequireClientCert bool
	ClientCerts       []string
	// NoPlain leaves out the plain TCP listener: the broker speaks TLS only.
	NoPlain bool
	// Extra is appended to the configuration as is (global options such as
	// max_queued_messages, before the listeners). It must leave mosquitto's
	// notice log on stderr: its "running" line is the readiness signal.
	Extra string
}

// PKI is the certificate material a test broker was started with, as PEM files.
type PKI struct {
	CAFile     string
	ServerCert string
	ServerKey  string
	// Clients maps a client name to its certificate and key files.
	Clients map[string][2]string
}

// StartMosquittoWith starts mosquitto with the features of c on loopback
// ports reserved for the test (ReservePort) and returns once every listener
// accepts connections. It is stopped when the test ends.
func StartMosquittoWith(t testing.TB, c MosquittoConfig) *Mosquitto {
	t.Helper()
	bin := Need(t, "mosquitto")
	dir := t.TempDir()
	m := &Mosquitto{bin: bin, dir: dir}
	var body strings.Builder
	// per_listener_settings false: one password file and ACL for every listener.
	body.WriteString("per_listener_settings false\nset_tcp_nodelay true\npersistence false\n")
	if os.Geteuid() == 0 {
		// As root mosquitto drops to the mosquitto user, which cannot read a
		// config in a root-owned temp dir.
		body.WriteString("user root\n")
	}
	if c.Extra != "" {
		body.WriteString(strings.TrimSpace(c.Extra) + "\n")
	}
	if len(c.Users) > 0 {
		pw := Need(t, "mosquitto_passwd")
		file := filepath.Join(dir, "passwd")
		names := make([]string, 0, len(c.Users))
		for u := range c.Users {
			names = append(names, u)
		}
		sort.Strings(names)
		for i, u := range names {
			args := []string{"-b", file, u, c.Users[u]}
			if i == 0 {
				args = append([]string{"-c"}, args...)
			}
			if out, err := exec.Command(pw, args...).CombinedOutput(); err != nil {
				t.Fatalf("mosquitto_passwd %s: %v: %s", u, err, out)
			}
		}
		fmt.Fprintf(&body, "allow_anonymous false\npassword_file %s\n", file)
	} else {
		body.WriteString("allow_anonymous true\n")
	}
	if c.ACL != "" {
		file := filepath.Join(dir, "acl")
		if err := os.WriteFile(file, []byte(c.ACL), 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&body, "acl_file %s\n", file)
	}
	if c.NoPlain && !c.TLS {
		t.Fatal("testbench: a broker needs at least one listener")
	}
	var tlsListener string
	if c.TLS {
		pki, err := MakePKI(filepath.Join(dir, "pki"), c.ClientCerts...)
		if err != nil {
			t.Fatal(err)
		}
		m.PKI = pki
		tlsListener = fmt.Sprintf("cafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate %t\n",
			pki.CAFile, pki.ServerCert, pki.ServerKey, c.RequireClientCert)
	}
	m.conf = filepath.Join(dir, "mosquitto.conf")
	// The ports are reserved, so no other process can take them; should
	// mosquitto still find one in use (some program binding a port by number
	// with SO_REUSEADDR), it is started again on new ones, a bounded number
	// of times.
	const attempts = 3
	for attempt := 1; ; attempt++ {
		conf := body.String()
		if !c.NoPlain {
			m.Port = ReservePort(t)
			m.URL = fmt.Sprintf("tcp://127.0.0.1:%d", m.Port)
			conf += fmt.Sprintf("listener %d 127.0.0.1\n", m.Port)
		}
		if c.TLS {
			m.TLSPort = ReservePort(t)
			m.TLSURL = fmt.Sprintf("ssl://127.0.0.1:%d", m.TLSPort)
			conf += fmt.Sprintf("listener %d 127.0.0.1\n", m.TLSPort) + tlsListener
		}
		if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		log, ok := m.start(t)
		if ok {
			break
		}
		if attempt == attempts {
			t.Fatalf("mosquitto found its port in use %d times: %s", attempts, log)
		}
		t.Logf("mosquitto: port in use, starting it on new ports: %s", log)
	}
	t.Cleanup(m.Stop)
	return m
}

// addrInUse is what mosquitto logs before it exits when a listener's port is
// taken.
const addrInUse = "Address already in use"

// start runs the configured broker and waits until its listeners accept. It
// returns false, with mosquitto's log, when mosquitto exited because a port
// was in use; any other failure fails the test.
func (m *Mosquitto) start(t testing.TB) (log string, ok bool) {
	t.Helper()
	cmd := exec.Command(m.bin, "-c", m.conf)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	done := make(chan struct{})
	m.mu.Lock()
	m.cmd, m.done = cmd, done
	m.mu.Unlock()
	var out lockedLog
	// running is closed when mosquitto says it runs: every listener is bound
	// by then (it exits instead when one cannot be).
	running := make(chan struct{})
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			out.add(sc.Text())
			if !seen && strings.Contains(sc.Text(), " running") {
				seen = true
				close(running)
			}
		}
	}()
	go func() { <-logDone; cmd.Wait(); close(done) }()
	exited := func() (string, bool) {
		if strings.Contains(out.String(), addrInUse) {
			return out.String(), false
		}
		t.Fatalf("mosquitto exited: %s", out.String())
		return "", false
	}
	select {
	case <-running:
	case <-done:
		return exited()
	case <-time.After(10 * time.Second):
		m.Stop()
		t.Fatalf("mosquitto not running after 10 s: %s", out.String())
	}
	for _, port := range []int{m.Port, m.TLSPort} {
		if port == 0 {
			continue
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-done:
				return exited()
			default:
			}
			if time.Now().After(deadline) {
				m.Stop()
				t.Fatalf("mosquitto not listening on %d after 10 s: %s", port, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return "", true
}

// Restart starts a stopped broker again with the same configuration and ports
// (an outage ends); the ports stayed reserved while it was down. Retained
// messages are gone: the test brokers keep nothing.
func (m *Mosquitto) Restart(t testing.TB) {
	t.Helper()
	m.Stop()
	if log, ok := m.start(t); !ok {
		t.Fatalf("mosquitto restart: its reserved port was taken: %s", log)
	}
}

type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) add(s string) {
	l.mu.Lock()
	l.b.WriteString(s + "\n")
	l.mu.Unlock()
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// MakePKI writes a fresh CA, a server certificate for 127.0.0.1 and localhost,
// and one client certificate per name (CN = name) under dir, all ECDSA P-256
// and valid for a day. The keys are test keys: made per run, never committed.
func MakePKI(dir string, clients ...string) (*PKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "posagent test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	p := &PKI{CAFile: filepath.Join(dir, "ca.pem"), Clients: map[string][2]string{}}
	if err := writePEM(p.CAFile, "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	issue := func(serial int64, name string, server bool) (string, string, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", "", err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		if server {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
			tmpl.DNSNames = []string{"localhost"}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return "", "", err
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return "", "", err
		}
		cert, keyFile := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
		if err := writePEM(cert, "CERTIFICATE", der); err != nil {
			return "", "", err
		}
		return cert, keyFile, writePEM(keyFile, "EC PRIVATE KEY", kder)
	}
	if p.ServerCert, p.ServerKey, err = issue(2, "server", true); err != nil {
		return nil, err
	}
	for i, name := range clients {
		c, k, err := issue(int64(10+i), name, false)
		if err != nil {
			return nil, err
		}
		p.Clients[name] = [2]string{c, k}
	}
	return p, nil
}

// CAPool is a certificate pool holding the test CA.
func (p *PKI) CAPool(t testing.TB) *x509.CertPool {
	t.Helper()
	ca, err := os.ReadFile(p.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("testbench: %s holds no certificate", p.CAFile)
	}
	return pool
}

// ServerCertificate is the server's certificate and key, loaded.
func (p *PKI) ServerCertificate(t testing.TB) tls.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(p.ServerCert, p.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// ClientTLS is a paho TLS configuration that trusts the test CA and, when
// name is not "", presents that client's certificate.
func (p *PKI) ClientTLS(t testing.TB, name string) *tls.Config {
	t.Helper()
	cfg := &tls.Config{RootCAs: p.CAPool(t), MinVersion: tls.VersionTLS12}
	if name != "" {
		c, ok := p.Clients[name]
		if !ok {
			t.Fatalf("testbench: no client certificate %q", name)
		}
		pair, err := tls.LoadX509KeyPair(c[0], c[1])
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
