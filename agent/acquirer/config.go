package acquirer

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"
)

// Config is one acquirer as the client talks to it. Zero values take the
// defaults documented per field.
type Config struct {
	// Addr is the host's TCP address, "host:port".
	Addr string
	// TPDU and Header frame every request; zero means DefaultTPDU and
	// DefaultHeader.
	TPDU   TPDU
	Header Header
	// TestModeSale sets the header's test-mode nibble on the installer's test
	// sale (SaleRequest.Test): some acquirers want it for a first sale.
	TestModeSale bool
	// Profile is the acquirer's codes and layouts; zero means
	// DefaultProfile().
	Profile Profile
	// KeyMode is the working keys sign-on asks for; zero means the
	// profile's. The 60.3 code that asks for them is the profile's
	// (Codes.SignOn).
	KeyMode KeyMode
	// MAC is the field-64 algorithm; zero means MACUnionPayECB.
	MAC MACAlgorithm
	// MACFullKey runs the MAC with the whole double-length MAK (3DES) instead
	// of its first 8 bytes (DES).
	MACFullKey bool
	// Operator is field 63.1 of sign-on, 3 characters; zero means "01 ".
	Operator string
	// Currency is field 49; zero means "156" (CNY).
	Currency string
	// NoTDK says this acquirer sends no track data key in double-length
	// mode (a 40-byte field 62). Without it a sign-on answer without a TDK
	// is refused: on a link where anyone can cut the TDK off the unMACed
	// 0810, accepting it would send every swiped track in clear.
	NoTDK bool
	// HostTime, when set, is given the host's date and time from every
	// approved sign-on made over an authenticated link (TLS with a pinned
	// CA): only then can nobody on the way have written them, so only then
	// may they advance the terminal's time floor. Nil: not wanted.
	HostTime func(time.Time)
	// TLS, when set, runs every exchange over TLS with it. With RootCAs set
	// (the acquirer's CA pinned) the link is authenticated, and answers are
	// believed even under the forgeable UnionPay ECB MAC.
	TLS *tls.Config
	// ConnectTimeout bounds the TCP connect (default 10 s), ReadTimeout each
	// wait for bytes (default 30 s) and ExchangeTimeout the whole
	// connect-send-receive (default 60 s). The context can only shorten them.
	ConnectTimeout  time.Duration
	ReadTimeout     time.Duration
	ExchangeTimeout time.Duration
	// HostLocation is the zone of the host's fields 12/13; nil means UTC+8
	// (China Standard Time).
	HostLocation *time.Location
	// Now is the terminal clock, used to place the host's MMDD in a year;
	// nil means time.Now.
	Now func() time.Time
	// Dial opens the connection; nil means a net.Dialer. A seam for tests.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TerminalKey is the terminal's RSA key pair a remote TMK download
	// (Profile.RemoteTMK) delivers the TMK under; required by such a
	// profile, unused otherwise.
	TerminalKey TerminalKey
	// Log receives one line per exchange (MTI, STAN, response code, timing),
	// never card data or keys; nil means slog.Default().
	Log *slog.Logger
}

func (c *Config) defaults() {
	if c.TPDU == (TPDU{}) {
		c.TPDU = DefaultTPDU
	}
	if c.Header == (Header{}) {
		c.Header = DefaultHeader
	}
	if c.Profile.Name == "" {
		c.Profile = DefaultProfile()
	}
	if c.KeyMode == "" {
		c.KeyMode = c.Profile.KeyMode
	}
	if c.MAC == "" {
		c.MAC = MACUnionPayECB
	}
	if c.Operator == "" {
		c.Operator = "01 "
	}
	if c.Currency == "" {
		c.Currency = "156"
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 30 * time.Second
	}
	if c.ExchangeTimeout <= 0 {
		c.ExchangeTimeout = 60 * time.Second
	}
	if c.HostLocation == nil {
		c.HostLocation = time.FixedZone("CST", 8*3600)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Dial == nil {
		c.Dial = (&net.Dialer{}).DialContext
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}
