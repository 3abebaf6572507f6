package hostsim

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/posagent/posagent/agent/acquirer"
)

// Processing requirements: the digit of a response header (its third byte's
// low nibble, PROTOCOLS.md §1) by which the host tells the terminal what to do
// before its next transaction. Public terminal apps run it first
// (LiaoYang_POS Src/tranproc.c OnlineDownOrUp; the Centerm app's
// ProcessRequestManager); a public POSP sets it at sign-on when keys or
// parameters changed since the terminal's last one (ConardLKL/posp_server
// posp/posp-core/.../checker/M_SignInChecker.java updatePara: 4, 5, and 9 for
// contactless parameters).
const (
	DemandParams    = '1' // download terminal parameters
	DemandStatus    = '2' // upload terminal status
	DemandSignOn    = '3' // sign on again
	DemandCAPK      = '4' // download IC public keys
	DemandICParams  = '5' // download IC parameters
	DemandTMS       = '6' // TMS (application) download
	DemandBlacklist = '7' // blacklist download
	DemandQPSParams = '9' // contactless (QPS) parameters, one public POSP's own digit
)

// demandsSeen are the requirements the host sees fulfilled.
const demandsSeen = "12345"

// Change events a Demand can be triggered by instead of a message kind.
const (
	ChangeCAPK = "capk-change" // the host's CA public key list changed (Server.SetCAPKs)
	ChangeIC   = "ic-change"   // its IC parameters changed (Server.SetAIDs)
)

// Demand is one entry of the host's demand schedule: the answer that triggers
// it and the requirements it makes pending for that terminal. A pending
// requirement rides on every answer to the terminal (one at a time, oldest
// first) until the terminal does what it asks — downloads the parameters
// (1), uploads its status (2), signs on (3), ends the CAPK (4) or IC parameter
// (5) download — or, when Once, on one answer only, as the public POSP does.
// Requirements the host cannot see done (6, 7, 9) are carried once.
type Demand struct {
	// On is a message kind (KindSignOn, KindSale, ...) whose answer triggers
	// the demand, or ChangeCAPK / ChangeIC.
	On string
	// Nth is which answer of that kind to the terminal triggers it, from 1;
	// 0 means every one. Ignored for change events.
	Nth int
	// Digits are the requirements, in the order they are to be carried.
	Digits string
	Once   bool
}

// ParseDemand reads "kind[#n]=digits[,once]" (e.g. "sign-on#1=45",
// "sale#1=3", "capk-change=4") as the command line gives it.
func ParseDemand(s string) (Demand, error) {
	on, rest, ok := strings.Cut(s, "=")
	if !ok {
		return Demand{}, fmt.Errorf("hostsim: demand %q: want kind[#n]=digits", s)
	}
	var d Demand
	if k, n, ok := strings.Cut(on, "#"); ok {
		nth, err := strconv.Atoi(n)
		if err != nil || nth < 1 {
			return Demand{}, fmt.Errorf("hostsim: demand %q: #n wants a number from 1", s)
		}
		on, d.Nth = k, nth
	}
	d.On = on
	if digits, flag, ok := strings.Cut(rest, ","); ok {
		if flag != "once" {
			return Demand{}, fmt.Errorf("hostsim: demand %q: unknown flag %q", s, flag)
		}
		rest, d.Once = digits, true
	}
	d.Digits = rest
	if err := d.check(); err != nil {
		return Demand{}, err
	}
	return d, nil
}

func (d Demand) check() error {
	known := d.On == ChangeCAPK || d.On == ChangeIC
	for _, k := range Kinds {
		known = known || k == d.On
	}
	if !known {
		return fmt.Errorf("hostsim: demand on %q: not a message kind or change event", d.On)
	}
	if d.Digits == "" || d.Nth < 0 {
		return fmt.Errorf("hostsim: demand on %q: no requirement", d.On)
	}
	for _, c := range d.Digits {
		if c < '1' || c > '9' {
			return fmt.Errorf("hostsim: demand on %q: requirement %q is not a digit 1-9", d.On, c)
		}
	}
	return nil
}

type pending struct {
	digit byte
	once  bool
}

// satisfies is the requirement a successful answer of kind fulfils (0 none).
func (s *Server) satisfies(kind string) byte {
	switch kind {
	case KindParams:
		if s.cfg.Codes.ParamsEnd == "" {
			return DemandParams
		}
	case KindParamsEnd:
		return DemandParams
	case KindStatus:
		return DemandStatus
	case KindSignOn:
		return DemandSignOn
	case KindCAPKEnd:
		return DemandCAPK
	case KindICEnd:
		return DemandICParams
	}
	return 0
}

// push makes digits pending for st, each once at most.
func (st *terminal) push(digits string, once bool) {
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		dup := false
		for _, p := range st.demands {
			dup = dup || p.digit == c
		}
		if !dup {
			// What the host cannot see done would otherwise ride forever.
			st.demands = append(st.demands, pending{c, once || strings.IndexByte(demandsSeen, c) < 0})
		}
	}
}

func (st *terminal) clear(c byte) {
	out := st.demands[:0]
	for _, p := range st.demands {
		if p.digit != c {
			out = append(out, p)
		}
	}
	st.demands = out
}

// demandFor runs the schedule for one answer of kind to st: what the answer
// fulfils is cleared (when it succeeded), the triggered demands become
// pending, and the digit to carry is returned ('0' for none).
func (s *Server) demandFor(st *terminal, kind, rc string) byte {
	if c := s.satisfies(kind); c != 0 && rc == "00" {
		st.clear(c)
	}
	st.answered[kind]++
	for _, d := range s.cfg.Demands {
		if d.On == kind && (d.Nth == 0 || d.Nth == st.answered[kind]) {
			st.push(d.Digits, d.Once)
		}
	}
	if len(st.demands) == 0 {
		return '0'
	}
	p := st.demands[0]
	if p.once {
		st.demands = st.demands[1:]
	}
	return p.digit
}

// changed triggers the schedule's demands on a change event for every
// terminal the host knows.
func (s *Server) changed(event string) {
	for _, d := range s.cfg.Demands {
		if d.On != event {
			continue
		}
		for _, st := range s.terms {
			st.push(d.Digits, d.Once)
		}
	}
}

// Demand makes digits pending for the terminal tid, as a back office would.
func (s *Server) Demand(tid, digits string) error {
	if err := (Demand{On: KindSignOn, Digits: digits}).check(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.term(tid).push(digits, false)
	return nil
}

// withDemand returns h with its processing-requirement digit set.
func withDemand(h acquirer.Header, digit byte) acquirer.Header {
	h[2] = h[2]&0xF0 | (digit-'0')&0x0F
	return h
}
