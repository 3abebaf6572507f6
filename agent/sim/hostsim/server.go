// Package hostsim is an acquirer host simulator speaking the UnionPay POS
// dialect over TCP, written from the public protocol rather than from our
// terminal client: what public UnionPay terminal apps expect of a host and
// what public POSP servers answer (the sources are named where each format
// is built). It serves the whole install procedure of a terminal: sign-on in
// every key mode and the key layouts real hosts use, the processing
// requirement of the response header on a schedule, the IC public key, IC
// parameter and terminal parameter downloads, the status upload, settlement
// against its own ledger with batch upload and the batch's advance, sign-off
// — each 60.3 code from a per-acquirer table — and MAC checking both ways,
// sale/void/reversal against a durable ledger, response codes by rule, and
// fault injection per message kind so that the terminal's reversal
// discipline and its handling of a broken download can be tested against a
// real peer.
// It also plays the issuer for what a sale carries about the card: swiped
// tracks are decrypted and matched to field 2, PIN blocks decrypted and
// checked as format 0, and chip ARQCs verified against cardsim's profile keys
// (Config.Cards); its declines are booked on the ledger as such. It takes
// the chip completion's notices — a sale's TC (TC upload, or IC batch upload
// after an unbalanced settlement), checked against the ARQC it approved, and
// the issuer script results (0620) — and keeps them for tests (TCUploads,
// ScriptResults).
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/card/emv"
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

// Answer faults: the host's own answer, well formed and MACed, is wrong.
const (
	// WrongRC answers with Fault.RC (96 when empty) in field 39 instead of
	// the host's, as a host that did the work but says it did not.
	WrongRC Action = "wrong-rc"
	// BrokenF62 cuts the last 5 bytes off field 62 (a TLV whose length
	// claims more than is there, a key layout of the wrong length); an
	// answer without field 62 gets 3 bytes of garbage in one.
	BrokenF62 Action = "broken-62"
	// WrongCV flips the last byte of field 62: in a TMK download's answer
	// that is the TMK's check value, which then matches no key.
	WrongCV Action = "wrong-cv"
	// BadARPC corrupts the ARPC in 91 of a chip sale's field 55: the card's
	// issuer authentication fails (EXTERNAL AUTHENTICATE 6300, or an AAC
	// from a card that checks 91 in its CDOL2).
	BadARPC Action = "bad-arpc"
	// SendScripts adds issuer scripts to a chip sale's answer:
	// Config.Scripts, or DefaultScripts when there are none.
	SendScripts Action = "scripts"
	// BadScriptMAC sends the scripts of SendScripts with every MAC
	// corrupted: the card answers each command 6988.
	BadScriptMAC Action = "bad-script-mac"
)

// Actions lists the transport fault actions, for tests and flag help.
var Actions = []Action{Delay, NoAnswer, CloseMid, Garbage, WrongMAC, Duplicate}

// AnswerActions lists the answer faults.
var AnswerActions = []Action{WrongRC, BrokenF62, WrongCV, BadARPC, SendScripts, BadScriptMAC}

// Fault is injected into the answers to one message kind.
type Fault struct {
	Action Action
	Delay  time.Duration // for Delay
	// Times is how many answers it applies to; 0 means once, negative
	// means until cleared.
	Times int
	// RC is the response code of WrongRC.
	RC string
}

// Config is the simulated host.
type Config struct {
	// TMK is the terminal master key the working keys are sent under, for
	// every terminal that has not downloaded one of its own.
	TMK acquirer.Key
	// TMKDownload answers the remote TMK download (Codes.TMKKey and
	// TMKActivate, 352 and 351 by default): a fresh TMK per terminal, from
	// Rand, sent under the terminal's RSA key and used for that terminal's
	// sign-ons once activated (tmk.go). Off, those codes are answered 40
	// (function not supported). Downloaded TMKs live in memory only: a
	// restarted host has forgotten them, as a real one would not.
	TMKDownload bool
	// MAC and MACFullKey must match the terminal's acquirer.Config.
	MAC        acquirer.MACAlgorithm
	MACFullKey bool
	// MIDs are the known merchants; others get 03. Empty means every MID.
	MIDs []string
	// Batch is the batch a terminal the host has not seen starts at, which
	// sign-on hands out; zero means "000001". The host moves each terminal
	// on after it settles (Config.BatchAdvance) and answers a financial
	// message or settlement of another batch 77.
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
	// OnAnswer, when set, is called with the kind of every message the host
	// answers (KindSignOn, KindCAPKQuery …), before the answer goes out: the
	// order of what a terminal did, sign-ons and downloads included, which
	// the ledger books only in part. It must not block.
	OnAnswer func(kind string)
	// OnRequest, when set, is called with the kind of every request the
	// host can answer and a getter of its fields as text (field 55 and
	// other binary fields empty), before it is handled: what the terminal
	// sent, for a test to check. It must not block.
	OnRequest func(kind string, field func(id int) string)

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
	// Scripts are issuer script commands sent (MACed for the card) in the
	// answer to every chip sale whose ARQC verified; the SendScripts fault
	// sends them, or DefaultScripts, for one answer.
	Scripts []ScriptCommand
	// TLS, when set, makes Listen serve TLS with it (the acquirer's front
	// end a terminal reaches over a public network).
	TLS *tls.Config

	// PINs are cardholder PINs by PAN. A sale with a PIN block (field 52) is
	// always decrypted under the session PIK and checked as ISO 9564 format 0
	// against field 2 (99, PIN format error, when it is not); when the PAN is
	// listed here the PIN must also match (55, incorrect PIN).
	PINs map[string]string

	// Codes is the acquirer's 60.3 code table; zero means TableUnionPay.
	Codes CodeTable
	// KeyLayout is how sign-on delivers the working keys; zero means
	// LayoutStandard. DESWithTDK adds a TDK to single-DES (001) answers, as
	// some hosts do (the Centerm app reads PIK, MAK and TDK of 12 bytes each
	// when it encrypts tracks).
	KeyLayout  KeyLayout
	DESWithTDK bool
	// Demands is the schedule of processing requirements (the response
	// header's digit).
	Demands []Demand
	// CAPKs are the CA public keys of the IC public key download; nil means
	// DefaultCAPKs (agent/sim/testca's TEST-ONLY keys). NoCAPKs is a host
	// that has none to offer: its query answers "none".
	CAPKs   []CAPK
	NoCAPKs bool
	// AIDs are the IC parameters; nil means DefaultAIDs.
	AIDs []AID
	// Params are the terminal parameters; nil means DefaultParams (in the
	// code table's widths).
	Params []Param
	// CAPKPage and AIDPage are how many items one query answer lists at
	// most; zero means 5 keys (chinaljp/posp PubKeyInfo) and 30 AIDs (its
	// AIDList). An answer also stops where field 62 is full.
	CAPKPage, AIDPage int
	// LastPageFlag is field 62's first byte on the last answer of a query
	// that took several: '3' (chinaljp/posp, the default) or '1'
	// (ConardLKL/posp_server).
	LastPageFlag byte
	// AppVersionTag is the tag of the application version in the IC
	// parameters: 0x9F08 (the default; the public POSPs and apps) or 0x9F09
	// (the POS specification, PROTOCOLS.md).
	AppVersionTag emv.Tag
	// ICTags is ICTagsPOSP (the default, 16 tags) or ICTagsSpec (12).
	ICTags string
	// ExpiryFormat of DF05: ExpiryASCII (the default) or ExpiryBCD.
	ExpiryFormat string
	// Netting is how settlement counts a voided sale: NettingGross (the
	// default) or NettingNet.
	Netting string
	// BatchAdvance is when the host moves a terminal to its next batch:
	// AdvanceAtSettlement (the default) or AdvanceAtSignOff.
	BatchAdvance string
	// Issuer and Acquirer are the institution codes of field 44 in every
	// approved sale's and void's answer, each space padded to 11
	// characters (the Centerm app's BaseField44 reads them so): the
	// slip's 发卡行 and 收单行. Empty means DefaultIssuer and
	// DefaultAcquirer; each is at most 11 printable ASCII characters.
	Issuer, Acquirer string
}

// The institution codes field 44 names by default, in the form of
// UnionPay's 8-digit institution codes (the institution's four digits,
// then its region), as public POSPs put them in their financial answers.
const (
	DefaultIssuer   = "01040000"
	DefaultAcquirer = "48020000"
)

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
	// atc is the ATC (9F36) of a chip sale's ARQC, for its TC upload and
	// script results; like panMAC it lives in memory only (hasATC false
	// after a restart, and the check is skipped).
	atc    uint16
	hasATC bool
	// tc is the TC the host took for the sale, nil before.
	tc *TCRecord
}

type session struct {
	mode string // the sign-on's 60.3
	keys acquirer.WorkingKeys
	// capks and aids are what this session downloaded, for the ledger's count.
	capks, aids map[string]bool
}

// terminal is what the host keeps of one terminal beyond its session: its
// batch, a settlement in progress and the processing requirements pending.
type terminal struct {
	batch  string
	settle *settling
	// received and unmatched count the batch upload records of the current
	// batch (memory only: a restarted host counts from zero).
	received, unmatched int
	demands             []pending
	answered            map[string]int // answers per kind, for Demand.Nth
}

// term returns tid's state, created on first sight at Config.Batch.
func (s *Server) term(tid string) *terminal {
	st := s.terms[tid]
	if st == nil {
		st = &terminal{batch: s.cfg.Batch, answered: map[string]int{}}
		s.terms[tid] = st
	}
	return st
}

// Server is a running simulator.
type Server struct {
	cfg Config

	mu       sync.Mutex
	sessions map[string]*session  // by TID
	terms    map[string]*terminal // by TID
	txns     map[txnKey]*txn
	capks    []CAPK
	aids     []AID
	faults   map[string][]Fault
	rrn      int
	// tmks are the activated downloaded TMKs and pendingTMKs the ones sent
	// and not yet activated, by TID.
	tmks, pendingTMKs map[string]acquirer.Key
	panKey            []byte // for txn.panMAC
	// tcs and scripts are the chip notices taken, by TID (memory only).
	tcs     map[string][]TCRecord
	scripts map[string][]ScriptRecord

	lns   map[net.Listener]struct{} // every listener Close must close
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
	if err := setDefaults(&cfg); err != nil {
		return nil, configError{err}
	}
	if cfg.TMKDownload && cfg.Codes.TMKKey == "" {
		return nil, configError{fmt.Errorf("hostsim: code table %q has no TMK download codes", cfg.Codes.Name)}
	}
	s := &Server{cfg: cfg, sessions: map[string]*session{}, terms: map[string]*terminal{}, txns: map[txnKey]*txn{},
		faults: map[string][]Fault{}, done: make(chan struct{}), conns: map[net.Conn]struct{}{},
		tmks: map[string]acquirer.Key{}, pendingTMKs: map[string]acquirer.Key{},
		tcs: map[string][]TCRecord{}, scripts: map[string][]ScriptRecord{},
		panKey: make([]byte, 32), capks: append([]CAPK(nil), cfg.CAPKs...), aids: append([]AID(nil), cfg.AIDs...)}
	if _, err := io.ReadFull(rand.Reader, s.panKey); err != nil {
		return nil, fmt.Errorf("hostsim: %w", err)
	}
	for _, e := range cfg.Ledger.Entries() {
		s.apply(e)
		s.rrn = e.Seq
	}
	return s, nil
}

// ErrConfig is wrapped by the error of New for an option it refuses, so a
// command can tell bad usage from a failure.
var ErrConfig = errors.New("hostsim: invalid config")

type configError struct{ err error }

func (e configError) Error() string   { return e.err.Error() }
func (e configError) Unwrap() []error { return []error{ErrConfig, e.err} }

// setDefaults fills the install procedure's options and checks them.
func setDefaults(cfg *Config) error {
	if cfg.Codes.Name == "" {
		cfg.Codes = TableUnionPay
	}
	if err := cfg.Codes.check(); err != nil {
		return err
	}
	if cfg.KeyLayout == "" {
		cfg.KeyLayout = LayoutStandard
	}
	if !slices.Contains(KeyLayouts, cfg.KeyLayout) {
		return fmt.Errorf("hostsim: key layout %q is not one of %v", cfg.KeyLayout, KeyLayouts)
	}
	for _, d := range cfg.Demands {
		if err := d.check(); err != nil {
			return err
		}
	}
	switch {
	case cfg.NoCAPKs:
		cfg.CAPKs = nil
	case cfg.CAPKs == nil:
		keys, err := DefaultCAPKs()
		if err != nil {
			return err
		}
		cfg.CAPKs = keys
	}
	for _, k := range cfg.CAPKs {
		if err := k.check(); err != nil {
			return err
		}
	}
	if cfg.AIDs == nil {
		cfg.AIDs = DefaultAIDs()
	}
	for _, a := range cfg.AIDs {
		if err := a.check(); err != nil {
			return err
		}
	}
	if cfg.Params == nil {
		cfg.Params = paramsFor(cfg.Codes)
	}
	if err := checkParams(cfg.Params, cfg.Codes); err != nil {
		return err
	}
	if cfg.CAPKPage == 0 {
		cfg.CAPKPage = 5
	}
	if cfg.AIDPage == 0 {
		cfg.AIDPage = 30
	}
	if cfg.CAPKPage < 1 || cfg.AIDPage < 1 {
		return errors.New("hostsim: page sizes must be at least 1")
	}
	switch cfg.LastPageFlag {
	case 0:
		cfg.LastPageFlag = pageLast
	case pageLast, pageAll:
	default:
		return fmt.Errorf("hostsim: last page flag %q is not '3' or '1'", cfg.LastPageFlag)
	}
	switch cfg.AppVersionTag {
	case 0:
		cfg.AppVersionTag = 0x9F08
	case 0x9F08, 0x9F09:
	default:
		return fmt.Errorf("hostsim: application version tag %s is not 9F08 or 9F09", cfg.AppVersionTag)
	}
	for _, o := range []struct {
		v    *string
		name string
		ok   []string
	}{
		{&cfg.ICTags, "IC tags", []string{ICTagsPOSP, ICTagsSpec}},
		{&cfg.ExpiryFormat, "expiry format", []string{ExpiryASCII, ExpiryBCD}},
		{&cfg.Netting, "netting", []string{NettingGross, NettingNet}},
		{&cfg.BatchAdvance, "batch advance", []string{AdvanceAtSettlement, AdvanceAtSignOff}},
	} {
		if *o.v == "" {
			*o.v = o.ok[0]
		}
		if !slices.Contains(o.ok, *o.v) {
			return fmt.Errorf("hostsim: %s %q is not one of %v", o.name, *o.v, o.ok)
		}
	}
	if len(cfg.Batch) != 6 || strings.Trim(cfg.Batch, "0123456789") != "" {
		return fmt.Errorf("hostsim: batch %q is not 6 digits", cfg.Batch)
	}
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.Acquirer == "" {
		cfg.Acquirer = DefaultAcquirer
	}
	for _, c := range []struct{ name, code string }{{"issuer", cfg.Issuer}, {"acquirer", cfg.Acquirer}} {
		if len(c.code) > 11 || strings.IndexFunc(c.code, func(r rune) bool { return r < 0x20 || r > 0x7E }) >= 0 {
			return fmt.Errorf("hostsim: %s code %q is not at most 11 printable ASCII characters", c.name, c.code)
		}
	}
	return nil
}

// apply replays one ledger entry into the in-memory state.
func (s *Server) apply(e ledger.Entry) {
	k := txnKey{e.TID, e.Batch, e.STAN}
	switch e.Event {
	case ledger.EventSettled:
		r := ledger.Settlement{}
		if e.Settlement != nil {
			r = *e.Settlement
		}
		// The upload counts go on: chip transactions are uploaded before the
		// settlement too.
		s.term(e.TID).settle = &settling{batch: e.Batch, result: r}
	case ledger.EventBatchClosed, ledger.EventSignedOff:
		st := s.term(e.TID)
		if e.NextBatch != "" {
			st.batch, st.settle, st.received, st.unmatched = e.NextBatch, nil, 0, 0
		} else if e.Event == ledger.EventBatchClosed && st.settle != nil {
			st.settle.ended = true
		}
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
	if !s.track(l) {
		return nil
	}
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
	// Tracked before the goroutine runs: a Close right after Listen must
	// find the listener to close, or it would wait for its Accept forever.
	if !s.track(l) {
		return nil, errors.New("hostsim: listen after Close")
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

// track records l for Close; false (l closed) once Close has run.
func (s *Server) track(l net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		l.Close()
		return false
	default:
	}
	if s.lns == nil {
		s.lns = map[net.Listener]struct{}{}
	}
	s.lns[l] = struct{}{}
	return true
}

// Close stops accepting, drops every connection (a held no-answer included)
// and waits for the handlers.
func (s *Server) Close() error {
	s.once.Do(func() {
		close(s.done)
		s.mu.Lock()
		for l := range s.lns {
			l.Close()
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
		a := s.handle(req)
		if a.msg == nil {
			// Nothing we can answer (a message that does not parse).
			return
		}
		if s.cfg.OnAnswer != nil {
			s.cfg.OnAnswer(a.kind)
		}
		f := s.takeFault(a.kind)
		resp, err := s.pack(a, f)
		if err != nil {
			s.cfg.Log.Error("pack answer", "kind", a.kind, "err", err)
			return
		}
		if !s.deliver(c, a, f, req, resp) {
			return
		}
	}
}

// answer is a handled request: the answer to send (nil when there is
// nothing to answer), the MAK to MAC it with (nil: no MAC) and its header.
type answer struct {
	kind   string
	msg    *iso8583.Message
	mak    acquirer.Key
	header acquirer.Header
	// chip is set for a sale whose ARQC the host verified: pack answers
	// it with field 55 (91 and any scripts).
	chip *issuerAuth
}

// pack renders the answer, with the answer faults applied first: the host's
// wrong answer is still one it MACs.
func (s *Server) pack(a answer, f Fault) ([]byte, error) {
	switch f.Action {
	case WrongRC:
		rc := f.RC
		if rc == "" {
			rc = "96"
		}
		_ = acquirer.Set(a.msg, 39, rc)
	case BrokenF62:
		if b := acquirer.GetBytes(a.msg, 62); len(b) > 0 {
			_ = acquirer.SetBytes(a.msg, 62, b[:max(1, len(b)-5)])
		} else {
			_ = acquirer.SetBytes(a.msg, 62, []byte{0xFF, 0x00, 0xFF})
		}
	case WrongCV:
		if b := acquirer.GetBytes(a.msg, 62); len(b) > 0 {
			b = append([]byte(nil), b...)
			b[len(b)-1] ^= 0xFF
			_ = acquirer.SetBytes(a.msg, 62, b)
		}
	}
	if a.chip != nil {
		f55, err := s.answer55(a.chip, acquirer.Get(a.msg, 39), f.Action)
		if err != nil {
			return nil, err
		}
		_ = acquirer.SetBytes(a.msg, 55, f55)
	}
	switch f.Action {
	case WrongMAC:
		if a.mak == nil {
			// An answer that carries no MAC gets one that cannot verify:
			// what a terminal that checks a MAC where none is due meets.
			_ = acquirer.SetBytes(a.msg, 64, []byte("BADMAC!!"))
		}
	}
	if a.mak != nil {
		return acquirer.PackMAC(a.msg, s.cfg.MAC, a.mak)
	}
	return acquirer.Pack(a.msg)
}

// deliver sends resp as the fault for kind says; false closes the connection.
func (s *Server) deliver(c net.Conn, a answer, f Fault, req acquirer.Frame, resp []byte) bool {
	out := acquirer.Frame{TPDU: req.TPDU.Swap(), Header: a.header, Message: resp}
	write := func(fr acquirer.Frame) bool { return acquirer.WriteFrame(c, fr) == nil }
	if f.Action != "" {
		s.cfg.Log.Info("fault", "kind", a.kind, "action", f.Action)
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
		if a.mak != nil {
			out.Message = append([]byte(nil), resp...)
			out.Message[len(out.Message)-1] ^= 0x01
		}
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

// handle processes one request and returns its answer.
func (s *Server) handle(req acquirer.Frame) answer {
	m, err := acquirer.Unpack(req.Message)
	if err != nil {
		s.cfg.Log.Warn("bad request", "err", err)
		return answer{}
	}
	mti, _ := m.GetMTI()
	tid, mid := acquirer.Get(m, 41), acquirer.Get(m, 42)
	f60, f60err := acquirer.ParseField60(acquirer.Get(m, 60))
	kind := s.cfg.Codes.kind(mti, f60.Code, acquirer.Get(m, 3))
	if kind == "" {
		s.cfg.Log.Warn("unsupported request", "mti", mti)
		return answer{}
	}
	if s.cfg.OnRequest != nil {
		s.cfg.OnRequest(kind, func(id int) string { return acquirer.Get(m, id) })
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
	var st *terminal
	if s.knownMID(mid) {
		st = s.term(tid)
	} else {
		// A merchant the host does not know keeps no state (it is answered
		// 03): what anyone can send must not grow the host's memory.
		st = &terminal{batch: s.cfg.Batch, answered: map[string]int{}}
	}
	var rc string
	var mak acquirer.Key
	var chip *issuerAuth
	switch kind {
	case KindSignOn:
		rc = s.signOn(m, resp, f60, st)
	case KindEcho:
		rc = "00"
	case KindTMKKey:
		rc = s.tmkKey(m, resp)
	case KindTMKActivate:
		rc = s.tmkActivate(m)
	case KindSignOff:
		rc = s.signOff(m, f60, f60err, st, now)
	case KindSale, KindVoid, KindReversal:
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
		if f60.Batch != st.batch || st.settle != nil && !st.settle.ended {
			// The public POSP answers any message of another batch than the
			// terminal's current one so (Pub_ValidCheck.isBatchNumberConsistent);
			// a batch being settled takes no more transactions.
			rc = "77"
			break
		}
		switch kind {
		case KindSale:
			rc, chip = s.sale(m, resp, now, f60, sess)
		case KindVoid:
			rc = s.void(m, resp, now, f60)
		case KindReversal:
			rc = s.reverse(m, now, f60)
		}
	default:
		rc, mak = s.manage(kind, m, req, resp, f60, st, now)
	}
	_ = acquirer.Set(resp, 39, rc)
	digit := s.demandFor(st, kind, rc)
	s.cfg.Log.Info("host", "kind", kind, "tid", tid, "stan", acquirer.Get(m, 11), "rc", rc, "demand", string(digit))
	return answer{kind: kind, msg: resp, mak: mak, header: withDemand(req.Header, digit), chip: chip}
}

// manage answers the install procedure's management messages other than
// sign-on, echo and sign-off. They need a session, as the public POSP's
// (77, sign on again: Pub_ValidCheck.terminalSignStatusCheck), and carry no
// MAC (LiaoYang_POS Src/trancomm.c HaveMacData lists financial messages
// only); one that does carry field 64 has it checked and is answered MACed.
func (s *Server) manage(kind string, m *iso8583.Message, req acquirer.Frame, resp *iso8583.Message,
	f60 acquirer.Field60, st *terminal, now time.Time) (string, acquirer.Key) {
	tid := acquirer.Get(m, 41)
	sess := s.sessions[tid]
	if sess == nil {
		return "77", nil
	}
	var mak acquirer.Key
	if acquirer.GetBytes(m, 64) != nil {
		k := acquirer.MACKey(sess.keys.MAK, s.cfg.MACFullKey)
		if err := acquirer.CheckMAC(m, req.Message, s.cfg.MAC, k); err != nil {
			return "A0", nil
		}
		mak = k
	}
	if !s.knownMID(acquirer.Get(m, 42)) {
		return "03", mak
	}
	// The answer's 60 is the request's type and batch with the table's code
	// (ConardLKL/posp_server M_DownCAPkInfoChecker builds it so).
	typ := f60.Type
	if typ == "" {
		typ = "00"
	}
	if code := s.cfg.Codes.code(kind); code != "" && len(f60.Batch) == 6 {
		_ = acquirer.Set(resp, 60, acquirer.Field60{Type: typ, Batch: f60.Batch, Code: code}.String())
	}
	book := func(e ledger.Entry) string {
		e.Time, e.TID, e.MID, e.STAN, e.Batch, e.Codes = now.UTC(), tid, acquirer.Get(m, 42), atoi(acquirer.Get(m, 11)), f60.Batch, s.cfg.Codes.Name
		if _, err := s.append(e); err != nil {
			return "96"
		}
		return "00"
	}
	switch kind {
	case KindCAPKQuery, KindICQuery:
		off, err := parseQuery(acquirer.GetBytes(m, 62))
		if err != nil {
			return "30", mak
		}
		var f62 []byte
		if kind == KindCAPKQuery {
			if off == 0 {
				sess.capks = map[string]bool{}
			}
			f62 = s.page(s.capkList(), off, s.cfg.CAPKPage)
		} else {
			if off == 0 {
				sess.aids = map[string]bool{}
			}
			f62 = s.page(s.aidList(), off, s.cfg.AIDPage)
		}
		_ = acquirer.SetBytes(resp, 62, f62)
		return "00", mak
	case KindCAPKDownload:
		rid, idx, err := parseKeyRequest(acquirer.GetBytes(m, 62))
		if err != nil {
			return "30", mak
		}
		f62, ok := s.capkAnswer(rid, idx)
		if ok {
			if sess.capks == nil {
				sess.capks = map[string]bool{}
			}
			sess.capks[fmt.Sprintf("%X%02X", rid, idx)] = true
		}
		_ = acquirer.SetBytes(resp, 62, f62)
		return "00", mak
	case KindICDownload:
		aid, err := parseAIDRequest(acquirer.GetBytes(m, 62))
		if err != nil {
			return "30", mak
		}
		f62, ok := s.aidAnswer(aid)
		if ok {
			if sess.aids == nil {
				sess.aids = map[string]bool{}
			}
			sess.aids[fmt.Sprintf("%X", aid)] = true
		}
		_ = acquirer.SetBytes(resp, 62, f62)
		return "00", mak
	case KindCAPKEnd:
		return book(ledger.Entry{Event: ledger.EventDownloaded, Kind: ledger.KindCAPK, Code: s.cfg.Codes.CAPKEnd, Count: len(sess.capks)}), mak
	case KindICEnd:
		return book(ledger.Entry{Event: ledger.EventDownloaded, Kind: ledger.KindICParams, Code: s.cfg.Codes.ICEnd, Count: len(sess.aids)}), mak
	case KindParams:
		_ = acquirer.SetBytes(resp, 62, paramsField(s.cfg.Params))
		if s.cfg.Codes.ParamsEnd != "" {
			return "00", mak // booked at its end
		}
		return book(ledger.Entry{Event: ledger.EventDownloaded, Kind: ledger.KindTermParams, Code: s.cfg.Codes.Params, Count: len(s.cfg.Params)}), mak
	case KindParamsEnd:
		return book(ledger.Entry{Event: ledger.EventDownloaded, Kind: ledger.KindTermParams, Code: s.cfg.Codes.ParamsEnd, Count: len(s.cfg.Params)}), mak
	case KindStatus:
		tags, err := parseStatus(acquirer.GetBytes(m, 62))
		if err != nil {
			return "30", mak
		}
		return book(ledger.Entry{Event: ledger.EventStatusUploaded, Kind: ledger.KindStatus, Code: s.cfg.Codes.Status, Count: len(tags)}), mak
	case KindSettle:
		for _, id := range []int{63} {
			if v := acquirer.Get(m, id); v != "" {
				_ = acquirer.Set(resp, id, v)
			}
		}
		return s.settle(m, resp, f60, st, now), mak
	case KindBatchUpload:
		return s.batchUpload(m, resp, f60, st, now), mak
	case KindTCUpload:
		return s.tcUpload(m, f60, st, now), mak
	case KindScriptResult:
		if mak == nil {
			// Both public apps MAC it (LiaoYang_POS HaveMacData lists
			// UPLOAD_SCRIPT_RESULT; the Centerm app packs field 64).
			return "A0", nil
		}
		return s.scriptResult(m, f60, st, now), mak
	case KindBatchEnd:
		rc, _ := s.batchEnd(m, resp, f60, st, now)
		return rc, mak
	}
	return "12", mak
}

// signOff forgets the terminal's keys and books it. Its batch may be the
// host's or one either side (a terminal that advanced its own batch after
// settling signs off with the next one: LiaoYang_POS PosSettleTran). When
// the host advances batches at sign-off, it does so here.
func (s *Server) signOff(m *iso8583.Message, f60 acquirer.Field60, f60err error, st *terminal, now time.Time) string {
	tid := acquirer.Get(m, 41)
	if f60err == nil {
		if d := atoi(f60.Batch) - atoi(st.batch); atoi(f60.Batch) < 0 || d < -1 || d > 1 {
			return "77"
		}
	}
	delete(s.sessions, tid)
	e := ledger.Entry{Time: now.UTC(), Event: ledger.EventSignedOff, Kind: ledger.KindSignOff, TID: tid,
		MID: acquirer.Get(m, 42), Batch: f60.Batch, STAN: atoi(acquirer.Get(m, 11)),
		Code: s.cfg.Codes.SignOff, Codes: s.cfg.Codes.Name}
	if s.cfg.BatchAdvance == AdvanceAtSignOff {
		e.NextBatch = nextBatch(st.batch)
	}
	if _, err := s.append(e); err != nil {
		return "96"
	}
	return "00"
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

// signOn makes fresh working keys and sends them under the TMK in the key
// layout of Config.KeyLayout. The answer's 60.2 is the host's batch for the
// terminal, which the terminal adopts (LiaoYang_POS PosOnlineLogon; the
// public POSP's M_SignInChecker puts its stored batch there).
func (s *Server) signOn(m, resp *iso8583.Message, f60 acquirer.Field60, st *terminal) string {
	if !s.knownMID(acquirer.Get(m, 42)) {
		return "03"
	}
	wk, f62, err := s.workingKeys(f60.Code, s.tmkFor(acquirer.Get(m, 41)))
	if errors.Is(err, errMode) {
		return "12" // invalid transaction
	}
	if err != nil {
		return "96"
	}
	typ := f60.Type
	if typ == "" {
		typ = "00"
	}
	_ = acquirer.SetBytes(resp, 62, f62)
	_ = acquirer.Set(resp, 60, acquirer.Field60{Type: typ, Batch: st.batch, Code: f60.Code}.String())
	s.sessions[acquirer.Get(m, 41)] = &session{mode: f60.Code, keys: wk}
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

// sale authorises a sale. Its second result is set when the sale came with
// an ARQC the host verified, approved or not: the answer then carries the
// issuer's ARPC over its response code, as issuers send for declines too
// (the card authenticates the decline as well).
func (s *Server) sale(m, resp *iso8583.Message, now time.Time, f60 acquirer.Field60, sess *session) (string, *issuerAuth) {
	amount := acquirer.Get(m, 4)
	if len(amount) != 12 {
		return "13", nil
	}
	k := txnKey{acquirer.Get(m, 41), f60.Batch, atoi(acquirer.Get(m, 11))}
	if _, dup := s.txns[k]; dup {
		return "94", nil // duplicate transmission: the STAN was used in this batch
	}
	card, rc := s.checkCard(m, sess)
	chip := s.chipAuth(m, card)
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
			return "96", nil
		}
		return rc, chip
	}
	e.RRN, e.AuthCode = s.nextRRN(now), s.authCode()
	rc = s.record(e, resp)
	if rc == "00" {
		t := s.txns[k]
		t.panMAC = s.panMAC(card)
		// Kept whether or not the host checks cryptograms: the TC
		// upload must be of this transaction.
		t.atc, t.hasATC = atcOf(acquirer.GetBytes(m, 55))
	}
	if rc != "00" {
		return rc, nil // nothing approved after all (96): no cryptogram either
	}
	return rc, chip
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
// tracks of a swipe, and the track-2 equivalent a chip sale sends in field
// 35 (LiaoYang_POS SetCommReqField, CARD_INSERTED), against fields 2 and 14,
// the PIN block against the PAN, and the ARQC of a chip card against its
// key. It returns the full PAN (from field 2, or the track when field 2 is
// absent) and a response code, "00" when all is well. Nothing it handles
// is logged or kept.
func (s *Server) checkCard(m *iso8583.Message, sess *session) (string, string) {
	p := acquirer.Get(m, 2)
	f53 := acquirer.Get(m, 53)
	trackEncrypted := len(f53) >= 3 && f53[2] == '1'
	f22 := acquirer.Get(m, 22)
	swipe := strings.HasPrefix(f22, "02")
	if t2 := acquirer.Get(m, 35); swipe || strings.HasPrefix(f22, "05") && t2 != "" {
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
		tp, rest, ok := strings.Cut(t2, "=")
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
		if exp := acquirer.Get(m, 14); exp != "" && len(rest) >= 4 && rest[:4] != exp {
			// The expiry of the request is not the card's: another card's
			// data, answered as a PAN that is not the card's.
			s.cfg.Log.Warn("track expiry differs from field 14", "card", pan.Mask(p))
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
	_ = acquirer.Set(resp, 44, fmt.Sprintf("%-11s%-11s", s.cfg.Issuer, s.cfg.Acquirer))
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
	// Why the terminal reversed (field 39: 98 no answer, 06 the card
	// declined after the approval …), for the tests and the operator.
	e.Reason = acquirer.Get(m, 39)
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

// ParseFault reads "kind=action[:param][*times]" (e.g. "sale=no-answer",
// "void=delay:2s*3", "sale=wrong-mac*-1", "settle=wrong-rc:96") as the
// command line gives it; the parameter is the delay of delay and the
// response code of wrong-rc.
func ParseFault(s string) (string, Fault, error) {
	kind, rest, ok := strings.Cut(s, "=")
	if !ok {
		return "", Fault{}, fmt.Errorf("hostsim: fault %q: want kind=action", s)
	}
	if !slices.Contains(Kinds, kind) {
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
	a, p, hasParam := strings.Cut(rest, ":")
	f.Action = Action(a)
	if !slices.Contains(Actions, f.Action) && !slices.Contains(AnswerActions, f.Action) {
		return "", Fault{}, fmt.Errorf("hostsim: fault %q: unknown action", s)
	}
	switch {
	case !hasParam:
	case f.Action == WrongRC:
		if len(p) != 2 {
			return "", Fault{}, fmt.Errorf("hostsim: fault %q: wrong-rc wants a 2-character response code", s)
		}
		f.RC = p
	case f.Action == Delay:
		dd, err := time.ParseDuration(p)
		if err != nil {
			return "", Fault{}, fmt.Errorf("hostsim: fault %q: delay: %w", s, err)
		}
		f.Delay = dd
	default:
		return "", Fault{}, fmt.Errorf("hostsim: fault %q: %s takes no parameter", s, f.Action)
	}
	return kind, f, nil
}
