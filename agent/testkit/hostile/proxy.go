package hostile

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/posagent/posagent/agent/acquirer"
)

// Planner picks what the attacker does to each exchange.
type Planner interface {
	// Plan returns one of candidates (candidates[0] is always Pass) for an
	// exchange of kind.
	Plan(kind string, candidates []Mutation) Mutation
	// Intn returns a number in [0, n), n > 0, for a mutation's variants:
	// which response code, which archived sign-on answer.
	Intn(n int) int
}

// Random is a seeded Planner: Pass with probability PassShare, otherwise
// one of the other candidates, uniformly. The same seed and the same
// sequence of exchanges give the same plan. Safe for concurrent use.
type Random struct {
	mu        sync.Mutex
	rng       *rand.Rand
	passShare float64
}

// NewRandom returns a Random planner.
func NewRandom(seed uint64, passShare float64) *Random {
	return &Random{rng: rand.New(rand.NewPCG(seed, seed>>1|1)), passShare: passShare}
}

// Plan implements Planner.
func (r *Random) Plan(kind string, c []Mutation) Mutation {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(c) < 2 || r.rng.Float64() < r.passShare {
		return Pass
	}
	return c[1+r.rng.IntN(len(c)-1)]
}

// Intn implements Planner.
func (r *Random) Intn(n int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rng.IntN(n)
}

// PlanFunc is a Planner from a function; its variants are always the first
// (Declines[0], DefectCodes[0], the oldest archived answer).
type PlanFunc func(kind string, candidates []Mutation) Mutation

// Plan implements Planner.
func (f PlanFunc) Plan(kind string, c []Mutation) Mutation { return f(kind, c) }

// Intn implements Planner.
func (PlanFunc) Intn(int) int { return 0 }

// Only applies m to every exchange of kind where m is a candidate, and
// passes everything else.
func Only(kind string, m Mutation) PlanFunc {
	return func(k string, c []Mutation) Mutation {
		if k != kind {
			return Pass
		}
		for _, x := range c {
			if x == m {
				return m
			}
		}
		return Pass
	}
}

// Archive keeps the approved sign-on answers the attacker has seen, for
// replays; one Archive shared by the proxies of a campaign replays answers
// of earlier installs (same TMK, so their keys still decrypt). Safe for
// concurrent use.
type Archive struct {
	mu     sync.Mutex
	frames [][]byte
}

func (a *Archive) add(frame []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.frames = append(a.frames, clone(frame))
}

// Len is how many answers the archive holds.
func (a *Archive) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.frames)
}

func (a *Archive) pick(p Planner) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.frames) == 0 {
		return nil
	}
	return clone(a.frames[p.Intn(len(a.frames))])
}

// Dir says which leg of the link a recorded frame crossed.
type Dir string

// Legs of the link.
const (
	Request   Dir = "request"   // terminal → proxy (Forwarded says whether it went on)
	Answer    Dir = "answer"    // host → proxy, as the host sent it
	Delivered Dir = "delivered" // proxy → terminal, after the mutation
)

// Frame is one frame the proxy saw, whole (length prefix included).
type Frame struct {
	Seq      int
	Time     time.Time
	Exchange int // Exchange.N
	Dir      Dir
	Bytes    []byte
	// Forwarded: a Request passed on to the host (false when the proxy
	// answered it itself, or the host could not be reached).
	Forwarded bool
	// Written: a Delivered frame the terminal's socket accepted (false for a
	// late answer after the terminal had gone).
	Written bool
}

// Exchange is one request and what became of its answer.
type Exchange struct {
	N    int
	Conn int
	Time time.Time // the request's arrival
	Kind string
	// MTI, STAN and TID of the request ("" when it did not parse).
	MTI, STAN, TID string
	// Planned is what the planner chose; Applied what was done: Planned,
	// or Pass when it found nothing to work on (Detail says why).
	Planned, Applied Mutation
	Detail           string
	HostRC           string // field 39 of the host's answer, "" if none
	DeliveredRC      string // field 39 of what the terminal was sent
}

// Options configure a Proxy.
type Options struct {
	// Upstream is the host's address.
	Upstream string
	// Plan picks each exchange's mutation; nil passes everything.
	Plan Planner
	// Late is how long Delay holds an answer: past the terminal's timeout.
	// Zero means 2 s.
	Late time.Duration
	// HostTimeout bounds the wait for the host's answer; zero means 10 s.
	HostTimeout time.Duration
	// Archive holds the sign-on answers replays draw from; nil means one
	// of this proxy's own.
	Archive *Archive
	// Log gets one line per exchange (kind, STAN, response codes, the
	// mutation), never card data; nil discards.
	Log *slog.Logger
}

// Proxy is a running attacker between a terminal and its host.
type Proxy struct {
	o  Options
	ln net.Listener

	mu        sync.Mutex
	frames    []Frame
	exchanges []Exchange
	// approvals are the host's MACed 0210 approvals by TID/STAN/processing
	// code: what a forged, MACed 25 to their reversal is made from.
	approvals map[string][]byte
	conns     map[net.Conn]struct{}
	nconn     int
	nex       int // exchanges begun: a held answer may finish after a later one
	// finished is closed, and replaced, each time an exchange finishes.
	finished chan struct{}

	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// Listen starts a proxy on addr (e.g. "127.0.0.1:0") in front of
// o.Upstream.
func Listen(addr string, o Options) (*Proxy, error) {
	if o.Upstream == "" {
		return nil, errors.New("hostile: no upstream host")
	}
	if o.Plan == nil {
		o.Plan = PlanFunc(func(string, []Mutation) Mutation { return Pass })
	}
	if o.Late <= 0 {
		o.Late = 2 * time.Second
	}
	if o.HostTimeout <= 0 {
		o.HostTimeout = 10 * time.Second
	}
	if o.Archive == nil {
		o.Archive = &Archive{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("hostile: %w", err)
	}
	p := &Proxy{o: o, ln: ln, approvals: map[string][]byte{}, conns: map[net.Conn]struct{}{}, done: make(chan struct{}),
		finished: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is where terminals connect.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops accepting, drops every connection (held and delayed answers
// included) and waits for the handlers.
func (p *Proxy) Close() error {
	p.once.Do(func() {
		close(p.done)
		p.ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	p.wg.Wait()
	return nil
}

// Frames returns a copy of every frame seen so far, in order.
func (p *Proxy) Frames() []Frame {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Frame, len(p.frames))
	for i, f := range p.frames {
		f.Bytes = clone(f.Bytes)
		out[i] = f
	}
	return out
}

// Exchanges returns a copy of every finished exchange, in the order they
// began.
func (p *Proxy) Exchanges() []Exchange {
	p.mu.Lock()
	out := append([]Exchange(nil), p.exchanges...)
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b Exchange) int { return a.N - b.N })
	return out
}

// Await returns the finished exchanges once there are at least n of them.
// An exchange is finished after its answer is delivered, so a terminal that
// has its answer cannot yet rely on Exchanges listing it.
func (p *Proxy) Await(ctx context.Context, n int) ([]Exchange, error) {
	for {
		p.mu.Lock()
		have, next := len(p.exchanges), p.finished
		p.mu.Unlock()
		if have >= n {
			return p.Exchanges(), nil
		}
		select {
		case <-next:
		case <-ctx.Done():
			return p.Exchanges(), fmt.Errorf("hostile: %d of %d exchanges finished: %w", have, n, ctx.Err())
		}
	}
}

// Counts is how often each mutation was applied.
func (p *Proxy) Counts() map[Mutation]int {
	out := map[Mutation]int{}
	for _, ex := range p.Exchanges() {
		out[ex.Applied]++
	}
	return out
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		select {
		case <-p.done:
			p.mu.Unlock()
			c.Close()
			return
		default:
		}
		p.conns[c] = struct{}{}
		p.nconn++
		id := p.nconn
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			p.serve(c, id)
			p.mu.Lock()
			delete(p.conns, c)
			p.mu.Unlock()
		}()
	}
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		return false
	default:
	}
	p.conns[c] = struct{}{}
	return true
}

// readRaw reads one length-prefixed frame whole; on a short read it returns
// what it got with the error.
func readRaw(r io.Reader) ([]byte, error) {
	var lb [2]byte
	if n, err := io.ReadFull(r, lb[:]); err != nil {
		return lb[:n], err
	}
	buf := make([]byte, 2+int(binary.BigEndian.Uint16(lb[:])))
	copy(buf, lb[:])
	n, err := io.ReadFull(r, buf[2:])
	return buf[:2+n], err
}

func (p *Proxy) record(f Frame) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f.Seq = len(p.frames) + 1
	f.Time = time.Now()
	f.Bytes = clone(f.Bytes)
	p.frames = append(p.frames, f)
}

// serve relays one terminal connection: requests one at a time, each
// answer mutated as the plan says.
func (p *Proxy) serve(c net.Conn, id int) {
	defer c.Close()
	var up net.Conn
	defer func() {
		if up != nil {
			up.Close()
		}
	}()
	for {
		raw, err := readRaw(c)
		if err != nil {
			if len(raw) > 0 && up != nil {
				// Half a frame: pass it on untouched, then close as the
				// terminal did.
				_, _ = up.Write(raw)
			}
			return
		}
		if !p.exchange(c, id, &up, raw) {
			return
		}
	}
}

// decoded is a frame and its message's layout (nil when it does not parse).
type decoded struct {
	frame acquirer.Frame
	l     *layout
}

func decode(raw []byte) decoded {
	f, err := acquirer.DecodeFrame(raw)
	if err != nil {
		return decoded{}
	}
	l, err := parse(f.Message)
	if err != nil {
		return decoded{frame: f}
	}
	return decoded{frame: f, l: l}
}

func (d decoded) get(id int) string {
	if d.l == nil {
		return ""
	}
	return d.l.get(id)
}

func approvalKey(tid, stan, pc string) string { return tid + "/" + stan + "/" + pc }

// exchange handles one request; false closes the terminal's connection.
func (p *Proxy) exchange(c net.Conn, id int, up *net.Conn, raw []byte) bool {
	req := decode(raw)
	p.mu.Lock()
	p.nex++
	ex := Exchange{N: p.nex, Conn: id, Time: time.Now(), Kind: classify(req.l),
		STAN: req.get(11), TID: req.get(41)}
	if req.l != nil {
		ex.MTI = req.l.mti()
	}
	_, approved := p.approvals[approvalKey(ex.TID, ex.STAN, req.get(3))]
	p.mu.Unlock()

	// What can be planned now: a forged 25 needs the original's approval,
	// a replay an archived answer.
	var cands []Mutation
	for _, m := range Candidates(ex.Kind) {
		switch {
		case m == Forge25MAC && !approved:
		case (m == Replay || m == ReplayMatched) && p.o.Archive.Len() == 0:
		default:
			cands = append(cands, m)
		}
	}
	ex.Planned = p.o.Plan.Plan(ex.Kind, cands)
	ex.Applied = ex.Planned
	defer func() {
		p.mu.Lock()
		p.exchanges = append(p.exchanges, ex)
		close(p.finished)
		p.finished = make(chan struct{})
		p.mu.Unlock()
		p.o.Log.Info("exchange", "n", ex.N, "conn", ex.Conn, "kind", ex.Kind, "mti", ex.MTI, "stan", ex.STAN,
			"host_rc", ex.HostRC, "planned", ex.Planned, "applied", ex.Applied, "delivered_rc", ex.DeliveredRC, "detail", ex.Detail)
	}()

	deliver := func(frame []byte) bool {
		_, err := c.Write(frame)
		p.record(Frame{Exchange: ex.N, Dir: Delivered, Bytes: frame, Written: err == nil})
		if d := decode(frame); d.l != nil {
			ex.DeliveredRC = d.get(39)
		}
		return err == nil
	}

	// The forged 25s: the reversal never reaches the host.
	if ex.Planned == Forge25MAC || ex.Planned == Forge25Plain {
		p.record(Frame{Exchange: ex.N, Dir: Request, Bytes: raw})
		var msg []byte
		var err error
		if ex.Planned == Forge25MAC {
			p.mu.Lock()
			g := p.approvals[approvalKey(ex.TID, ex.STAN, req.get(3))]
			p.mu.Unlock()
			msg, err = Forge25FromApproval(g)
		} else if req.l != nil {
			msg, err = Forge25Unmaced(req.frame.Message, time.Now())
		} else {
			err = errNoLayout
		}
		if err == nil {
			out, ferr := acquirer.Frame{TPDU: req.frame.TPDU.Swap(), Header: req.frame.Header, Message: msg}.Encode()
			if ferr == nil {
				ex.Detail = "reversal not sent on; answered 25"
				return deliver(out)
			}
			err = ferr
		}
		// Nothing to forge from after all: behave as a link that lost it.
		ex.Applied, ex.Detail = DropClose, "forgery failed: "+err.Error()
		return false
	}

	if *up == nil {
		conn, err := net.DialTimeout("tcp", p.o.Upstream, 5*time.Second)
		if err != nil {
			p.record(Frame{Exchange: ex.N, Dir: Request, Bytes: raw})
			ex.Applied, ex.Detail = Pass, "host unreachable"
			return false
		}
		if !p.track(conn) {
			conn.Close()
			return false
		}
		*up = conn
	}
	_, werr := (*up).Write(raw)
	p.record(Frame{Exchange: ex.N, Dir: Request, Bytes: raw, Forwarded: werr == nil})
	if werr != nil {
		ex.Applied, ex.Detail = Pass, "host write failed"
		return false
	}
	_ = (*up).SetReadDeadline(time.Now().Add(p.o.HostTimeout))
	ans, err := readRaw(*up)
	if err != nil {
		if len(ans) > 0 {
			p.record(Frame{Exchange: ex.N, Dir: Answer, Bytes: ans})
			deliver(ans) // the host's half answer, as it came
		}
		ex.Applied, ex.Detail = Pass, "host gave no whole answer"
		return false
	}
	p.record(Frame{Exchange: ex.N, Dir: Answer, Bytes: ans})
	got := decode(ans)
	ex.HostRC = got.get(39)
	// Learnt before the answer is delivered: the terminal's next request
	// (a reversal of this very message) may come at once.
	p.learnApproval(req, got)
	defer p.archive(got, ans) // after a replay has drawn from the archive

	switch ex.Planned {
	case Pass:
		return deliver(ans)
	case DropHold:
		ex.Detail = "answer swallowed, line held"
		_, _ = io.Copy(io.Discard, c) // until the terminal gives up
		return false
	case DropClose:
		ex.Detail = "answer swallowed, line closed"
		return false
	case Delay:
		t := time.NewTimer(p.o.Late)
		defer t.Stop()
		select {
		case <-t.C:
		case <-p.done:
			return false
		}
		ex.Detail = "answer held " + p.o.Late.String()
		return deliver(ans)
	case Duplicate:
		if !deliver(ans) {
			return false
		}
		return deliver(ans) // the same answer again
	}

	out, err := p.mutate(&ex, req, got)
	if err != nil {
		ex.Applied, ex.Detail = Pass, "not applicable: "+err.Error()
		return deliver(ans)
	}
	return deliver(out)
}

// mutate applies the answer-rewriting mutations to the host's answer got.
func (p *Proxy) mutate(ex *Exchange, req, got decoded) ([]byte, error) {
	reframe := func(msg []byte) ([]byte, error) {
		return acquirer.Frame{TPDU: got.frame.TPDU, Header: got.frame.Header, Message: msg}.Encode()
	}
	if got.l == nil && ex.Planned != Replay && ex.Planned != ReplayMatched {
		return nil, errNoLayout
	}
	switch ex.Planned {
	case StripMAC:
		msg, err := StripMACField(got.frame.Message)
		if err != nil {
			return nil, err
		}
		ex.Detail = "field 64 removed"
		return reframe(msg)
	case ForgeDecline, Defect:
		codes := Declines
		if ex.Planned == Defect {
			codes = DefectCodes
		}
		rc := codes[p.o.Plan.Intn(len(codes))]
		msg, err := RewriteRC(got.frame.Message, rc)
		if err != nil {
			return nil, err
		}
		ex.Detail = "39 " + got.get(39) + "→" + rc
		if got.l.macked() {
			ex.Detail += ", MAC compensated in 37/38"
		}
		return reframe(msg)
	case StripTDK:
		msg, err := StripTDKField(got.frame.Message)
		if err != nil {
			return nil, err
		}
		ex.Detail = "62 cut to 40 bytes (no TDK)"
		return reframe(msg)
	case Replay, ReplayMatched:
		old := p.o.Archive.pick(p.o.Plan)
		if old == nil {
			return nil, errNotApplicable
		}
		if ex.Planned == Replay {
			ex.Detail = "an earlier 0810, verbatim"
			return old, nil
		}
		of, err := acquirer.DecodeFrame(old)
		if err != nil {
			return nil, err
		}
		msg, err := RewriteSTANTID(of.Message, req.get(11), req.get(41))
		if err != nil {
			return nil, err
		}
		ex.Detail = "an earlier 0810, STAN/TID rewritten"
		return acquirer.Frame{TPDU: of.TPDU, Header: of.Header, Message: msg}.Encode()
	}
	return nil, fmt.Errorf("%w: %s", errNotApplicable, ex.Planned)
}

// learnApproval keeps the host's MACed approvals of sales and voids: a
// forged, MACed 25 to their reversal is made from them.
func (p *Proxy) learnApproval(req, got decoded) {
	if got.l == nil || got.get(39) != "00" || got.l.mti() != "0210" || !got.l.macked() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.approvals[approvalKey(got.get(41), got.get(11), req.get(3))] = clone(got.frame.Message)
}

// archive keeps an approved sign-on answer for later replays.
func (p *Proxy) archive(got decoded, raw []byte) {
	if got.l != nil && got.get(39) == "00" && got.l.mti() == "0810" && acquirer.GetBytes(got.l.m, 62) != nil {
		p.o.Archive.add(raw)
	}
}
