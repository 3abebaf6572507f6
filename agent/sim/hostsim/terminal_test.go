package hostsim_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/agent/sim/ledger"
)

// The install procedure's tests talk to hostsim with a small terminal of
// their own (term): it builds each message from the public formats with the
// shared low-level codec only (fields, framing, DES, MAC) and reads the keys
// out of field 62 by the public layouts itself, so that the simulator is
// checked against the protocol rather than against our terminal client.

const capkDir = "../testca"

// install is one simulator on a loopback port and its ledger.
type install struct {
	t    *testing.T
	srv  *hostsim.Server
	led  *ledger.Ledger
	path string
	addr string
	cfg  func(*hostsim.Config)
}

func newInstall(t *testing.T, cfg func(*hostsim.Config)) *install {
	t.Helper()
	in := &install{t: t, path: filepath.Join(t.TempDir(), "ledger.jsonl"), cfg: cfg}
	in.start()
	return in
}

func (in *install) start() {
	in.t.Helper()
	l, err := ledger.Open(in.path)
	if err != nil {
		in.t.Fatal(err)
	}
	c := hostsim.Config{TMK: key(in.t, tmkHex), MIDs: []string{mid}, Ledger: l, Log: quiet}
	if in.cfg != nil {
		in.cfg(&c)
	}
	srv, err := hostsim.New(c)
	if err != nil {
		in.t.Fatal(err)
	}
	a, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		in.t.Fatal(err)
	}
	in.srv, in.led, in.addr = srv, l, a.String()
	in.t.Cleanup(func() { srv.Close(); l.Close() })
}

// restart is a host restart on the same ledger.
func (in *install) restart() {
	in.t.Helper()
	in.srv.Close()
	in.led.Close()
	in.start()
}

func (in *install) entries(event string) []ledger.Entry {
	var out []ledger.Entry
	for _, e := range in.led.Entries() {
		if e.Event == event {
			out = append(out, e)
		}
	}
	return out
}

// term is the test's terminal.
type term struct {
	t     *testing.T
	in    *install
	tid   string
	batch string
	stan  int
	mak   acquirer.Key // the MAC key of the last sign-on, nil before
	// timeout bounds one exchange; a fault that holds the line costs it.
	timeout time.Duration
}

func (in *install) terminal() *term {
	return &term{t: in.t, in: in, tid: tid, batch: "000001", timeout: 3 * time.Second}
}

func (c *term) next() string { c.stan++; return fmt.Sprintf("%06d", c.stan) }

// reply is one answer: the message, its header and its raw bytes.
type reply struct {
	m      *iso8583.Message
	header acquirer.Header
	raw    []byte
}

func (r reply) rc() string        { return acquirer.Get(r.m, 39) }
func (r reply) demand() byte      { return '0' + r.header[2]&0x0F }
func (r reply) f60() string       { return acquirer.Get(r.m, 60) }
func (r reply) f62() []byte       { return acquirer.GetBytes(r.m, 62) }
func (r reply) get(id int) string { return acquirer.Get(r.m, id) }

// exchange sends m (MACed with the session MAK when mac) and reads the
// answer; an error is a transport failure (no answer, closed, garbage).
func (c *term) exchange(m *iso8583.Message, mac bool) (reply, error) {
	c.t.Helper()
	var body []byte
	var err error
	if mac {
		body, err = acquirer.PackMAC(m, acquirer.MACUnionPayECB, acquirer.MACKey(c.mak, false))
	} else {
		body, err = acquirer.Pack(m)
	}
	if err != nil {
		c.t.Fatal(err)
	}
	conn, err := net.Dial("tcp", c.in.addr)
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(c.timeout))
	if err := acquirer.WriteFrame(conn, acquirer.Frame{TPDU: acquirer.DefaultTPDU, Header: acquirer.DefaultHeader, Message: body}); err != nil {
		return reply{}, err
	}
	f, err := acquirer.ReadFrame(conn, 0)
	if err != nil {
		return reply{}, err
	}
	resp, err := acquirer.Unpack(f.Message)
	if err != nil {
		return reply{}, err
	}
	return reply{m: resp, header: f.Header, raw: f.Message}, nil
}

func (c *term) must(m *iso8583.Message, mac bool) reply {
	c.t.Helper()
	r, err := c.exchange(m, mac)
	if err != nil {
		c.t.Fatalf("exchange: %v", err)
	}
	return r
}

// msg builds a message of the terminal with the given fields.
func (c *term) msg(mti string, fields map[int]string) *iso8583.Message {
	c.t.Helper()
	m := acquirer.NewMessage(mti)
	all := map[int]string{41: c.tid, 42: mid}
	for id, v := range fields {
		all[id] = v
	}
	for id, v := range all {
		if err := acquirer.Set(m, id, v); err != nil {
			c.t.Fatalf("test data: field %d: %v", id, err)
		}
	}
	return m
}

// admin is a management message (60 = "00", the batch and code) with field
// 62, when given, and the extra fields.
func (c *term) admin(mti, code string, f62 []byte, extra map[int]string) *iso8583.Message {
	c.t.Helper()
	fields := map[int]string{11: c.next(), 60: "00" + c.batch + code}
	for id, v := range extra {
		fields[id] = v
	}
	m := c.msg(mti, fields)
	if f62 != nil {
		if err := acquirer.SetBytes(m, 62, f62); err != nil {
			c.t.Fatal(err)
		}
	}
	return m
}

func (c *term) adminReply(mti, code string, f62 []byte, extra map[int]string) reply {
	c.t.Helper()
	return c.must(c.admin(mti, code, f62, extra), false)
}

// keys are the working keys a sign-on delivered, in clear.
type keys struct {
	pik, mak, tdk []byte
}

// signOn signs on in mode with the layout the test expects and keeps the MAK.
func (c *term) signOn(mode string, layout hostsim.KeyLayout) (reply, keys) {
	c.t.Helper()
	r := c.adminReply("0800", mode, nil, map[int]string{63: "01 "})
	if r.rc() != "00" {
		c.t.Fatalf("sign-on %s: %s", mode, r.rc())
	}
	k, err := decodeKeys(key(c.t, tmkHex), mode, layout, r.f62())
	if err != nil {
		c.t.Fatalf("sign-on %s/%s: %v", mode, layout, err)
	}
	c.mak = k.mak
	c.batch = r.f60()[2:8]
	return r, k
}

// decodeKeys reads field 62 by the public layouts and checks every check
// value (the first bytes of 8 zero bytes under the clear key).
func decodeKeys(tmk acquirer.Key, mode string, layout hostsim.KeyLayout, f62 []byte) (keys, error) {
	type slot struct{ width, cv int }
	var slots []slot
	var tags bool
	n := 16
	if mode == "001" {
		n = 8
	}
	switch {
	case layout == hostsim.LayoutTagged && n == 16:
		tags, slots = true, []slot{{16, 8}, {16, 8}, {16, 8}}
	default:
		for i := 0; i*(n+4) < len(f62); i++ {
			slots = append(slots, slot{n, 4})
		}
		if len(f62) != len(slots)*(n+4) {
			return keys{}, fmt.Errorf("field 62 of %d bytes is not whole %d-byte slots", len(f62), n+4)
		}
	}
	var clear [][]byte
	off := 0
	for i, s := range slots {
		if tags {
			if off >= len(f62) || f62[off] != byte(i+1) {
				return keys{}, fmt.Errorf("tag %d missing", i+1)
			}
			off++
		}
		if off+s.width+s.cv > len(f62) {
			return keys{}, fmt.Errorf("field 62 short at slot %d", i)
		}
		enc := f62[off : off+s.width]
		// A single-length key in a double-length slot: 8 bytes and 8 zeros
		// (the Centerm app's test before loading the MAK).
		if s.width == 16 && bytes.Equal(enc[8:], make([]byte, 8)) {
			enc = enc[:8]
		}
		k, err := acquirer.DecryptECB(tmk, enc)
		if err != nil {
			return keys{}, err
		}
		cv, _ := acquirer.EncryptECB(k, make([]byte, 8))
		if !bytes.Equal(cv[:s.cv], f62[off+s.width:off+s.width+s.cv]) {
			return keys{}, fmt.Errorf("slot %d: check value does not match", i)
		}
		clear = append(clear, k)
		off += s.width + s.cv
	}
	var k keys
	if tags { // 01 MAK, 02 PIK, 03 TDK
		k.mak, k.pik, k.tdk = clear[0], clear[1], clear[2]
		return k, nil
	}
	k.pik, k.mak = clear[0], clear[1]
	if len(clear) > 2 {
		k.tdk = clear[2]
	}
	return k, nil
}

// sale is a chip sale of amount MACed with the session MAK.
func (c *term) sale(amount int64) reply {
	c.t.Helper()
	return c.saleIn(c.batch, amount)
}

func (c *term) saleIn(batch string, amount int64) reply {
	c.t.Helper()
	m := c.msg("0200", map[int]string{2: card.PAN.Reveal(), 3: "000000", 4: fmt.Sprintf("%012d", amount), 11: c.next(),
		14: "2812", 22: "051", 23: "001", 25: "00", 49: "156", 60: "22" + batch + "00050"})
	return c.must(m, true)
}

func (c *term) void(sale reply) reply {
	c.t.Helper()
	m := c.msg("0200", map[int]string{2: card.PAN.Reveal(), 3: "200000", 4: sale.get(4), 11: c.next(),
		22: "051", 25: "00", 37: sale.get(37), 38: sale.get(38), 49: "156",
		60: "23" + c.batch + "00050", 61: c.batch + sale.get(11)})
	return c.must(m, true)
}

func (c *term) reverse(sale reply) reply {
	c.t.Helper()
	m := c.msg("0400", map[int]string{2: card.PAN.Reveal(), 3: "000000", 4: sale.get(4), 11: sale.get(11),
		22: "051", 25: "00", 39: "98", 49: "156", 60: "22" + c.batch + "00050"})
	return c.must(m, true)
}

// totals is settlement field 48: the domestic side then a foreign side of
// nothing, each with the 0 flag digit a terminal sends.
func totals(debitN int, debit int64, creditN int, credit int64) string {
	return fmt.Sprintf("%012d%03d%012d%03d0", debit, debitN, credit, creditN) + strings.Repeat("0", 30) + "0"
}

func (c *term) settle(f48 string) reply {
	c.t.Helper()
	return c.adminReply("0500", "201", nil, map[int]string{48: f48, 49: "156", 63: "01 "})
}

// batchRecord is one 40-digit magstripe record of a batch upload.
func batchRecord(stan string, p string, amount string) string {
	return "00" + stan + strings.Repeat("0", 20-len(p)) + p + amount
}

func (c *term) batchEnd(code string, n int) reply {
	c.t.Helper()
	return c.adminReply("0320", code, nil, map[int]string{48: fmt.Sprintf("%04d", n)})
}

func (c *term) signOff() reply {
	c.t.Helper()
	return c.adminReply("0820", "002", nil, nil)
}

// query asks for a download list from offset and returns field 62.
func (c *term) query(code string, offset int) reply {
	c.t.Helper()
	return c.adminReply("0820", code, []byte(fmt.Sprintf("1%02d", offset)), nil)
}

func tlv(parts ...any) []byte {
	var b []byte
	for i := 0; i < len(parts); i += 2 {
		b = emv.EncodeTLV(b, emv.Tag(parts[i].(int)), parts[i+1].([]byte))
	}
	return b
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// openssl runs openssl with stdin and returns its stdout, skipping the test
// when it is not installed: it is the independent reference here.
func openssl(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	cmd := exec.Command("openssl", args...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %v: %v", args, err)
	}
	return out
}
