// Package hostsim is an acquirer host simulator speaking the UnionPay POS
// dialect of package acquirer over TCP: sign-on with its own TMK and fresh
// working keys, MAC checking both ways, sale/void/reversal against a durable
// ledger, response codes by rule, and fault injection per message kind so
// that the terminal's reversal discipline can be tested against a real peer.
// It also plays the issuer for what a sale carries about the card: swiped
// tracks are decrypted and matched to field 2, PIN blocks decrypted and
// checked as format 0, and chip ARQCs verified against cardsim's profile keys
// (Config.Cards); its declines are booked on the ledger as such.
package hostsim

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/provisioning/pan"
)

// Message kinds, the keys of fault injection. Those the ledger books are
// its kinds.
const (
	KindSignOn   = ledger.KindSignOn
	KindEcho     = "echo"
	KindSignOff  = "sign-off"
	KindSale     = ledger.KindSale
	KindVoid     = ledger.KindVoid
	KindReversal = ledger.KindReversal
)

// Action is what a fault does to the answer. The request is always
// processed (and the ledger written) first: the interesting failure is the
// host that did the work and whose answer got lost.
type Action string

// Fault actions.
const (
	Delay     Action = "delay"     // answer after Fault.Delay
	NoAnswer  Action = "no-answer" // keep the connection open, never answer
	CloseMid  Action = "close-mid" // send half the answer, then close
	Garbage   Action = "garbage"   // a well-framed message that does not parse
	WrongMAC  Action = "wrong-mac" // the answer with field 64 corrupted
	Duplicate Action = "duplicate" // the answer twice
)

// Actions lists every fault action, for tests and flag help.
var Actions = []Action{Delay, NoAnswer, CloseMid, Garbage, WrongMAC, Duplicate}

// Fault is injected into the answers to one message kind.
type Fault struct {
	Action Action
	Delay  time.Duration // for Delay
	// Times is how many answers it applies to; 0 means once, negative
	// means until cleared.
	Times int
}

// Config is the simulated host.
type Config struct {
	// TMK is the terminal master key the working keys are sent under.
	TMK acquirer.Key
	// MAC and MACFullKey must match the terminal's acquirer.Config.
	MAC        acquirer.MACAlgorithm
	MACFullKey bool
	// MIDs are the known merchants; others get 03. Empty means every MID.
	MIDs []string
	// Batch is the batch number sign-on hands out; zero means "000001".
	Batch string
	// Declines maps the last two digits of an amount to a response code;
	// nil means {"51": "51"} (insufficient funds).
	Declines map[string]string
	// Ledger records approvals and reversals; required.
	Ledger *ledger.Ledger
	// Rand generates keys and authorisation codes; nil means crypto/rand.
	Rand io.Reader
	// Now stamps answers (fields 12/13, in Location) and ledger lines.
	Now      func() time.Time
	Location *time.Location
	// Log gets one line per message: kind, TID, STAN, response code.
	Log *slog.Logger
	// OnLedger, when set, is called with every entry once it is on disk, so
	// a test can wait for "the host has approved it" without polling. It
	// runs under the host's lock and must not block.
	OnLedger func(ledger.Entry)

	// Cards are the issuer's card keys by PAN (LoadCards reads them from
	// cardsim profiles). When set, every chip sale's ARQC (field 55) is
	// verified: a cryptogram that does not verify is declined with
	// ARQCDeclineRC, and a chip card whose PAN has no key with 14 (invalid
	// card number: this issuer has no such account). When nil, field 55 is
	// not checked at all, as for tests of the message layer with made-up IC
	// data. Swiped sales have no cryptogram and are not affected.
	Cards map[string]CardKey
	// ARQCDeclineRC answers a chip sale whose ARQC does not verify; zero
	// means "05" (do not honour). The public UnionPay response-code tables
	// give no code of their own for a failed ARQC, and issuers answer the
	// generic decline; make it what the acquirer under test uses.
	ARQCDeclineRC string
	// TLS, when set, makes Listen serve TLS with it (the acquirer's front
	// end a terminal reaches over a public network).
	TLS *tls.Config

	// PINs are cardholder PINs by PAN. A sale with a PIN block (field 52) is
	// always decrypted under the session PIK and checked as ISO 9564 format 0
	// against field 2 (99, PIN format error, when it is not); when the PAN is
	// listed here the PIN must also match (55, incorrect PIN).
	PINs map[string]string
}

type txnKey struct {
	tid, batch string
	stan       int
}

type txn struct {
	e        ledger.Entry
	reversed bool
	voidedBy int // STAN of the approved, unreversed void of a sale
	// panMAC identifies the full PAN of the original for the reversal's
	// field 2 check without keeping the PAN: HMAC-SHA256 under a key that
	// lives only in this process. After a restart the ledger's masked PAN is
	// all there is to compare.
	panMAC []byte
}

type session struct {
	mode acquirer.KeyMode
	keys acquirer.WorkingKeys
}

// Server is a running simulator.
type Server struct {
	cfg Config

	mu       sync.Mutex
	sessions map[string]*session // by TID
	txns     map[txnKey]*txn
	faults   map[string][]Fault
	rrn      int
	panKey   []byte // for txn.panMAC

	ln    net.Listener
	done  chan struct{}
	wg    sync.WaitGroup
	conns map[net.Conn]struct{}
	once  sync.Once
}

// New checks cfg and rebuilds the host's state from the ledger.
func New(cfg Config) (*Server, error) {
	if len(cfg.TMK) != 8 && len(cfg.TMK) != 16 && len(cfg.TMK) != 24 {
		return nil, fmt.Errorf("hostsim: TMK: %w", acquirer.ErrKeyLength)
	}
	if cfg.Ledger == nil {
		return nil, errors.New("hostsim: no ledger")
	}
	if cfg.MAC == "" {
		cfg.MAC = acquirer.MACUnionPayECB
	}
	if cfg.Batch == "" {
		cfg.Batch = "000001"
	}
	if cfg.Declines == nil {
		cfg.Declines = map[string]string{"51": "51"}
	}
	if cfg.ARQCDeclineRC == "" {
		cfg.ARQCDeclineRC = "05"
	}
	if len(cfg.ARQCDeclineRC) != 2 {
		return nil, fmt.Errorf("hostsim: ARQC decline code %q is not 2 characters", cfg.ARQCDeclineRC)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Location == nil {
		cfg.Location = time.FixedZone("CST", 8*3600)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &Server{cfg: cfg, sessions: map[string]*session{}, txns: map[txnKey]*txn{},
		faults: map[string][]Fault{}, done: make(chan struct{}), conns: map[net.Conn]struct{}{},
		panKey: make([]byte, 32)}
	if _, err := io.ReadFull(rand.Reader, s.panKey); err != nil {
		return nil, fmt.Errorf("hostsim: %w", err)
	}
	for _, e := range cfg.Ledger.Entries() {
		s.apply(e)
		s.rrn = e.Seq
	}
	return s, nil
}

// apply replays one ledger entry into the in-memory state.
func (s *Server) apply(e ledger.Entry) {
	k := txnKey{e.TID, e.Batch, e.STAN}
	switch e.Event {
	case ledger.EventApproved, ledger.EventVoided:
		s.txns[k] = &txn{e: e}
		if e.Kind == KindVoid {
			if sale := s.txns[txnKey{e.TID, e.Batch, e.OrigSTAN}]; sale != nil {
				sale.voidedBy = e.STAN
			}
		}
	case ledger.EventDeclined:
		// Nothing to undo or void; the line is there for the record.
	case ledger.EventReversed:
		t := s.txns[k]
		if t == nil {
			return
		}
		t.reversed = true
		if t.e.Kind == KindVoid {
			if sale := s.txns[txnKey{e.TID, e.Batch, t.e.OrigSTAN}]; sale != nil && sale.voidedBy == e.STAN {
				sale.voidedBy = 0
			}
		}
	}
}

// Inject queues f for the answers to kind (KindSale, ...).
func (s *Server) Inject(kind string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[kind] = append(s.faults[kind], f)
}

// ClearFaults drops every queued fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string][]Fault{}
}

func (s *Server) takeFault(kind string) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[kind]
	if len(q) == 0 {
		return Fault{}
	}
	f := q[0]
	switch {
	case f.Times < 0:
	case f.Times <= 1:
		s.faults[kind] = q[1:]
	default:
		q[0].Times--
	}
	return f
}

// Serve accepts terminals on l until Close. It returns nil after Close.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	s.ln = l
	s.mu.Unlock()
	for {
		c, err := l.Accept()
		if err != nil {
			select {
			case <-s.done:
				return nil
			default:
			}
			return fmt.Errorf("hostsim: accept: %w", err)
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Listen starts serving on addr (e.g. "127.0.0.1:0") in the background and
// returns the bound address.
func (s *Server) Listen(addr string) (net.Addr, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("hostsim: %w", err)
	}
	if s.cfg.TLS != nil {
		l = tls.NewListener(l, s.cfg.TLS)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.Serve(l); err != nil {
			s.cfg.Log.Error("serve", "err", err)
		}
	}()
	return l.Addr(), nil
}

// Close stops accepting, drops every connection (a held no-answer included)
// and waits for the handlers.
func (s *Server) Close() error {
	s.once.Do(func() {
		close(s.done)
		s.mu.Lock()
		if s.ln != nil {
			s.ln.Close()
		}
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	s.wg.Wait()
	return nil
}

func (s *Server) serveConn(c net.Conn) {
	defer c.Close()
	for {
		req, err := acquirer.ReadFrame(c, 0)
		if err != nil {
			return
		}
		kind, resp := s.handle(req)
		if resp == nil {
			// Nothing we can answer (a message that does not parse).
			return
		}
		if !s.deliver(c, kind, req, resp) {
			return
		}
	}
}

// deliver sends resp as the fault for kind says; false closes the connection.
func (s *Server) deliver(c net.Conn, kind string, req acquirer.Frame, resp []byte) bool {
	f := s.takeFault(kind)
	out := acquirer.Frame{TPDU: req.TPDU.Swap(), Header: req.Header, Message: resp}
	write := func(fr acquirer.Frame) bool { return acquirer.WriteFrame(c, fr) == nil }
	if f.Action != "" {
		s.cfg.Log.Info("fault", "kind", kind, "action", f.Action)
	}
	switch f.Action {
	case Delay:
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.done:
			return false
		}
		return write(out)
	case NoAnswer:
		// Hold the line until the terminal gives up (or we shut down).
		_, _ = io.Copy(io.Discard, c)
		return false
	case CloseMid:
		b, err := out.Encode()
		if err == nil {
			_, _ = c.Write(b[:len(b)/2])
		}
		return false
	case Garbage:
		out.Message = []byte{0x02, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x99}
		return write(out)
	case WrongMAC:
		out.Message = append([]byte(nil), resp...)
		out.Message[len(out.Message)-1] ^= 0x01
		return write(out)
	case Duplicate:
		for range 2 {
			if !write(out) {
				return false
			}
		}
		return true
	}
	return write(out)
}

// handle processes one request and returns its kind and the packed answer
// (nil when there is nothing to answer).
func (s *Server) handle(req acquirer.Frame) (string, []byte) {
	m, err := acquirer.Unpack(req.Message)
	if err != nil {
		s.cfg.Log.Warn("bad request", "err", err)
		return "", nil
	}
	mti, _ := m.GetMTI()
	tid, mid := acquirer.Get(m, 41), acquirer.Get(m, 42)
	f60, _ := acquirer.ParseField60(acquirer.Get(m, 60))
	kind := ""
	switch {
	case mti == "0800":
		kind = KindSignOn
	case mti == "0820" && f60.Code == "002":
		kind = KindSignOff
	case mti == "0820":
		kind = KindEcho
	case mti == "0200" && acquirer.Get(m, 3) == "000000":
		kind = KindSale
	case mti == "0200" && acquirer.Get(m, 3) == "200000":
		kind = KindVoid
	case mti == "0400":
		kind = KindReversal
	default:
		s.cfg.Log.Warn("unsupported request", "mti", mti)
		return "", nil
	}
	resp := acquirer.NewMessage(respMTI(mti))
	for _, id := range []int{3, 4, 11, 25, 41, 42, 49, 60} {
		if v := acquirer.Get(m, id); v != "" {
			_ = acquirer.Set(resp, id, v)
		}
	}
	now := s.cfg.Now().In(s.cfg.Location)
	_ = acquirer.Set(resp, 12, now.Format("150405"))
	_ = acquirer.Set(resp, 13, now.Format("0102"))

	s.mu.Lock()
	defer s.mu.Unlock()
	var rc string
	var mak acquirer.Key
	switch kind {
	case KindSignOn:
		rc = s.signOn(m, resp, f60)
	case KindEcho:
		rc = "00"
	case KindSignOff:
		delete(s.sessions, tid)
		rc = "00"
	default:
		sess := s.sessions[tid]
		if sess == nil {
			rc = "A0" // no keys: the MAC cannot be checked
			break
		}
		k := acquirer.MACKey(sess.keys.MAK, s.cfg.MACFullKey)
		if err := acquirer.CheckMAC(m, req.Message, s.cfg.MAC, k); err != nil {
			rc = "A0" // and the answer goes without a MAC: the key is in doubt
			break
		}
		mak = k
		if !s.knownMID(mid) {
			rc = "03"
			break
		}
		switch kind {
		case KindSale:
			rc = s.sale(m, resp, now, f60, sess)
		case KindVoid:
			rc = s.void(m, resp, now, f60)
		case KindReversal:
			rc = s.reverse(m, now, f60)
		}
	}
	_ = acquirer.Set(resp, 39, rc)
	s.cfg.Log.Info("host", "kind", kind, "tid", tid, "stan", acquirer.Get(m, 11), "rc", rc)
	var out []byte
	if mak != nil {
		out, err = acquirer.PackMAC(resp, s.cfg.MAC, mak)
	} else {
		out, err = acquirer.Pack(resp)
	}
	if err != nil {
		s.cfg.Log.Error("pack answer", "kind", kind, "err", err)
		return kind, nil
	}
	return kind, out
}

func respMTI(mti string) string {
	b := []byte(mti)
	b[2]++
	return string(b)
}

func (s *Server) knownMID(mid string) bool {
	if len(s.cfg.MIDs) == 0 {
		return true
	}
	for _, m := range s.cfg.MIDs {
		if m == mid {
			return true
		}
	}
	return false
}

func (s *Server) signOn(m, resp *iso8583.Message, f60 acquirer.Field60) string {
	if !s.knownMID(acquirer.Get(m, 42)) {
		return "03"
	}
	mode := acquirer.KeyMode(f60.Code)
	n := 16
	switch mode {
	case acquirer.SingleDES:
		n = 8
	case acquirer.DoubleDES:
	default:
		return "12" // invalid transaction
	}
	var wk acquirer.WorkingKeys
	for _, k := range []*acquirer.Key{&wk.PIK, &wk.MAK, &wk.TDK} {
		*k = make(acquirer.Key, n)
		if _, err := io.ReadFull(s.cfg.Rand, *k); err != nil {
			return "96"
		}
	}
	if mode == acquirer.SingleDES {
		wk.TDK = nil
	}
	f62, err := acquirer.EncryptWorkingKeys(s.cfg.TMK, mode, wk)
	if err != nil {
		return "96"
	}
	_ = acquirer.SetBytes(resp, 62, f62)
	_ = acquirer.Set(resp, 60, acquirer.Field60{Type: "00", Batch: s.cfg.Batch, Code: string(mode)}.String())
	s.sessions[acquirer.Get(m, 41)] = &session{mode: mode, keys: wk}
	return "00"
}

func (s *Server) nextRRN(now time.Time) string {
	s.rrn++
	return now.Format("150405") + fmt.Sprintf("%06d", s.rrn%1000000)
}

func (s *Server) authCode() string {
	var b [3]byte
	_, _ = io.ReadFull(s.cfg.Rand, b[:])
	return fmt.Sprintf("%06d", (int(b[0])<<16|int(b[1])<<8|int(b[2]))%1000000)
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

func (s *Server) sale(m, resp *iso8583.Message, now time.Time, f60 acquirer.Field60, sess *session) string {
	amount := acquirer.Get(m, 4)
	if len(amount) != 12 {
		return "13"
	}
	k := txnKey{acquirer.Get(m, 41), f60.Batch, atoi(acquirer.Get(m, 11))}
	if _, dup := s.txns[k]; dup {
		return "94" // duplicate transmission: the STAN was used in this batch
	}
	card, rc := s.checkCard(m, sess)
	e := ledger.Entry{Time: now.UTC(), Event: ledger.EventApproved, Kind: KindSale, TID: k.tid, MID: acquirer.Get(m, 42),
		Batch: k.batch, STAN: k.stan, Amount: int64(atoi(amount)), Card: pan.Mask(card), Entry: entryOf(m, f60)}
	if rc == "00" {
		if d, ok := s.cfg.Declines[amount[10:]]; ok {
			rc = d
		}
	}
	if rc != "00" {
		e.Event, e.RC = ledger.EventDeclined, rc
		if _, err := s.append(e); err != nil {
			return "96"
		}
		return rc
	}
	e.RRN, e.AuthCode = s.nextRRN(now), s.authCode()
	rc = s.record(e, resp)
	if rc == "00" {
		s.txns[k].panMAC = s.panMAC(card)
	}
	return rc
}

// entryOf names how the card was read, for the ledger: field 22's first two
// digits, and 60.5 for a fallback.
func entryOf(m *iso8583.Message, f60 acquirer.Field60) string {
	f22 := acquirer.Get(m, 22)
	switch {
	case strings.HasPrefix(f22, "05"):
		return "chip"
	case strings.HasPrefix(f22, "07"):
		return "contactless"
	case strings.HasPrefix(f22, "02") && f60.Fallback == "2":
		return "fallback"
	case strings.HasPrefix(f22, "02"):
		return "swipe"
	case strings.HasPrefix(f22, "01"):
		return "keyed"
	}
	return ""
}

// checkCard plays the issuer's part of a sale: it decrypts and checks the
// tracks of a swipe against field 2, the PIN block against the PAN, and the
// ARQC of a chip card against its key. It returns the full PAN (from field
// 2, or the track when field 2 is absent) and a response code, "00" when all
// is well. Nothing it handles is logged or kept.
func (s *Server) checkCard(m *iso8583.Message, sess *session) (string, string) {
	p := acquirer.Get(m, 2)
	f53 := acquirer.Get(m, 53)
	trackEncrypted := len(f53) >= 3 && f53[2] == '1'
	if strings.HasPrefix(acquirer.Get(m, 22), "02") {
		t2 := acquirer.Get(m, 35)
		if t2 == "" {
			return p, "30" // format error: a swipe without track 2
		}
		if trackEncrypted {
			if len(sess.keys.TDK) == 0 {
				return p, "30"
			}
			clear, err := acquirer.DecryptTrack(sess.keys.TDK, t2)
			if err != nil {
				return p, "30"
			}
			t2 = clear
			if t3 := acquirer.Get(m, 36); t3 != "" {
				if _, err := acquirer.DecryptTrack(sess.keys.TDK, t3); err != nil {
					return p, "30"
				}
			}
		}
		tp, _, ok := strings.Cut(t2, "=")
		if !ok {
			return p, "30"
		}
		switch {
		case p == "":
			p = tp
		case tp != p:
			// 14: the PAN of the request does not match the card's.
			s.cfg.Log.Warn("track PAN differs from field 2", "card", pan.Mask(p))
			return p, "14"
		}
	}
	if b := acquirer.GetBytes(m, 52); b != nil {
		if len(sess.keys.PIK) == 0 {
			return p, "99"
		}
		clear, err := acquirer.DecryptECB(sess.keys.PIK, b)
		if err != nil {
			return p, "99"
		}
		pin, err := acquirer.ParsePINBlock(clear, p)
		if err != nil {
			return p, "99" // PIN format error
		}
		if want, ok := s.cfg.PINs[p]; ok && want != pin {
			return p, "55" // incorrect PIN
		}
	}
	if f55 := acquirer.GetBytes(m, 55); f55 != nil && s.cfg.Cards != nil {
		ck, ok := s.cfg.Cards[p]
		if !ok {
			s.cfg.Log.Warn("no key for this chip card", "card", pan.Mask(p))
			return p, "14"
		}
		if !verifyARQC(ck, f55) {
			s.cfg.Log.Warn("ARQC does not verify", "card", pan.Mask(p))
			return p, s.cfg.ARQCDeclineRC
		}
		// An issuer authorises the amount the cryptogram signed (9F02), so a
		// sale whose field 4 says otherwise is declined like a bad ARQC.
		if acquirer.Get(m, 3) == "000000" && !amountSigned(f55, acquirer.Get(m, 4)) {
			s.cfg.Log.Warn("ARQC amount differs from field 4", "card", pan.Mask(p))
			return p, s.cfg.ARQCDeclineRC
		}
	}
	return p, "00"
}

func (s *Server) panMAC(p string) []byte {
	h := hmac.New(sha256.New, s.panKey)
	h.Write([]byte(p))
	return h.Sum(nil)
}

// append writes e to the ledger and replays it into the host's state.
func (s *Server) append(e ledger.Entry) (ledger.Entry, error) {
	e, err := s.cfg.Ledger.Append(e)
	if err != nil {
		s.cfg.Log.Error("ledger", "err", err)
		return e, err
	}
	s.apply(e)
	if s.cfg.OnLedger != nil {
		s.cfg.OnLedger(e)
	}
	return e, nil
}

func (s *Server) record(e ledger.Entry, resp *iso8583.Message) string {
	e, err := s.append(e)
	if err != nil {
		return "96" // system malfunction: nothing approved that is not on disk
	}
	_ = acquirer.Set(resp, 37, e.RRN)
	_ = acquirer.Set(resp, 38, e.AuthCode)
	_ = acquirer.Set(resp, 32, "00010000")
	return "00"
}

func (s *Server) void(m, resp *iso8583.Message, now time.Time, f60 acquirer.Field60) string {
	tid := acquirer.Get(m, 41)
	f61 := acquirer.Get(m, 61)
	if len(f61) < 12 {
		return "30" // format error
	}
	sale := s.txns[txnKey{tid, f61[:6], atoi(f61[6:12])}]
	if sale == nil || sale.e.Kind != KindSale || sale.reversed || sale.e.RRN != acquirer.Get(m, 37) {
		return "25" // original not found
	}
	if sale.voidedBy != 0 {
		return "94"
	}
	if sale.e.Amount != int64(atoi(acquirer.Get(m, 4))) {
		return "64" // original amount incorrect
	}
	k := txnKey{tid, f60.Batch, atoi(acquirer.Get(m, 11))}
	if _, dup := s.txns[k]; dup {
		return "94"
	}
	e := ledger.Entry{Time: now.UTC(), Event: ledger.EventVoided, Kind: KindVoid, TID: tid, MID: acquirer.Get(m, 42),
		Batch: k.batch, STAN: k.stan, Amount: sale.e.Amount, Card: sale.e.Card,
		RRN: s.nextRRN(now), AuthCode: sale.e.AuthCode, OrigSTAN: sale.e.STAN}
	rc := s.record(e, resp)
	if rc == "00" {
		// The void is of the sale's card: its reversal is checked against it.
		s.txns[k].panMAC = sale.panMAC
	}
	return rc
}

// reverse undoes an approved sale or void. A reversal of something never
// approved answers 25; of something already reversed, or of a sale a void
// cancelled, 00 again without a ledger line, because the terminal resends
// until it hears an answer and the charge is gone either way.
// Field 2, when present, must be the original's PAN (14 otherwise): the
// full PAN while this process remembers it, the masked one after a restart.
func (s *Server) reverse(m *iso8583.Message, now time.Time, f60 acquirer.Field60) string {
	k := txnKey{acquirer.Get(m, 41), f60.Batch, atoi(acquirer.Get(m, 11))}
	t := s.txns[k]
	if t == nil {
		return "25"
	}
	if p := acquirer.Get(m, 2); p != "" {
		same := pan.Mask(p) == t.e.Card
		if t.panMAC != nil {
			same = hmac.Equal(s.panMAC(p), t.panMAC)
		}
		if !same {
			return "14"
		}
	}
	if t.reversed {
		return "00"
	}
	if t.voidedBy != 0 {
		// A void cancelled the sale already: nothing is left to undo, and
		// undoing it twice would credit the card twice.
		return "00"
	}
	if t.e.Amount != int64(atoi(acquirer.Get(m, 4))) {
		return "64"
	}
	e := t.e
	e.Time, e.Event = now.UTC(), ledger.EventReversed
	if _, err := s.append(e); err != nil {
		return "96"
	}
	return "00"
}

// CancelByHand is the acquirer's back office cancelling a message a
// terminal could not reverse (the operator asks for it when the terminal
// gave up): the ledger books it reversed, marked by hand. It reports false
// when the host has no such message approved and unreversed — nothing to
// cancel, which is an answer too.
func (s *Server) CancelByHand(tid, batch string, stan int) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.txns[txnKey{tid, batch, stan}]
	if t == nil || t.reversed {
		return false, nil
	}
	e := t.e
	e.Time, e.Event, e.ByHand = s.cfg.Now().UTC(), ledger.EventReversed, true
	if _, err := s.append(e); err != nil {
		return false, err
	}
	return true, nil
}

// ParseFault reads "kind=action[:delay][*times]" (e.g. "sale=no-answer",
// "void=delay:2s*3", "sale=wrong-mac*-1") as the command line gives it.
func ParseFault(s string) (string, Fault, error) {
	kind, rest, ok := strings.Cut(s, "=")
	if !ok {
		return "", Fault{}, fmt.Errorf("hostsim: fault %q: want kind=action", s)
	}
	switch kind {
	case KindSignOn, KindSignOff, KindEcho, KindSale, KindVoid, KindReversal:
	default:
		return "", Fault{}, fmt.Errorf("hostsim: fault %q: unknown kind", s)
	}
	var f Fault
	if a, n, ok := strings.Cut(rest, "*"); ok {
		t, err := strconv.Atoi(n)
		if err != nil {
			return "", Fault{}, fmt.Errorf("hostsim: fault %q: times: %w", s, err)
		}
		f.Times, rest = t, a
	}
	a, d, hasDelay := strings.Cut(rest, ":")
	f.Action = Action(a)
	known := false
	for _, x := range Actions {
		known = known || x == f.Action
	}
	if !known {
		return "", Fault{}, fmt.Errorf("hostsim: fault %q: unknown action", s)
	}
	if hasDelay {
		dd, err := time.ParseDuration(d)
		if err != nil {
			return "", Fault{}, fmt.Errorf("hostsim: fault %q: delay: %w", s, err)
		}
		f.Delay = dd
	}
	return kind, f, nil
}
